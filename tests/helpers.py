"""Plain helpers shared by the test modules and their fixtures: personas, the Tumours schema, CSV rows.

No fixtures here (they live in conftest.py), so this module can be imported by
conftest.py, by tests/world.py and by test modules alike.
"""

from __future__ import annotations

import io

from django.contrib.auth.models import Group, User
from django.test import Client

from annotations.models import Dataset, DatasetMembership, Feature, GoldLabel, Item, LabelClass, Review
from annotations.queue import queue_next_item
from annotations.services import ReviewAnswer, review_submit
from governance.models import AuditEvent
from models_app.models import RetrainingPolicy, TrainingRun
from workflow_site.access import Role

PASSWORD = "correct-horse-battery-staple"
DATASET_SLUG = "tumours"
# The two model admins of the Tumours dataset: admin1 requests, admin2 signs.
MODEL_ADMIN = "admin1"
MODEL_ADMIN2 = "admin2"


def make_user(username: str, *roles: Role, dataset: Dataset | None = None) -> User:
    user = User.objects.create_user(
        username=username, password=PASSWORD, first_name=username.capitalize(), last_name="Tester"
    )
    for role in roles:
        user.groups.add(Group.objects.get_or_create(name=str(role))[0])
    if dataset is not None:
        DatasetMembership.objects.create(dataset=dataset, user=user)
    return user


def tumours_dataset_create() -> Dataset:
    """The schema every test dataset uses: three features, two classes, retrain after 5 new gold labels."""
    ds = Dataset.objects.create(name="Tumours", slug=DATASET_SLUG, description="Test data")
    Feature.objects.create(dataset=ds, position=0, name="radius", dtype="float", unit="mm", normal_min=5, normal_max=15)
    Feature.objects.create(dataset=ds, position=1, name="texture", dtype="float", unit="grey levels")
    Feature.objects.create(dataset=ds, position=2, name="lobes", dtype="integer")
    LabelClass.objects.create(dataset=ds, position=0, name="malignant", display_name="Malignant")
    LabelClass.objects.create(dataset=ds, position=1, name="benign", display_name="Benign")
    RetrainingPolicy.objects.create(dataset=ds, new_gold_labels=5)
    return ds


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


# --- reviewing ----------------------------------------------------------------------------------------------


def review_counts() -> dict[str, int]:
    """What a review writes: compare before and after to show that a refused answer wrote nothing."""
    return {
        "reviews": Review.objects.count(),
        "gold_labels": GoldLabel.objects.count(),
        "audit_events": AuditEvent.objects.count(),
        "training_runs": TrainingRun.objects.count(),
        "done": Item.objects.filter(queue_state=Item.QueueState.DONE).count(),
    }


def other_label(item: Item) -> LabelClass:
    """A label of the item's dataset that is not the predicted one."""
    label = LabelClass.objects.filter(dataset_id=item.dataset_id).exclude(pk=item.predicted_label_id).first()
    assert label is not None
    return label


def answer_for(item: Item, *, accept: bool = True, reason: str = "") -> ReviewAnswer:
    """Accept the shown prediction, or correct it to another label."""
    label = item.predicted_label if accept else other_label(item)
    return ReviewAnswer(label=label, shown_prediction_id=item.prediction_id, reason=reason)


def review_next(dataset: Dataset, reviewer: User, *, accept: bool = True) -> Review:
    """Take the next item from the queue and answer it."""
    queued = queue_next_item(dataset=dataset, reviewer=reviewer)
    assert queued is not None
    return review_submit(item_id=queued.item.pk, reviewer=reviewer, answer=answer_for(queued.item, accept=accept))


def candidate_train(dataset: Dataset, *, requested_by: User | None = None, reason: str = "another run"):  # type: ignore[no-untyped-def]
    """Train the dataset again, here and now (no worker): the new, evaluated candidate version."""
    from models_app.services import training_run_request
    from models_app.training import training_run_execute

    run = training_run_request(
        dataset=dataset, trigger=TrainingRun.Trigger.MANUAL, requested_by=requested_by, reason=reason, dispatch=False
    )
    version = training_run_execute(run_id=run.pk)
    assert version is not None, TrainingRun.objects.get(pk=run.pk).error
    return version


def database_connect(*, user: str | None = None, autocommit: bool = False):  # type: ignore[no-untyped-def]
    """A second psycopg connection to the test database (PostgreSQL), as the test's own role or as `user`:
    for what another session sees, or which locks it meets."""
    import psycopg
    from django.db import connection

    settings = connection.settings_dict
    return psycopg.connect(
        dbname=settings["NAME"],
        user=user or settings["USER"],
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
        password=None if user else settings["PASSWORD"] or None,
        autocommit=autocommit,
    )


def champion_predictions_removed(dataset: Dataset):  # type: ignore[no-untyped-def]
    """The dataset's champion, with its predictions deleted and its open items showing none; returns
    (champion, the open items' ids in id order): a refresh then has every open item to predict."""
    from models_app.models import ModelVersion, Prediction

    champion = ModelVersion.objects.get(dataset=dataset, stage=ModelVersion.Stage.CHAMPION)
    open_items = Item.objects.filter(dataset=dataset, queue_state="open").order_by("pk")
    Prediction.objects.filter(model_version=champion).delete()
    open_items.update(prediction_id=None, predicted_by_version=None, predicted_label=None, queue_priority=None)
    return champion, list(open_items.values_list("pk", flat=True))


def database_sessions() -> int:
    """Sessions connected to the test database (PostgreSQL): to show that threads closed their connections."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        return cursor.fetchone()[0]
