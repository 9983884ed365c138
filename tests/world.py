"""Expensive test worlds, built once per test process and rolled back after every test.

Training and promoting a model takes about a second, and some sixty tests need
a dataset with a trained, approved champion (``trained_dataset``). Built per
test, that world made the suite slow, and much slower on a loaded machine. So:

* A *world layer* is a fixture whose data a registered builder writes once,
  inside a transaction that is opened when the first test needs the layer and
  is never committed. A layer may sit on another one; its transaction is then
  a savepoint inside the lower layer's.
* A test's own transaction (pytest-django wraps a ``db`` test in
  ``django.test.TestCase``'s atomic blocks) is a savepoint inside the world and
  is rolled back after the test as always: every test starts from the same
  world and may change it freely.
* A test that does not ask for a layer never sees it: before any of its
  fixtures run, the layers it does not build on are rolled back
  (``leave_unwanted``, from ``pytest_runtest_setup``). Tests that share layers
  are run together and first (``order_items``), so each layer is built about
  once per process (once per xdist worker).
* Transactional tests (``transactional_db``, ``live_server``, the real Celery
  worker) cannot see uncommitted data nor run inside a transaction. For them,
  and for tests with a ``django_db`` marker (see ``_can_share``), the layer's
  fixture calls the same builder inside the test itself; a transactional
  test's data is then flushed after it, as always.
* Files are not transactional: the artifacts a layer's training wrote are kept
  in memory and written back after any test that changed them (tests tamper
  with the champion's artifact to check that it is refused).

Either way the data comes from the same builder, so a test cannot tell a shared
world from one built for it alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from django.conf import settings
from django.db import connection, transaction

from annotations.models import Dataset, ImportBatch
from tests.helpers import (
    DATASET_SLUG,
    MODEL_ADMIN,
    MODEL_ADMIN2,
    PASSWORD,
    candidate_train,
    csv_bytes,
    make_user,
    synthetic_rows,
    tumours_dataset_create,
)
from workflow_site.access import Role

Builder = TypeVar("Builder", bound=Callable[[], Any])


@dataclass(frozen=True)
class Layer:
    name: str  # the fixture a test asks for
    build: Callable[[], Any]
    below: str | None  # the layer this one is built on


_LAYERS: dict[str, Layer] = {}


def world_layer(name: str, *, below: str | None = None) -> Callable[[Builder], Builder]:
    """Register the decorated function as the builder of the layer that the fixture `name` stands for."""

    def register(build: Builder) -> Builder:
        if below is not None and below not in _LAYERS:
            raise ValueError(f"layer {name!r} is built on {below!r}, which is not registered")
        _LAYERS[name] = Layer(name, build, below)
        return build

    return register


def _with_the_layers_below(name: str) -> tuple[str, ...]:
    chain: list[str] = []
    current: str | None = name
    while current is not None:
        chain.insert(0, current)
        current = _LAYERS[current].below
    return tuple(chain)


def _can_share(item: pytest.Item) -> bool:
    """Whether the test can run inside the world's transaction.

    Not when it commits (``transactional_db``, ``live_server``, the real Celery
    worker), nor when it carries a ``django_db`` marker: pytest-django opens the
    test's transaction for the marker before any fixture of ours runs, too early
    to slip the world in underneath. Such tests get a world built for them alone.
    """
    names = getattr(item, "fixturenames", ())
    return not ("transactional_db" in names or "live_server" in names or item.get_closest_marker("django_db"))


def wanted_layers(item: pytest.Item) -> tuple[str, ...]:
    """The shared layers the test runs in, lowest first: () when it asks for none or cannot share."""
    names = getattr(item, "fixturenames", ())
    stacks = [_with_the_layers_below(name) for name in _LAYERS if name in names]
    if not stacks or not _can_share(item):
        return ()
    deepest = max(stacks, key=len)
    if any(stack != deepest[: len(stack)] for stack in stacks):
        raise pytest.UsageError(f"{item.nodeid} asks for world layers that do not stack: {stacks}")
    return deepest


def shares(request: pytest.FixtureRequest, name: str) -> bool:
    """Whether the layer `name` is the shared one (already built) for this test, rather than built for it."""
    return name in wanted_layers(request.node)


def _artifact_files() -> set[Path]:
    root = Path(settings.ARTIFACT_ROOT)
    return {path for path in root.rglob("*") if path.is_file()} if root.exists() else set()


@dataclass
class _OpenLayer:
    name: str
    atomic: transaction.Atomic
    files: dict[Path, bytes] = field(default_factory=dict)


class WorldStack:
    """The layers open on this process's connection to the test database, lowest first."""

    def __init__(self, blocker: Any) -> None:
        self._blocker = blocker  # pytest-django's django_db_blocker
        self._open: list[_OpenLayer] = []

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(layer.name for layer in self._open)

    def enter(self, wanted: tuple[str, ...]) -> None:
        """Make `wanted` the open layers: roll back the others, build the missing ones."""
        self.leave_to(_common_prefix(self.names, wanted))
        if len(connection.atomic_blocks) != len(self._open):
            raise RuntimeError("A transaction was opened before the shared world: it cannot go underneath.")
        for name in wanted[len(self._open) :]:
            self._build(_LAYERS[name])

    def _build(self, layer: Layer) -> None:
        before = _artifact_files()
        with self._blocker.unblock():
            atomic = transaction.atomic()
            atomic.__enter__()
            try:
                layer.build()
            except BaseException:
                _roll_back(atomic)
                raise
        files = {path: path.read_bytes() for path in _artifact_files() - before}
        self._open.append(_OpenLayer(layer.name, atomic, files))

    def leave_to(self, depth: int) -> None:
        """Roll back every layer above the lowest `depth` ones, and delete the files they wrote."""
        while len(self._open) > depth:
            top = self._open.pop()
            with self._blocker.unblock():
                _roll_back(top.atomic)
            for path in top.files:
                path.unlink(missing_ok=True)

    def restore_files(self) -> None:
        """Write back any layer artifact the last test changed or removed."""
        for layer in self._open:
            for path, data in layer.files.items():
                if not path.exists() or path.read_bytes() != data:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(data)


def _common_prefix(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    depth = 0
    while depth < min(len(a), len(b)) and a[depth] == b[depth]:
        depth += 1
    return depth


def _roll_back(atomic: transaction.Atomic) -> None:
    if not connection.atomic_blocks or connection.atomic_blocks[-1] is not atomic:
        raise RuntimeError("A transaction is still open on top of the shared world; it cannot be rolled back.")
    transaction.set_rollback(True)
    atomic.__exit__(None, None, None)


STACK = pytest.StashKey[WorldStack]()


def leave_unwanted(item: pytest.Item) -> None:
    """Before `item` sets anything up: roll back the layers it does not build on."""
    stack = item.config.stash.get(STACK, None)
    if stack is not None:
        stack.leave_to(_common_prefix(stack.names, wanted_layers(item)))


def order_items(items: list[pytest.Item]) -> None:
    """Run the tests that share layers first, grouped by layers (each group in collection order).

    They are all non-transactional database tests, which pytest-django already
    runs first; moving them to the front keeps its order of the rest.
    """
    keyed = [(wanted_layers(item), index, item) for index, item in enumerate(items)]
    sharing = sorted((entry for entry in keyed if entry[0]), key=lambda entry: (entry[0], entry[1]))
    items[:] = [item for _, _, item in sharing] + [item for layers, _, item in keyed if not layers]


# --- the layers ---------------------------------------------------------------------------------


@world_layer("trained_dataset")
def trained_dataset_build() -> Dataset:
    """Tumours with a labelled seed (20 rows), a holdout (20), an open pool (30) and an approved champion, v1.

    admin1 imported the files, trained v1 and requested its promotion; admin2 signed it.
    """
    from annotations.services import import_batch_create
    from governance.promotions import promotion_decide, promotion_request_create
    from models_app.models import TrainingRun
    from models_app.prediction import open_item_ids, predictions_create
    from models_app.services import training_run_request
    from models_app.training import training_run_execute

    dataset = tumours_dataset_create()
    admin = make_user(MODEL_ADMIN, Role.MODEL_ADMIN, dataset=dataset)
    signer = make_user(MODEL_ADMIN2, Role.MODEL_ADMIN, dataset=dataset)
    for rows, purpose, name in [
        (synthetic_rows(20, start=0), ImportBatch.Purpose.REVIEW, "seed.csv"),
        (synthetic_rows(20, start=100), ImportBatch.Purpose.HOLDOUT, "holdout.csv"),
        (synthetic_rows(30, start=200, labelled=False), ImportBatch.Purpose.REVIEW, "pool.csv"),
    ]:
        import_batch_create(dataset=dataset, user=admin, file_name=name, data=csv_bytes(rows), purpose=purpose)
    run = training_run_request(
        dataset=dataset, trigger=TrainingRun.Trigger.SEED, requested_by=admin, reason="first", dispatch=False
    )
    version = training_run_execute(run_id=run.pk)
    assert version is not None, TrainingRun.objects.get(pk=run.pk).error
    request = promotion_request_create(password=PASSWORD, model_version=version, user=admin, reason="first model")
    promotion_decide(request_id=request.pk, user=signer, approve=True, password=PASSWORD, reason="ok")
    predictions_create(model_version=version, item_ids=open_item_ids(dataset.pk), update_items=True)
    return dataset


@world_layer("second_version", below="trained_dataset")
def second_version_build() -> Any:
    """v2: the trained dataset trained again by admin1 ("more labels"), a candidate beside the v1 champion.

    A layer of its own: some hundred promotion tests need a candidate, and training one per test
    cost about half a second each.
    """
    from django.contrib.auth.models import User

    dataset = Dataset.objects.get(slug=DATASET_SLUG)
    return candidate_train(dataset, requested_by=User.objects.get(username=MODEL_ADMIN), reason="more labels")
