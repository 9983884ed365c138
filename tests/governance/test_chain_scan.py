"""The verifiers' fast row reader gives exactly the fields the model gives, so a fast walk hashes the same bytes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.db import transaction

from governance.audit import audit_record
from governance.audit_chain import chain_hash, event_fields, verify_chain
from governance.chain_scan import audit_event_rows
from governance.models import AuditEvent

pytestmark = pytest.mark.django_db


def _record(n: int, **extra: object) -> None:
    with transaction.atomic():
        for i in range(n):
            audit_record(
                actor=None,
                action="test.event",
                object_type="thing",
                object_id=i,
                dataset_id=None if i % 2 else 7,
                before={"n": i, "ü": 'é\n\t"q"', "nested": {"z": [1, 2.5, None, True]}},
                after=None if i % 3 else {"small": 1e-07, "big": 12345678901234567, "neg": -0.0},
                reason=f"reason {i} ✓",
                **extra,
            )


def test_rows_hash_exactly_as_the_model_does():
    _record(7)
    models = list(AuditEvent.objects.order_by("seq"))
    rows = list(audit_event_rows())
    assert [r.seq for r in rows] == [m.seq for m in models]
    for row, model in zip(rows, models, strict=True):
        assert event_fields(row) == event_fields(model)
        assert chain_hash(row.prev_hash, event_fields(row)) == model.hash
    assert verify_chain(audit_event_rows()) == (7, None)


def test_timestamps_with_no_microseconds_or_another_zone_format_alike():
    # Written directly (a broken chain does not matter here): the two readers must agree on awkward times.
    moments = [
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),  # microsecond 0: still six digits
        datetime(2026, 6, 30, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-7))),  # next day in UTC
        datetime(1999, 12, 31, 23, 0, 0, 1, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    ]
    for i, moment in enumerate(moments, start=1):
        AuditEvent.objects.create(seq=i, created_at=moment, action="test.time", prev_hash="0" * 64, hash=f"{i:064x}")
    for row, model in zip(audit_event_rows(), AuditEvent.objects.order_by("seq"), strict=True):
        assert event_fields(row)["created_at"] == event_fields(model)["created_at"]


def test_batches_and_bounds_cover_exactly_the_range_asked_for():
    _record(11)
    assert [r.seq for r in audit_event_rows(batch=3)] == list(range(1, 12))
    assert [r.seq for r in audit_event_rows(after_seq=4, up_to_seq=9, batch=2)] == [5, 6, 7, 8, 9]
    assert list(audit_event_rows(after_seq=11)) == []
