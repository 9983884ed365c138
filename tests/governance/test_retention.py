"""Retention with tombstones (issue 10, point 10): expired payloads go, their hashes stay, the chain verifies.

Expiry is driven by moving `now` past the retention period, not by waiting. The
tamper tests act as a database administrator would (triggers switched off,
rolled back with the test), as in test_audit.py and test_checkpoints.py.
"""

from __future__ import annotations

import io
from datetime import timedelta
from types import SimpleNamespace
from unittest import mock

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from annotations.imports import full_report_path
from annotations.models import Dataset, ImportBatch, Item, LabelClass, Review
from annotations.queue import queue_next_item
from annotations.retention import dataset_legal_hold_set, dataset_retention_set
from annotations.services import ImportRejected, ReviewAnswer, import_batch_create, review_submit
from governance.audit import audit_record
from governance.audit_chain import (
    GENESIS_HASH,
    LEGACY_SCHEME,
    PAYLOAD_DIGEST_SCHEME,
    chain_hash,
    event_fields,
    payload_digest,
    verify_chain,
)
from governance.checkpoint_signing import new_private_key_b64
from governance.checkpoints import audit_checkpoint_create, audit_trail_verify
from governance.models import AuditChainHead, AuditEvent
from governance.retention import APPLIED_ACTION
from governance.retention import retention_apply as retention_apply_now
from governance.tasks import retention_apply_task
from tests.conftest import csv_bytes, login, synthetic_rows
from workflow_site.env import env_optional_days

ON_POSTGRES = connection.vendor == "postgresql"
TRIGGER = "governance_auditevent_append_only"
LATER = timedelta(days=31)  # past a 30-day period


@pytest.fixture(autouse=True)
def signing_key(settings) -> None:
    settings.LOUPE_AUDIT_SIGNING_KEY = new_private_key_b64()
    settings.LOUPE_AUDIT_TRUSTED_KEYS = []
    settings.LOUPE_RETENTION_DAYS = None


@pytest.fixture
def kept_30_days(dataset, model_admin, import_rows) -> Dataset:
    """Tumours with six open items and a 30-day retention period."""
    import_rows(synthetic_rows(6, labelled=False))
    return dataset_retention_set(dataset_id=dataset.pk, user=model_admin, retention_days=30)


def retention_apply(*, now=None, **options):  # type: ignore[no-untyped-def]
    """Retention run as if the clock read `now`: its audit event is dated then too, as a real run's is.

    verify_audit replays every run against its own time (governance/tombstone_audit.py), so a run
    dated today with a cutoff from next month would rightly be reported.
    """
    if now is None:
        return retention_apply_now(**options)
    with mock.patch("django.utils.timezone.now", return_value=now):
        return retention_apply_now(now=now, **options)


def _raw(sql: str, params: list | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _as_database_admin() -> None:
    if ON_POSTGRES:
        _raw("SET CONSTRAINTS ALL IMMEDIATE")
        _raw(f"ALTER TABLE governance_auditevent DISABLE TRIGGER {TRIGGER}")
    else:
        _raw(f"DROP TRIGGER {TRIGGER}_update")
        _raw(f"DROP TRIGGER {TRIGGER}_delete")


def _verify() -> str:
    out = io.StringIO()
    try:
        call_command("verify_audit", "--no-record", stdout=out)
    except CommandError as exc:
        return f"FAILED: {exc}"
    return out.getvalue()


def _refused(sql: str, params: list) -> bool:
    try:
        with transaction.atomic():
            _raw(sql, params)
    except DatabaseError as exc:
        assert "is append-only (" in str(exc) or "constraint" in str(exc).lower()
        return True
    return False


def _tombstone_sql(extra: str = "") -> str:
    return (
        "UPDATE governance_auditevent SET before = NULL, after = NULL, reason = '', tombstoned_at = %s"
        f"{extra} WHERE seq = %s"
    )


# --- what expires, and the chain afterwards ------------------------------------------------------------


def test_expired_payloads_become_tombstones_and_the_chain_and_checkpoints_still_verify(kept_30_days):
    dataset = kept_30_days
    checkpoint = audit_checkpoint_create()
    live = list(AuditEvent.objects.filter(dataset_id=dataset.pk).exclude(action="dataset.retention_changed"))
    assert live and all(e.hash_scheme == PAYLOAD_DIGEST_SCHEME for e in live)
    hashes = {e.seq: e.hash for e in live}

    batches = retention_apply(now=timezone.now() + LATER)

    assert sum(b.items_purged for b in batches) == 6
    assert sum(b.events_tombstoned for b in batches) == len(live)
    for event in AuditEvent.objects.filter(seq__in=hashes):
        assert event.is_tombstone
        assert (event.before, event.after, event.reason) == (None, None, "")
        assert event.hash == hashes[event.seq]  # the header and its hash are kept
    kept = AuditEvent.objects.get(action="dataset.retention_changed")
    assert kept.after == {"retention_days": 30, "site_default_days": None}  # the record of retention stays
    for item in Item.objects.filter(dataset=dataset):
        assert item.is_purged and item.values == {} and item.prediction_explanation is None
        assert len(item.content_hash) == 64 and len(item.feature_hash) == 64
    result = audit_trail_verify()
    assert result.ok and result.tombstones == len(live) and result.checkpoints_checked == 1
    assert checkpoint.tree_size <= result.events_checked
    assert f"{len(live)} tombstones: payload removed under the retention policy" in _verify()


def test_nothing_expires_before_the_period_ends(kept_30_days):
    assert retention_apply(now=timezone.now() + timedelta(days=29)) == []
    assert not AuditEvent.objects.filter(tombstoned_at__isnull=False).exists()
    assert not Item.objects.filter(purged_at__isnull=False).exists()


def test_a_dataset_with_no_period_falls_back_to_the_site_default_and_else_keeps_forever(dataset, import_rows, settings):
    import_rows(synthetic_rows(2, labelled=False))
    assert retention_apply(now=timezone.now() + timedelta(days=10_000)) == []

    settings.LOUPE_RETENTION_DAYS = 7
    batches = retention_apply(now=timezone.now() + timedelta(days=8))

    assert sum(b.items_purged for b in batches) == 2


def test_a_legal_hold_keeps_everything_until_it_is_lifted(kept_30_days, model_admin):
    dataset_legal_hold_set(dataset_id=kept_30_days.pk, user=model_admin, hold=True, reason="Litigation 2026-17")

    assert retention_apply(now=timezone.now() + LATER) == []
    assert not Item.objects.filter(purged_at__isnull=False).exists()

    dataset_legal_hold_set(dataset_id=kept_30_days.pk, user=model_admin, hold=False, reason="Case closed")
    assert retention_apply(now=timezone.now() + LATER)
    placed = AuditEvent.objects.get(action="dataset.legal_hold_placed")
    assert placed.reason == "Litigation 2026-17" and not placed.is_tombstone  # the hold's own record is kept


def test_each_batch_is_one_event_naming_its_counts_and_seq_range_and_a_second_run_does_nothing(kept_30_days):
    now = timezone.now() + LATER
    with transaction.atomic():
        for n in range(6):
            audit_record(actor=None, action="test.event", object_id=n, dataset_id=kept_30_days.pk, after={"n": n})
    expired = list(
        AuditEvent.objects.filter(dataset_id=kept_30_days.pk)
        .exclude(action="dataset.retention_changed")
        .order_by("seq")
        .values_list("seq", flat=True)
    )

    batches = retention_apply(batch_size=4, now=now)

    applied = list(AuditEvent.objects.filter(action=APPLIED_ACTION).order_by("seq"))
    assert len(applied) == len(batches) >= 2
    assert [e.after["items_purged"] for e in applied][:2] == [4, 2]
    assert applied[0].after["first_seq"] == expired[0] and applied[0].after["last_seq"] == expired[3]
    assert sum(e.after["events_tombstoned"] for e in applied) == len(expired)
    assert all(e.dataset_id == kept_30_days.pk and e.actor_username == "retention" for e in applied)

    assert retention_apply(batch_size=4, now=now) == []
    assert AuditEvent.objects.filter(action=APPLIED_ACTION).count() == len(applied)
    assert audit_trail_verify().ok


def test_the_command_and_the_beat_task_apply_it(kept_30_days):
    out = io.StringIO()
    call_command("apply_retention", "--dataset", kept_30_days.slug, stdout=out)
    assert "0 items purged" in out.getvalue()  # nothing has expired yet
    with pytest.raises(CommandError, match="No dataset with slug nope"):
        call_command("apply_retention", "--dataset", "nope")
    with pytest.raises(CommandError, match="--batch-size must be at least 1"):
        call_command("apply_retention", "--batch-size", "0")
    assert retention_apply_task.delay().get() == 0


def test_events_written_before_hash_scheme_2_are_never_tombstoned(kept_30_days):
    legacy = _append_legacy_event(dataset_id=kept_30_days.pk)

    retention_apply(now=timezone.now() + LATER)

    legacy.refresh_from_db()
    assert legacy.hash_scheme == LEGACY_SCHEME and not legacy.is_tombstone and legacy.after == {"old": True}
    assert verify_chain(AuditEvent.objects.order_by("seq"))[1] is None


def _append_legacy_event(*, dataset_id: int) -> AuditEvent:
    """A scheme-1 event at the head, as every event was written before migration 0021."""
    with transaction.atomic():
        head = AuditChainHead.objects.select_for_update().get()
        event = AuditEvent(
            seq=head.seq + 1,
            created_at=timezone.now(),
            actor_username="old",
            action="test.legacy",
            dataset_id=dataset_id,
            after={"old": True},
            reason="before retention",
            prev_hash=head.hash,
        )
        event.hash = chain_hash(event.prev_hash, event_fields(event))
        event.save()
        AuditChainHead.objects.filter(pk=head.pk).update(seq=event.seq, prev_hash=event.prev_hash, hash=event.hash)
    return event


# --- tampering ---------------------------------------------------------------------------------------------


def test_editing_a_live_scheme_2_payload_is_detected_naming_the_event(kept_30_days):
    target = AuditEvent.objects.filter(dataset_id=kept_30_days.pk).order_by("seq").first()
    _as_database_admin()
    _raw("UPDATE governance_auditevent SET reason = %s WHERE seq = %s", ["nobody said this", target.seq])

    message = _verify()

    assert message.startswith(f"FAILED: Audit chain broken at event #{target.seq}: the payload (before, after or")


def test_undoing_a_tombstone_with_a_forged_payload_is_detected_naming_the_event(kept_30_days):
    retention_apply(now=timezone.now() + LATER)
    target = AuditEvent.objects.filter(tombstoned_at__isnull=False).order_by("seq").first()
    _as_database_admin()
    _raw(
        "UPDATE governance_auditevent SET after = %s, tombstoned_at = NULL WHERE seq = %s",
        ['{"forged": true}', target.seq],
    )

    assert _verify().startswith(f"FAILED: Audit chain broken at event #{target.seq}: the payload (before, after or")


def test_a_payload_left_on_a_tombstone_must_still_match_its_digest():
    """The CHECK constraint keeps tombstones empty; should it be dropped too, the verifier still judges what is left."""
    event = SimpleNamespace(
        seq=1,
        created_at=timezone.now(),
        actor_id=None,
        actor_username="",
        action="test.event",
        object_type="",
        object_id="",
        dataset_id=None,
        before=None,
        after={"forged": True},
        reason="",
        request_id="",
        hash_scheme=PAYLOAD_DIGEST_SCHEME,
        payload_sha256=payload_digest(None, {"genuine": True}, ""),
        tombstoned_at=timezone.now(),
        prev_hash=GENESIS_HASH,
    )
    event.hash = chain_hash(GENESIS_HASH, event_fields(event))

    _, broken = verify_chain([event])

    assert broken is not None and broken.seq == 1
    assert broken.reason.startswith("the tombstoned event's leftover payload does not match the digest")
    event.after = {"genuine": True}
    assert verify_chain([event])[1] is None


def test_editing_a_tombstones_header_is_detected_naming_the_event(kept_30_days):
    retention_apply(now=timezone.now() + LATER)
    target = AuditEvent.objects.filter(tombstoned_at__isnull=False).order_by("seq").first()
    _as_database_admin()
    _raw("UPDATE governance_auditevent SET actor_username = %s WHERE seq = %s", ["someone-else", target.seq])

    assert _verify().startswith(f"FAILED: Audit chain broken at event #{target.seq}: hash does not match")


def test_the_database_allows_the_tombstone_update_and_refuses_every_other(kept_30_days):
    """Both databases: PostgreSQL's trigger (0003, rewritten in 0021) and SQLite's (0006, rewritten in 0021)."""
    target = AuditEvent.objects.filter(dataset_id=kept_30_days.pk).order_by("seq").first()
    now = timezone.now()

    assert _refused("UPDATE governance_auditevent SET reason = %s WHERE seq = %s", ["edited", target.seq])
    assert _refused(_tombstone_sql(", action = 'x.forged'"), [now, target.seq])  # a tombstone that edits the header
    assert _refused(_tombstone_sql(", payload_sha256 = %s"), [now, "0" * 64, target.seq])
    assert _refused("UPDATE governance_auditevent SET after = NULL WHERE seq = %s", [target.seq])  # no tombstone mark
    assert _refused("DELETE FROM governance_auditevent WHERE seq = %s", [target.seq])

    with transaction.atomic():
        _raw(_tombstone_sql(), [now, target.seq])  # retention's own update goes through
    assert AuditEvent.objects.get(seq=target.seq).is_tombstone

    assert _refused("UPDATE governance_auditevent SET tombstoned_at = NULL WHERE seq = %s", [target.seq])
    assert _refused("UPDATE governance_auditevent SET after = %s WHERE seq = %s", ['{"back": 1}', target.seq])
    assert _refused(_tombstone_sql(), [now + timedelta(days=1), target.seq])  # nor tombstoned twice
    legacy = _append_legacy_event(dataset_id=kept_30_days.pk)
    assert _refused(_tombstone_sql(), [now, legacy.seq])  # a scheme-1 event cannot lose its payload
    # The chain still verifies (scheme 2), but no retention run accounts for this tombstone: verification fails.
    result = audit_trail_verify()
    assert result.chain_break is None and not result.ok
    assert f"event #{target.seq}" in result.problems[0] and "no retention run records it" in result.problems[0]


def test_a_tombstone_made_outside_retention_fails_verification_naming_it(kept_30_days):
    retention_apply(now=timezone.now() + LATER)
    assert audit_trail_verify().ok  # retention's own tombstones are accounted for by its runs
    with transaction.atomic():
        audit_record(actor=None, action="promotion.approved", dataset_id=kept_30_days.pk, reason="override: why")
    fresh = AuditEvent.objects.order_by("-seq").first()
    with transaction.atomic():
        _raw(_tombstone_sql(), [timezone.now(), fresh.seq])  # as the application role could

    result = audit_trail_verify()

    assert result.chain_break is None and not result.ok
    assert any(f"event #{fresh.seq} (promotion.approved)" in p for p in result.problems)


# --- reviews' free text and import reports -----------------------------------------------------------------

TYPED = "Mr K. Example, bed 4, NHS 485 777 3456"


def _typed_review(dataset: Dataset, reviewer) -> Review:  # type: ignore[no-untyped-def]
    item = queue_next_item(dataset=dataset, reviewer=reviewer).item
    label = LabelClass.objects.filter(dataset=dataset).first()
    return review_submit(
        item_id=item.pk, reviewer=reviewer, answer=ReviewAnswer(label=label, shown_prediction_id=None, reason=TYPED)
    )


def _rejected_import(dataset: Dataset, model_admin) -> ImportBatch:  # type: ignore[no-untyped-def]
    rows = synthetic_rows(2, labelled=False, prefix="bad")
    rows[0]["radius"] = TYPED.replace(",", "")
    with pytest.raises(ImportRejected) as rejected:
        import_batch_create(
            dataset=dataset, user=model_admin, file_name="bad.csv", data=csv_bytes(rows), purpose="review"
        )
    return rejected.value.batch


def test_review_texts_and_import_reports_expire_too_each_batch_audited_and_the_trail_verifies(
    kept_30_days, reviewer, model_admin
):
    review = _typed_review(kept_30_days, reviewer)
    rejected = _rejected_import(kept_30_days, model_admin)
    imported = ImportBatch.objects.get(dataset=kept_30_days, status=ImportBatch.Status.IMPORTED)
    assert retention_apply(now=timezone.now() + timedelta(days=29)) == []

    batches = retention_apply(now=timezone.now() + LATER)

    assert sum(b.review_reasons_removed for b in batches) == 1
    assert sum(b.import_reports_removed for b in batches) == 2 and sum(b.files_deleted for b in batches) == 1
    review.refresh_from_db()
    assert review.reason == "" and review.reason_removed_at is not None and review.label_id is not None
    for batch in (rejected, imported):
        batch.refresh_from_db()
        assert batch.purged_at is not None and batch.report["errors"] == [] and batch.report["warnings"] == []
    assert rejected.report["error_count"] == 1 and not full_report_path(rejected.pk).exists()
    [applied] = AuditEvent.objects.filter(action=APPLIED_ACTION)
    assert applied.after["review_reasons_removed"] == 1
    assert applied.after["first_review_id"] == applied.after["last_review_id"] == review.pk
    assert applied.after["import_batches_purged"] == [imported.pk, rejected.pk]
    assert applied.after["files_deleted"] == 1
    # Nothing of what was typed or uploaded is left in the database, the audit trail included.
    assert not Review.objects.filter(reason__contains="NHS").exists()
    assert not AuditEvent.objects.filter(reason__contains="NHS").exists()
    assert TYPED.replace(",", "") not in str(list(ImportBatch.objects.values_list("report", "error")))
    assert audit_trail_verify().ok
    assert retention_apply(now=timezone.now() + LATER) == []  # a second run finds nothing left


def test_a_legal_hold_keeps_review_texts_and_import_reports(kept_30_days, reviewer, model_admin):
    review = _typed_review(kept_30_days, reviewer)
    rejected = _rejected_import(kept_30_days, model_admin)
    dataset_legal_hold_set(dataset_id=kept_30_days.pk, user=model_admin, hold=True, reason="Litigation 2026-18")

    assert retention_apply(now=timezone.now() + LATER) == []

    assert Review.objects.get(pk=review.pk).reason == TYPED
    rejected.refresh_from_db()
    assert rejected.purged_at is None and rejected.report["errors"] and full_report_path(rejected.pk).exists()


def test_the_command_counts_review_texts_and_import_reports(kept_30_days, reviewer):
    _typed_review(kept_30_days, reviewer)
    out = io.StringIO()
    with mock.patch("governance.management.commands.apply_retention.retention_apply") as apply:
        apply.side_effect = lambda **kw: retention_apply(**kw, now=timezone.now() + LATER)
        call_command("apply_retention", "--dataset", kept_30_days.slug, stdout=out)
    assert "6 items purged, 1 review reasons and 1 import reports removed" in out.getvalue()


# --- items ---------------------------------------------------------------------------------------------------


def test_a_purged_item_is_never_served_for_review_even_to_its_holder(kept_30_days, reviewer):
    held = queue_next_item(dataset=kept_30_days, reviewer=reviewer)
    assert held is not None

    retention_apply(now=timezone.now() + LATER)

    assert Item.objects.get(pk=held.item.pk).leased_to_id is None
    assert queue_next_item(dataset=kept_30_days, reviewer=reviewer) is None


def test_item_history_says_the_data_was_removed_under_the_retention_policy(kept_30_days, auditor):
    item = Item.objects.filter(dataset=kept_30_days).first()
    retention_apply(now=timezone.now() + LATER)

    page = login(auditor).get(reverse("governance:item_history", args=[item.pk])).content.decode()

    assert "Data removed on " in page and "under the retention policy" in page
    listing = login(auditor).get(reverse("governance:audit_list")).content.decode()
    assert "payload removed on " in listing and "under the retention policy" in listing  # tombstones, as such


# --- configuration -----------------------------------------------------------------------------------------


def test_a_model_admin_sets_the_period_and_the_hold_on_the_settings_page_audited(dataset, model_admin):
    client = login(model_admin)

    client.post(reverse("annotations:retention_period", args=[dataset.pk]), {"retention_days": "90"})
    client.post(reverse("annotations:legal_hold", args=[dataset.pk]), {"legal_hold": "place", "reason": "Audit"})
    page = client.get(reverse("annotations:workbench_settings", args=[dataset.pk])).content.decode()

    dataset.refresh_from_db()
    assert dataset.retention_days == 90 and dataset.on_legal_hold and dataset.legal_hold_reason == "Audit"
    changed = AuditEvent.objects.get(action="dataset.retention_changed")
    assert (changed.before, changed.after["retention_days"]) == ({"retention_days": None}, 90)
    assert AuditEvent.objects.get(action="dataset.legal_hold_placed").reason == "Audit"
    assert 'data-retention="90"' in page and 'data-legal-hold="on"' in page
    # The page has two reason fields (stop switch, legal hold): each label says which act it explains.
    assert ">Why lift the legal hold?</label>" in page and ">Why switch the model's output off?</label>" in page


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"retention_days": "abc"}, "&#x27;abc&#x27; is not a whole number of days from 1 to 36500"),
        ({"retention_days": "0"}, "from 1 to 36500 (got 0)"),
        ({"retention_days": "-5"}, "is not a whole number of days"),
        ({"retention_days": "²"}, "is not a whole number of days"),  # a digit to str.isdigit(), not to int()
        ({"retention_days": "99999"}, "(got 99999)"),
        ({"retention_days": ""}, "The retention period is already that."),
    ],
)
def test_a_bad_period_is_refused_with_a_clear_message_and_changes_nothing(dataset, model_admin, data, message):
    client = login(model_admin)
    before = AuditEvent.objects.count()

    response = client.post(reverse("annotations:retention_period", args=[dataset.pk]), data, follow=True)

    assert message in response.content.decode()
    dataset.refresh_from_db()
    assert dataset.retention_days is None and AuditEvent.objects.count() == before


def test_a_legal_hold_needs_a_reason_either_way(dataset, model_admin):
    response = login(model_admin).post(
        reverse("annotations:legal_hold", args=[dataset.pk]), {"legal_hold": "place", "reason": " "}, follow=True
    )

    assert "Say why the legal hold is placed." in response.content.decode()
    assert not Dataset.objects.get(pk=dataset.pk).on_legal_hold


def test_reviewers_and_auditors_cannot_change_retention(dataset, reviewer, auditor):
    for user in (reviewer, auditor):
        client = login(user)
        assert (
            client.post(reverse("annotations:retention_period", args=[dataset.pk]), {"retention_days": "1"}).status_code
            == 403
        )
        assert (
            client.post(
                reverse("annotations:legal_hold", args=[dataset.pk]), {"legal_hold": "place", "reason": "x"}
            ).status_code
            == 403
        )


@pytest.mark.parametrize(("raw", "expected"), [("", None), ("30", 30)])
def test_the_site_default_is_read_from_the_environment(monkeypatch, raw, expected):
    monkeypatch.setenv("LOUPE_RETENTION_DAYS", raw)
    assert env_optional_days("LOUPE_RETENTION_DAYS") == expected


@pytest.mark.parametrize(("raw", "words"), [("0", "at least 1"), ("ten", "not a whole number of days")])
def test_a_bad_site_default_names_the_variable(monkeypatch, raw, words):
    monkeypatch.setenv("LOUPE_RETENTION_DAYS", raw)
    with pytest.raises(ImproperlyConfigured, match=f"LOUPE_RETENTION_DAYS='{raw}'.*{words}"):
        env_optional_days("LOUPE_RETENTION_DAYS")


def test_audit_record_stores_the_payload_digest_and_costs_one_more_hash(db):
    with transaction.atomic():
        event = audit_record(actor=None, action="test.event", after={"a": 1}, reason="why")
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.hash_scheme == PAYLOAD_DIGEST_SCHEME and len(stored.payload_sha256) == 64
    assert chain_hash(stored.prev_hash, event_fields(stored)) == stored.hash


def test_models_no_longer_read_purged_items_and_a_real_history_still_verifies(trained_dataset, model_admin):
    from models_app.data import holdout_labels
    from models_app.prediction import open_item_ids

    assert holdout_labels(trained_dataset) and open_item_ids(trained_dataset.pk)
    dataset_retention_set(dataset_id=trained_dataset.pk, user=model_admin, retention_days=1)

    retention_apply(now=timezone.now() + timedelta(days=2))

    assert not Item.objects.filter(dataset=trained_dataset, purged_at__isnull=True).exists()
    assert holdout_labels(trained_dataset) == [] and open_item_ids(trained_dataset.pk) == []
    result = audit_trail_verify()
    assert result.ok and result.tombstones > 10


def test_the_api_reads_and_sets_the_period_and_the_hold(dataset, model_admin):
    client = login(model_admin)
    url = f"/api/datasets/{dataset.pk}/retention/"

    assert client.get(url).json()["retention_days_in_force"] is None
    changed = client.post(url, {"retention_days": 45}, content_type="application/json")
    held = client.post(
        f"/api/datasets/{dataset.pk}/legal-hold/", {"hold": True, "reason": "Subpoena"}, content_type="application/json"
    )

    assert changed.status_code == 200 and changed.json()["retention_days"] == 45
    assert held.status_code == 200 and held.json()["legal_hold_reason"] == "Subpoena"


@pytest.mark.parametrize(
    ("body", "field"),
    [({"retention_days": 0}, "retention_days"), ({"retention_days": "x"}, "retention_days"), ({}, "retention_days")],
)
def test_the_api_refuses_a_bad_period_naming_the_field(dataset, model_admin, body, field):
    client = login(model_admin)
    before = AuditEvent.objects.count()

    response = client.post(f"/api/datasets/{dataset.pk}/retention/", body, content_type="application/json")

    assert response.status_code == 400 and field in response.content.decode()
    assert AuditEvent.objects.count() == before


# --- each retention run is replayed against the trail before it ---------------------------------------------


def _forged_run(dataset: Dataset, *, days: int, cutoff, first_seq: int, last_seq: int, tombstoned: int) -> None:  # type: ignore[no-untyped-def]
    """A retention.applied event written as the application role could write one, with whatever it likes."""
    with transaction.atomic():
        audit_record(
            actor=None,
            actor_username="retention",
            action=APPLIED_ACTION,
            object_type="dataset",
            object_id=dataset.pk,
            dataset_id=dataset.pk,
            after={
                "retention_days": days,
                "cutoff": cutoff,
                "events_tombstoned": tombstoned,
                "first_seq": first_seq,
                "last_seq": last_seq,
            },
            reason="forged",
        )


def test_a_forged_run_with_a_cutoff_in_the_future_does_not_account_for_the_tombstones_it_claims(kept_30_days):
    with transaction.atomic():
        audit_record(actor=None, action="promotion.approved", dataset_id=kept_30_days.pk, reason="override: why")
    fresh = AuditEvent.objects.order_by("-seq").first()
    with transaction.atomic():
        _raw(_tombstone_sql(), [timezone.now(), fresh.seq])
    _forged_run(
        kept_30_days, days=30, cutoff=timezone.now() + LATER, first_seq=fresh.seq, last_seq=fresh.seq, tombstoned=1
    )

    problems = audit_trail_verify().problems

    run = AuditEvent.objects.order_by("-seq").first().seq
    assert any(
        f"retention run (event #{run}" in p and "later than its own time less its 30 days" in p for p in problems
    )
    # Its cutoff is what is wrong: the tombstoned event is older than that (future) cutoff.


def test_a_run_during_a_legal_hold_or_with_a_shorter_period_is_reported(kept_30_days, model_admin):
    dataset_legal_hold_set(dataset_id=kept_30_days.pk, user=model_admin, hold=True, reason="Litigation 2026-17")
    hold = AuditEvent.objects.get(action="dataset.legal_hold_placed").seq
    _forged_run(kept_30_days, days=30, cutoff=timezone.now() - LATER, first_seq=1, last_seq=1, tombstoned=0)
    dataset_legal_hold_set(dataset_id=kept_30_days.pk, user=model_admin, hold=False, reason="Case closed")
    _forged_run(kept_30_days, days=2, cutoff=timezone.now() - timedelta(days=3), first_seq=1, last_seq=1, tombstoned=0)
    policy = AuditEvent.objects.get(action="dataset.retention_changed").seq

    problems = audit_trail_verify().problems

    assert any(f"while the legal hold placed by event #{hold} was in force" in p for p in problems)
    assert any(f"used a period of 2 days, but the dataset's was 30 (event #{policy})" in p for p in problems)


def test_genuine_runs_replay_cleanly_after_a_hold_is_lifted(kept_30_days, model_admin):
    dataset_legal_hold_set(dataset_id=kept_30_days.pk, user=model_admin, hold=True, reason="Litigation 2026-17")
    assert retention_apply(now=timezone.now() + LATER) == []
    dataset_legal_hold_set(dataset_id=kept_30_days.pk, user=model_admin, hold=False, reason="Case closed")
    assert retention_apply(now=timezone.now() + LATER)

    assert audit_trail_verify().ok


def test_a_forged_run_that_tombstones_an_event_younger_than_its_cutoff_is_reported(kept_30_days):
    with transaction.atomic():
        audit_record(actor=None, action="promotion.approved", dataset_id=kept_30_days.pk, reason="override: why")
    fresh = AuditEvent.objects.order_by("-seq").first()
    with transaction.atomic():
        _raw(_tombstone_sql(), [timezone.now(), fresh.seq])
    _forged_run(
        kept_30_days, days=30, cutoff=timezone.now() - LATER, first_seq=fresh.seq, last_seq=fresh.seq, tombstoned=1
    )

    problems = audit_trail_verify().problems

    assert any(f"removed the payload of event #{fresh.seq}, recorded after its cutoff" in p for p in problems)
