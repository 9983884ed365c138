"""What an import's publish does on PostgreSQL only: deferred checks first, fresh statistics after.

- Deferred foreign-key checks run at COMMIT, while the transaction holds the
  audit chain head, unless they are run earlier (workflow_site/deferred_checks.py):
  the publish runs them just before its audit event.
- A large publish refreshes the planner's statistics, so the next item list is
  not planned for the table as it was before.
"""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from annotations.models import GoldLabel
from tests.conftest import csv_bytes, synthetic_rows
from workflow_site.deferred_checks import deferred_checks_run_now

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="deferred constraints are PostgreSQL's"),
]


def test_a_broken_foreign_key_is_caught_when_the_checks_run_not_at_commit(dataset):
    label = dataset.label_classes.first()
    with pytest.raises(IntegrityError), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {GoldLabel._meta.db_table} (item_id, dataset_id, label_id, origin, updated_at) "
                "VALUES (%s, %s, %s, 'import', now())",
                [999_999_999, dataset.pk, label.pk],
            )
        deferred_checks_run_now()
        pytest.fail("the check should have failed here, before the transaction's end")


def test_an_import_publish_checks_its_rows_before_its_audit_event(dataset, model_admin):
    from annotations.services import import_batch_create

    with CaptureQueriesContext(connection) as ctx:
        import_batch_create(
            dataset=dataset, user=model_admin, file_name="a.csv", data=csv_bytes(synthetic_rows(3)), purpose="review"
        )
    statements = [query["sql"] for query in ctx.captured_queries]
    checks = max(i for i, sql in enumerate(statements) if sql.startswith("SET CONSTRAINTS ALL IMMEDIATE"))
    completed = next(i for i, sql in enumerate(statements) if "import.completed" in sql)
    publish_items = next(i for i, sql in enumerate(statements) if sql.startswith('INSERT INTO "annotations_item"'))
    assert publish_items < checks < completed


def test_a_large_publish_refreshes_the_planner_statistics(dataset, model_admin, monkeypatch):
    from annotations import imports
    from annotations.services import import_batch_create

    monkeypatch.setattr(imports, "_ANALYZE_AFTER_ROWS", 3)
    with CaptureQueriesContext(connection) as ctx:
        import_batch_create(
            dataset=dataset, user=model_admin, file_name="a.csv", data=csv_bytes(synthetic_rows(3)), purpose="review"
        )
    assert [q["sql"] for q in ctx.captured_queries if q["sql"].startswith("ANALYZE")] == [
        'ANALYZE "annotations_item"',
        'ANALYZE "annotations_goldlabel"',
    ]
