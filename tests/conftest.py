"""Personas, a small dataset, and helpers shared by every test module."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from annotations.models import Dataset, DatasetMembership, Feature, ImportBatch, LabelClass
from models_app.models import RetrainingPolicy

# The real-worker fixtures live in tests/worker.py; importing them here defines
# them once for the whole session (one worker process, not one per module).
from tests.worker import celery_worker_process, live_worker  # noqa: E402,F401
from workflow_site.access import Role

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture(autouse=True)
def _celery_eager():
    """Tasks run in-process unless a test starts a real worker."""
    from workflow_site.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager = False


def make_user(username: str, *roles: Role, dataset: Dataset | None = None) -> User:
    user = User.objects.create_user(
        username=username, password=PASSWORD, first_name=username.capitalize(), last_name="Tester"
    )
    for role in roles:
        user.groups.add(Group.objects.get_or_create(name=str(role))[0])
    if dataset is not None:
        DatasetMembership.objects.create(dataset=dataset, user=user)
    return user


@pytest.fixture
def dataset(db) -> Dataset:
    ds = Dataset.objects.create(name="Tumours", slug="tumours", description="Test data")
    Feature.objects.create(dataset=ds, position=0, name="radius", dtype="float", unit="mm", normal_min=5, normal_max=15)
    Feature.objects.create(dataset=ds, position=1, name="texture", dtype="float", unit="grey levels")
    Feature.objects.create(dataset=ds, position=2, name="lobes", dtype="integer")
    LabelClass.objects.create(dataset=ds, position=0, name="malignant", display_name="Malignant")
    LabelClass.objects.create(dataset=ds, position=1, name="benign", display_name="Benign")
    RetrainingPolicy.objects.create(dataset=ds, new_gold_labels=5)
    return ds


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
def model_admin(dataset) -> User:
    return make_user("admin1", Role.MODEL_ADMIN, dataset=dataset)


@pytest.fixture
def model_admin2(dataset) -> User:
    return make_user("admin2", Role.MODEL_ADMIN, dataset=dataset)


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


def login(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def csv_bytes(rows: list[dict], columns: list[str] | None = None) -> bytes:
    columns = columns or list(rows[0])
    out = io.StringIO()
    out.write(",".join(columns) + "\n")
    for row in rows:
        out.write(",".join(str(row.get(c, "")) for c in columns) + "\n")
    return out.getvalue().encode()


def synthetic_rows(n: int, start: int = 0, labelled: bool = True, prefix: str = "t") -> list[dict]:
    """Separable rows: malignant have a large radius, benign a small one."""
    rows = []
    for i in range(start, start + n):
        malignant = i % 2 == 0
        row = {
            "external_id": f"{prefix}{i:05d}",
            "radius": round((18 if malignant else 9) + (i % 7) * 0.3, 3),
            "texture": round(15 + (i % 5), 3),
            "lobes": 2 + i % 3,
        }
        if labelled:
            row["label"] = "malignant" if malignant else "benign"
        rows.append(row)
    return rows


@pytest.fixture
def import_rows(model_admin) -> Callable[..., ImportBatch]:
    from annotations.services import import_batch_create

    def _import(rows: list[dict], purpose: str = ImportBatch.Purpose.REVIEW, name: str = "rows.csv") -> ImportBatch:
        ds = Dataset.objects.get(slug="tumours")
        return import_batch_create(dataset=ds, user=model_admin, file_name=name, data=csv_bytes(rows), purpose=purpose)

    return _import


@pytest.fixture
def trained_dataset(dataset, model_admin, model_admin2, import_rows, django_capture_on_commit_callbacks):
    """A dataset with a labelled seed, a holdout, an open pool and an approved champion (v1)."""
    from governance.promotions import promotion_decide, promotion_request_create
    from models_app.models import TrainingRun
    from models_app.prediction import open_item_ids, predictions_create
    from models_app.services import training_run_request
    from models_app.training import training_run_execute

    import_rows(synthetic_rows(20, start=0), name="seed.csv")
    import_rows(synthetic_rows(20, start=100), purpose=ImportBatch.Purpose.HOLDOUT, name="holdout.csv")
    import_rows(synthetic_rows(30, start=200, labelled=False), name="pool.csv")
    run = training_run_request(
        dataset=dataset, trigger=TrainingRun.Trigger.SEED, requested_by=model_admin, reason="first", dispatch=False
    )
    version = training_run_execute(run_id=run.pk)
    assert version is not None
    request = promotion_request_create(model_version=version, user=model_admin, reason="first model")
    promotion_decide(request_id=request.pk, user=model_admin2, approve=True, password=PASSWORD, reason="ok")
    predictions_create(model_version=version, item_ids=open_item_ids(dataset.pk), update_items=True)
    return dataset
