"""Personas, the Tumours dataset, the shared trained world, and the hooks that keep the suite fast."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.test.utils import override_settings

from annotations.models import Dataset, ImportBatch
from models_app.models import ModelVersion
from tests import db_template, world

# Re-exported: test modules import these helpers from here as well as from tests.helpers.
from tests.helpers import (  # noqa: F401
    DATASET_SLUG,
    MODEL_ADMIN,
    MODEL_ADMIN2,
    PASSWORD,
    csv_bytes,
    login,
    make_user,
    synthetic_rows,
    tumours_dataset_create,
)

# The real-worker fixtures live in tests/worker.py; importing them here defines
# them once for the whole session (one worker process, not one per module).
from tests.worker import celery_worker_process, live_worker  # noqa: E402,F401
from workflow_site.access import Role

# xdist workers clone one migrated database instead of each migrating its own (tests/db_template.py);
# bound here so that it overrides pytest-django's fixture of the same name.
django_db_setup = db_template.django_db_setup


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    world.order_items(items)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    world.leave_unwanted(item)


@pytest.fixture(scope="session", autouse=True)
def _fast_password_hashing() -> Iterator[None]:
    """PBKDF2 is slow on purpose (~0.3 s per user made and per signature checked); tests need no such defence."""
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture(scope="session", autouse=True)
def _own_broker_namespace() -> None:
    """This process's keys on a shared broker live under its own prefix (tests/celery_app.py)."""
    from tests.celery_app import NAMESPACE_ENV, app, use_broker_namespace

    use_broker_namespace(app, os.environ[NAMESPACE_ENV])


@pytest.fixture(autouse=True)
def queue_draws() -> Iterator[mock.MagicMock]:
    """The queue's random draws (audit slice, blind review) never fire unless a test sets them.

    A test that wants the slice or a blind card sets `queue_draws.return_value = 0.0`
    (every draw fires) or a list in `side_effect`. Tests that predate the slice
    expect the strategy's order, which a 10% random slice would make flaky.
    """
    from annotations.queue import queue_random

    with mock.patch.object(queue_random, "random", return_value=0.999999) as draws:
        yield draws


@pytest.fixture(autouse=True)
def _celery_eager():
    """Tasks run in-process unless a test starts a real worker."""
    from workflow_site.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager = False


@pytest.fixture(scope="session")
def _world_stack(request: pytest.FixtureRequest, django_db_setup, django_db_blocker) -> Iterator[world.WorldStack]:
    stack = world.WorldStack(django_db_blocker)
    request.config.stash[world.STACK] = stack
    yield stack
    stack.leave_to(0)
    del request.config.stash[world.STACK]


@pytest.fixture(autouse=True)
def _shared_world(request: pytest.FixtureRequest, _celery_eager) -> Iterator[None]:
    """Open the world layers this test shares (tests/world.py) before its own transaction begins."""
    wanted = world.wanted_layers(request.node)
    stack = request.getfixturevalue("_world_stack") if wanted else None
    if stack is not None:
        stack.enter(wanted)
    yield
    if stack is not None:
        stack.restore_files()


def _in_trained_world(request: pytest.FixtureRequest) -> bool:
    return "trained_dataset" in request.fixturenames


@pytest.fixture
def trained_dataset(request: pytest.FixtureRequest, db) -> Dataset:
    """Tumours with a labelled seed, a holdout, an open pool and an approved champion (v1).

    Built once per process and shared (tests/world.py); a transactional test gets its own, committed.
    `dataset`, `model_admin` and `model_admin2` are then this dataset and its two admins.
    """
    if world.shares(request, "trained_dataset"):
        return Dataset.objects.get(slug=DATASET_SLUG)
    return world.trained_dataset_build()


@pytest.fixture
def second_version(request: pytest.FixtureRequest, trained_dataset: Dataset) -> ModelVersion:
    """v2 of the trained dataset, a candidate trained by admin1: built once per process and shared like
    trained_dataset (tests/world.py); a transactional test gets its own."""
    if world.shares(request, "second_version"):
        return ModelVersion.objects.get(dataset=trained_dataset, version=2)
    return world.second_version_build()


@pytest.fixture
def dataset(request: pytest.FixtureRequest, db) -> Dataset:
    if _in_trained_world(request):
        return request.getfixturevalue("trained_dataset")
    return tumours_dataset_create()


@pytest.fixture
def reviewer(dataset) -> User:
    return make_user("reviewer", Role.REVIEWER, dataset=dataset)


@pytest.fixture
def reviewer2(dataset) -> User:
    return make_user("reviewer2", Role.REVIEWER, dataset=dataset)


@pytest.fixture
def adjudicator(dataset) -> User:
    return make_user("adjudicator", Role.ADJUDICATOR, dataset=dataset)


@pytest.fixture
def model_admin(request: pytest.FixtureRequest, dataset) -> User:
    if _in_trained_world(request):
        return User.objects.get(username=MODEL_ADMIN)
    return make_user(MODEL_ADMIN, Role.MODEL_ADMIN, dataset=dataset)


@pytest.fixture
def model_admin2(request: pytest.FixtureRequest, dataset) -> User:
    if _in_trained_world(request):
        return User.objects.get(username=MODEL_ADMIN2)
    return make_user(MODEL_ADMIN2, Role.MODEL_ADMIN, dataset=dataset)


@pytest.fixture
def auditor(db) -> User:
    return make_user("auditor", Role.AUDITOR)


@pytest.fixture
def outsider(db) -> User:
    """Logged in, but holds no role at all."""
    return make_user("outsider")


@pytest.fixture
def non_member_reviewer(db) -> User:
    """A reviewer of some other dataset."""
    return make_user("stranger", Role.REVIEWER)


@pytest.fixture
def import_rows(model_admin) -> Callable[..., ImportBatch]:
    from annotations.services import import_batch_create

    def _import(rows: list[dict], purpose: str = ImportBatch.Purpose.REVIEW, name: str = "rows.csv") -> ImportBatch:
        ds = Dataset.objects.get(slug=DATASET_SLUG)
        return import_batch_create(dataset=ds, user=model_admin, file_name=name, data=csv_bytes(rows), purpose=purpose)

    return _import


@pytest.fixture
def broker() -> Iterator[mock.MagicMock]:
    """The only mock: the broker call that hands a training run to a worker."""
    with mock.patch("models_app.tasks.training_run_execute.apply_async") as apply_async:
        yield apply_async
