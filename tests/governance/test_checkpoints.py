"""Signed Merkle checkpoints make a rewritten audit trail show (issue 10, point 1).

The tamper tests act as a database administrator would: with the append-only
triggers switched off (ALTER TABLE ... DISABLE TRIGGER on PostgreSQL, as a superuser
may; DROP TRIGGER on SQLite, as whoever holds the file may), rolled back after each
test. Each rewrite below verifies as a hash chain alone; the checkpoints catch it.
"""

from __future__ import annotations

import base64
import io
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction
from django.urls import reverse

from governance import merkle
from governance.audit import audit_record
from governance.audit_chain import GENESIS_HASH, canonical_json, chain_hash, event_fields, payload_digest
from governance.audit_proofs import audit_consistency_proof, audit_inclusion_proof, proof_document_verify
from governance.checkpoint_signing import exported_checkpoint_read, new_private_key_b64
from governance.checkpoints import (
    CheckpointRefused,
    audit_checkpoint_create,
    audit_trail_verify,
    checkpoint_export,
)
from governance.models import AuditCheckpoint, AuditEvent
from governance.tasks import audit_checkpoint_task
from workflow_site.checks import audit_signing_key_missing

EVENT_TABLE = "governance_auditevent"
CHECKPOINT_TABLE = "governance_auditcheckpoint"
HEAD_TABLE = "governance_auditchainhead"


@pytest.fixture(autouse=True)
def signing_key(settings) -> str:
    settings.LOUPE_AUDIT_SIGNING_KEY = new_private_key_b64()
    settings.LOUPE_AUDIT_TRUSTED_KEYS = []
    return settings.LOUPE_AUDIT_SIGNING_KEY


def _events(count: int) -> list[AuditEvent]:
    with transaction.atomic():
        return [audit_record(actor=None, action="test.event", object_type="thing", object_id=n) for n in range(count)]


def _verify(*args: str) -> str:
    """verify_audit's message: its success line, or the CommandError it ends with."""
    out = io.StringIO()
    try:
        call_command("verify_audit", "--no-record", *args, stdout=out)
    except CommandError as exc:
        return f"FAILED: {exc}"
    return out.getvalue()


def _as_database_admin() -> None:
    """Switch the append-only triggers off, as a superuser (PostgreSQL) or the file's owner (SQLite) can."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The test's own inserts leave deferred foreign-key checks pending, and ALTER TABLE waits for none.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for table in (EVENT_TABLE, CHECKPOINT_TABLE):
            if connection.vendor == "postgresql":
                cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER {table}_append_only")
            else:
                cursor.execute(f"DROP TRIGGER {table}_append_only_update")
                cursor.execute(f"DROP TRIGGER {table}_append_only_delete")
        # The head only moves forward (governance 0017): a rewrite that moves it back switches that off too.
        if connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE {HEAD_TABLE} DISABLE TRIGGER {HEAD_TABLE}_forward_only")
        else:
            cursor.execute(f"DROP TRIGGER {HEAD_TABLE}_forward_only_update")
            cursor.execute(f"DROP TRIGGER {HEAD_TABLE}_forward_only_delete")


def _sql(statement: str, params: list | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params or [])


def _move_head(seq: int) -> None:
    """Point the chain head at event #seq (or the genesis), as a rewrite that hides itself must."""
    last = AuditEvent.objects.filter(seq=seq).first()
    head_hash, prev = (last.hash, last.prev_hash) if last else (GENESIS_HASH, GENESIS_HASH)
    _sql(f"UPDATE {HEAD_TABLE} SET seq = %s, hash = %s, prev_hash = %s", [seq, head_hash, prev])


def _rewrite_from(seq: int, reason: str) -> None:
    """Edit event #seq and recompute every later hash and the head: the chain verifies again."""
    prev = AuditEvent.objects.get(seq=seq).prev_hash
    for event in AuditEvent.objects.filter(seq__gte=seq).order_by("seq"):
        if event.seq == seq:
            event.reason = reason
            if event.hash_scheme == 2:  # a full rewrite recomputes the payload's digest too
                event.payload_sha256 = payload_digest(event.before, event.after, event.reason)
        event.prev_hash = prev
        event.hash = chain_hash(prev, event_fields(event))
        _sql(
            f"UPDATE {EVENT_TABLE} SET reason = %s, payload_sha256 = %s, prev_hash = %s, hash = %s WHERE seq = %s",
            [event.reason, event.payload_sha256, event.prev_hash, event.hash, event.seq],
        )
        prev = event.hash
    _move_head(AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first())


@pytest.fixture
def checkpointed(db) -> AuditCheckpoint:
    """Six events, a checkpoint over them (its own event is #7), two events after it."""
    _events(6)
    checkpoint = audit_checkpoint_create()
    _events(2)
    return checkpoint


def test_a_checkpoint_signs_the_merkle_root_of_every_event_so_far_and_records_itself_in_the_trail(checkpointed):
    hashes = [bytes.fromhex(h) for h in AuditEvent.objects.order_by("seq").values_list("hash", flat=True)]

    assert checkpointed.tree_size == 6
    assert checkpointed.root_hash == merkle.tree_root(hashes, 6).hex()
    assert checkpointed.last_event_hash == hashes[5].hex()
    own = AuditEvent.objects.get(seq=7)
    assert (own.action, own.object_id, own.after["root_hash"]) == (
        "audit.checkpoint_created",
        str(checkpointed.pk),
        checkpointed.root_hash,
    )
    assert "2 checkpoints" not in _verify() and "1 checkpoints" in _verify()


def test_an_untouched_trail_with_checkpoints_and_an_export_verifies(checkpointed, tmp_path):
    audit_checkpoint_create()
    export = tmp_path / "checkpoint.json"
    call_command("audit_checkpoint", "--no-create", "--export", str(export), stdout=io.StringIO())

    assert "10 events, no broken link; 2 checkpoints and 1 exported checkpoints verified" in _verify(
        "--checkpoint", str(export)
    )


def test_deleting_the_tail_and_moving_the_head_back_is_detected(checkpointed):
    _as_database_admin()
    _sql(f"DELETE FROM {EVENT_TABLE} WHERE seq > 4")
    _move_head(4)

    message = _verify()

    assert message.startswith("FAILED: Audit checkpoint does not verify: checkpoint #")
    assert "it covers 6 events but the trail has only 4: events it signed were deleted" in message


def test_emptying_the_table_and_resetting_the_head_is_detected(checkpointed):
    _as_database_admin()
    _sql(f"DELETE FROM {EVENT_TABLE}")
    _move_head(0)

    assert "it covers 6 events but the trail has only 0" in _verify()


def test_editing_an_event_and_recomputing_every_later_hash_is_detected_and_located(checkpointed):
    second = audit_checkpoint_create()  # at 9 events; the first (at 6) stays intact below the edit
    _as_database_admin()
    _rewrite_from(8, "nobody did this")

    message = _verify()

    assert f"checkpoint #{second.pk} (9 events" in message
    assert "an event after event #6 (the checkpoint before still matches) up to #9 was rewritten" in message
    # The leaves the checkpoints keep (signed, through the root) name the edited event itself.
    signed = AuditCheckpoint.objects.get(pk=second.pk).leaf_hashes
    assert len(signed) == 32 * 3  # events 7..9, the ones it added to the checkpoint at 6
    assert "the first event that differs from what was signed is #8: signed with hash" in message


def test_a_checkpoint_keeps_the_hashes_of_the_events_it_added(checkpointed):
    second = audit_checkpoint_create()
    hashes = list(AuditEvent.objects.order_by("seq").values_list("hash", flat=True))

    assert bytes(checkpointed.leaf_hashes) == b"".join(bytes.fromhex(h) for h in hashes[:6])
    assert bytes(AuditCheckpoint.objects.get(pk=second.pk).leaf_hashes) == b"".join(
        bytes.fromhex(h) for h in hashes[6:9]
    )


def test_altered_stored_leaves_are_not_believed(checkpointed):
    # A database admin who rewrites events and the stored leaves to match cannot re-sign the root:
    # the leaves then no longer give it, and the report falls back to the range.
    _as_database_admin()
    _rewrite_from(3, "nobody did this")
    forged = b"".join(bytes.fromhex(h) for h in AuditEvent.objects.order_by("seq").values_list("hash", flat=True)[:6])
    _sql(f"UPDATE {CHECKPOINT_TABLE} SET leaf_hashes = %s", [forged])

    message = _verify()

    assert "the events 1..6 no longer give its signed root" in message
    assert "first event that differs" not in message


def test_an_export_with_its_leaves_names_the_rewritten_event_even_with_every_checkpoint_row_deleted(
    checkpointed, tmp_path
):
    export = tmp_path / "with-leaves.json"
    call_command("audit_checkpoint", "--no-create", "--export", str(export), "--with-leaves", stdout=io.StringIO())
    _as_database_admin()
    _sql(f"DELETE FROM {CHECKPOINT_TABLE}")
    _rewrite_from(5, "nobody did this")

    message = _verify("--checkpoint", str(export))

    assert "exported checkpoint (6 events" in message
    assert "the first event that differs from what was signed is #5" in message


def test_an_export_whose_leaves_were_altered_still_fails_and_names_nothing_false(checkpointed, tmp_path):
    export = tmp_path / "with-leaves.json"
    call_command("audit_checkpoint", "--no-create", "--export", str(export), "--with-leaves", stdout=io.StringIO())
    document = json.loads(export.read_text())
    leaves = bytearray(base64.b64decode(document["leaf_hashes"]))
    leaves[0] ^= 1
    document["leaf_hashes"] = base64.b64encode(bytes(leaves)).decode()
    export.write_text(json.dumps(document))
    _as_database_admin()
    _sql(f"DELETE FROM {CHECKPOINT_TABLE}")
    _rewrite_from(5, "nobody did this")

    message = _verify("--checkpoint", str(export))

    assert "the events 1..6 no longer give its signed root" in message
    assert "first event that differs" not in message


def test_an_exported_checkpoint_catches_a_rewrite_that_also_deleted_every_stored_checkpoint(checkpointed, tmp_path):
    export = tmp_path / "kept-elsewhere.json"
    call_command("audit_checkpoint", "--no-create", "--export", str(export), stdout=io.StringIO())
    _as_database_admin()
    _sql(f"DELETE FROM {CHECKPOINT_TABLE}")
    _sql(f"DELETE FROM {EVENT_TABLE} WHERE seq >= 7")  # the checkpoint's own event too
    _move_head(6)
    _rewrite_from(2, "rewritten history")

    # What cannot be detected from inside the database: no checkpoint is left to contradict it.
    assert "no broken link; 0 checkpoints" in _verify()
    message = _verify("--checkpoint", str(export))
    assert "exported checkpoint (6 events" in message
    assert "the events 1..6 no longer give its signed root" in message


def _export_then_erase_checkpoints(tmp_path) -> str:
    """Export the last checkpoint (kept elsewhere), then, as a database admin, delete every stored one."""
    export = tmp_path / "kept-elsewhere.json"
    call_command("audit_checkpoint", "--no-create", "--export", str(export), stdout=io.StringIO())
    _as_database_admin()
    _sql(f"DELETE FROM {CHECKPOINT_TABLE}")
    return str(export)


def test_against_an_exported_checkpoint_deleting_the_tail_and_moving_the_head_back_is_detected(checkpointed, tmp_path):
    export = _export_then_erase_checkpoints(tmp_path)
    _sql(f"DELETE FROM {EVENT_TABLE} WHERE seq > 4")
    _move_head(4)

    message = _verify("--checkpoint", export)

    assert message.startswith("FAILED") and "exported checkpoint (6 events" in message
    assert "the trail has only 4" in message and "event #5" in message


def test_against_an_exported_checkpoint_emptying_the_table_and_resetting_the_head_is_detected(checkpointed, tmp_path):
    export = _export_then_erase_checkpoints(tmp_path)
    _sql(f"DELETE FROM {EVENT_TABLE}")
    _move_head(0)

    message = _verify("--checkpoint", export)

    assert message.startswith("FAILED") and "the trail has only 0" in message and "event #1" in message


def test_against_an_exported_checkpoint_an_edit_with_every_later_hash_recomputed_is_detected(checkpointed, tmp_path):
    export = _export_then_erase_checkpoints(tmp_path)
    _rewrite_from(5, "nobody did this")

    message = _verify("--checkpoint", export)

    # The checkpoint-created event still in the trail names the deleted row; the export catches the rewrite.
    assert message.startswith("FAILED") and "recorded by event #7 is missing from the checkpoint table" in message
    assert (
        "Also: exported checkpoint (6 events" in message and "the events 1..6 no longer give its signed root" in message
    )


def test_deleting_a_checkpoint_row_is_detected_from_the_event_that_recorded_it(checkpointed):
    _as_database_admin()
    _sql(f"DELETE FROM {CHECKPOINT_TABLE}")

    assert "the checkpoint at 6 events recorded by event #7 is missing from the checkpoint table" in _verify()


def test_a_checkpoint_row_altered_in_place_fails_its_signature(checkpointed):
    _as_database_admin()
    _sql(f"UPDATE {CHECKPOINT_TABLE} SET root_hash = %s", ["0" * 64])

    assert "its signature does not verify (the checkpoint was altered or forged)" in _verify()


def test_a_checkpoint_signed_by_a_key_that_is_not_trusted_is_a_problem(checkpointed, settings):
    settings.LOUPE_AUDIT_SIGNING_KEY = new_private_key_b64()  # the key was replaced; the old one not listed

    assert "which is not a trusted audit key" in _verify()
    old_public = checkpointed.public_key
    settings.LOUPE_AUDIT_TRUSTED_KEYS = [old_public]
    assert "1 checkpoints" in _verify()


def test_events_rewritten_after_the_last_checkpoint_are_not_detected_which_is_the_stated_limit(checkpointed):
    _as_database_admin()
    _rewrite_from(8, "after the last checkpoint")

    assert "no broken link; 1 checkpoints" in _verify()


def test_a_new_checkpoint_refuses_to_sign_a_trail_rewritten_under_the_last_one(checkpointed):
    _as_database_admin()
    _rewrite_from(3, "rewritten")

    with pytest.raises(CheckpointRefused, match="no longer give its root: they were rewritten"):
        audit_checkpoint_create()


def test_a_new_checkpoint_refuses_to_sign_links_that_do_not_verify(checkpointed):
    _as_database_admin()
    _sql(f"UPDATE {EVENT_TABLE} SET reason = %s WHERE seq = 8", ["edited without recomputing"])

    with pytest.raises(CheckpointRefused, match="Audit chain broken at event #8"):
        audit_checkpoint_create()


def test_the_beat_task_makes_a_checkpoint_only_when_something_happened_since_the_last(checkpointed):
    assert audit_checkpoint_task() == 9
    assert audit_checkpoint_task() is None  # only its own event since
    _events(1)
    assert audit_checkpoint_task() == 11


def test_checkpoint_rows_are_append_only_in_the_database(checkpointed):
    for statement in (f"UPDATE {CHECKPOINT_TABLE} SET root_hash = 'x'", f"DELETE FROM {CHECKPOINT_TABLE}"):
        with pytest.raises(Exception, match="governance_auditcheckpoint is append-only"), transaction.atomic():
            _sql(statement)
    with pytest.raises(ValueError, match="append-only"):
        checkpointed.save()
    with pytest.raises(IntegrityError), transaction.atomic():
        AuditCheckpoint.objects.create(
            **{f.name: getattr(checkpointed, f.name) for f in AuditCheckpoint._meta.fields if f.name != "id"}
        )


def test_an_exported_checkpoint_can_be_checked_with_nothing_but_ed25519_and_the_rfc(checkpointed, tmp_path):
    document = checkpoint_export(checkpointed)
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(document["public_key"]))
    public.verify(base64.b64decode(document["signature"]), canonical_json(document["statement"]))  # raises if bad

    hashes = [bytes.fromhex(h) for h in AuditEvent.objects.order_by("seq").values_list("hash", flat=True)]
    statement = document["statement"]
    assert merkle.tree_root(hashes, statement["tree_size"]).hex() == statement["root_hash"]
    assert statement["tree_algorithm"] == "rfc9162-sha256" and statement["signature_algorithm"] == "ed25519"
    path = tmp_path / "c.json"
    path.write_text(json.dumps(document))
    assert exported_checkpoint_read(path).signature_ok()


def test_a_malformed_checkpoint_file_is_refused_naming_the_file(db, tmp_path):
    path = tmp_path / "not-a-checkpoint.json"
    path.write_text('{"statement": {"type": "something else"}, "signature": "", "public_key": ""}')

    assert f"FAILED: {path}: statement type 'something else'" in _verify("--checkpoint", str(path))


def test_inclusion_and_consistency_proofs_from_the_trail_verify_against_the_checkpoint(checkpointed, tmp_path):
    inclusion = audit_inclusion_proof(seq=3, tree_size=6)
    consistency = audit_consistency_proof(first_size=6, second_size=9)

    assert inclusion["root_hash"] == checkpointed.root_hash == consistency["first_root"]
    assert inclusion["checkpoint"]["pk"] == checkpointed.pk
    assert proof_document_verify(inclusion) and proof_document_verify(consistency)
    assert not proof_document_verify({**inclusion, "event_hash": "00" * 32})

    out = io.StringIO()
    call_command("audit_proof", "--from", "6", "--to", "9", stdout=out)
    path = tmp_path / "proof.json"
    path.write_text(out.getvalue())
    verified = io.StringIO()
    call_command("audit_proof", "--verify", str(path), stdout=verified)
    assert "the consistency proof verifies" in verified.getvalue()
    with pytest.raises(CommandError, match="event #7 is not among the first 6 events"):
        call_command("audit_proof", "--event", "7", "--tree-size", "6", stdout=io.StringIO())


def test_verify_audit_records_when_it_ran_and_what_it_found(checkpointed):
    call_command("verify_audit", stdout=io.StringIO())

    event = AuditEvent.objects.order_by("-seq").first()
    assert event.action == "audit.verified"
    assert event.after == {
        "ok": True,
        "events": 9,
        "checkpoints": 1,
        "first_break": None,
        "first_problem": None,
        "tombstones": 0,
    }


def test_a_missing_signing_key_outside_debug_is_a_system_check_warning(settings):
    settings.DEBUG = False
    settings.LOUPE_AUDIT_SIGNING_KEY = ""

    assert [w.id for w in audit_signing_key_missing()] == ["loupe.W003"]
    with pytest.raises(CommandError, match="LOUPE_AUDIT_SIGNING_KEY is not set"):
        call_command("audit_checkpoint", stdout=io.StringIO())


def test_the_verification_result_says_how_many_events_and_checkpoints_it_checked(checkpointed):
    result = audit_trail_verify()

    assert result.ok and result.events_checked == 9 and result.checkpoints_checked == 1


def _audit_list_queries(client) -> tuple[int, str]:
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    with CaptureQueriesContext(connection) as queries:
        html = client.get(reverse("governance:audit_list")).content.decode()
    return len(queries), html


def test_every_auditor_page_shows_the_last_checkpoint_and_when_the_trail_was_last_verified(
    checkpointed, auditor, django_capture_on_commit_callbacks
):
    from django.urls import reverse

    from tests.conftest import login

    client = login(auditor)
    _, html = _audit_list_queries(client)
    assert "Last checkpoint: 6 events" in html and "signature OK" in html and "Never verified." in html

    with django_capture_on_commit_callbacks(execute=True):  # the worker's walk (an eager task)
        client.post(reverse("governance:audit_verify"))
    _, html = _audit_list_queries(client)
    assert "Last verified" in html and "no problem found." in html


def test_the_integrity_line_costs_two_queries_however_many_checkpoints_and_events(checkpointed):
    from django.template import Context, Template
    from django.test.utils import CaptureQueriesContext

    line = Template("{% load audit_integrity %}{% audit_integrity %}")
    with CaptureQueriesContext(connection) as few:
        line.render(Context())
    for _ in range(3):
        _events(30)
        newest = audit_checkpoint_create()
    call_command("verify_audit", stdout=io.StringIO())
    with CaptureQueriesContext(connection) as many:
        html = line.render(Context())

    assert len(few) == len(many) == 2
    assert f"Last checkpoint: {newest.tree_size} events" in html


def test_a_checkpoint_whose_signature_fails_is_flagged_on_the_auditor_pages(checkpointed, auditor):
    from tests.conftest import login

    _as_database_admin()
    _sql(f"UPDATE {CHECKPOINT_TABLE} SET tree_size = 5")

    _, html = _audit_list_queries(login(auditor))
    assert "signature does NOT verify" in html


def test_the_item_history_page_shows_the_integrity_line(trained_dataset, auditor):
    from django.urls import reverse

    from annotations.models import Item
    from tests.conftest import login

    audit_checkpoint_create()
    item = Item.objects.filter(dataset=trained_dataset).first()

    html = login(auditor).get(reverse("governance:item_history", args=[item.pk])).content.decode()
    assert "Last checkpoint:" in html and "signature OK" in html
    assert html.count('aria-label="Audit trail integrity"') == 1  # once, from the base template


@pytest.mark.parametrize(
    "page",
    [
        lambda d: reverse("home"),
        lambda d: reverse("annotations:agreement", args=[d.pk]),
        lambda d: reverse("annotations:workbench_settings", args=[d.pk]),
        lambda d: reverse("models_app:overview", args=[d.pk]),
        lambda d: reverse("governance:audit_list"),
    ],
)
def test_every_page_an_auditor_opens_shows_the_integrity_line_and_a_reviewers_does_not(
    trained_dataset, auditor, reviewer, page
):
    from tests.conftest import login

    audit_checkpoint_create()

    html = login(auditor).get(page(trained_dataset)).content.decode()
    assert html.count('aria-label="Audit trail integrity"') == 1 and "Last checkpoint:" in html
    if "audit" not in page(trained_dataset):
        assert 'aria-label="Audit trail integrity"' not in login(reviewer).get(page(trained_dataset)).content.decode()


def test_in_debug_a_key_is_generated_once_under_var_and_kept(settings, tmp_path):
    from governance.checkpoint_signing import public_key_b64, signing_key

    settings.DEBUG, settings.LOUPE_AUDIT_SIGNING_KEY, settings.VAR_DIR = True, "", tmp_path

    first, second = public_key_b64(signing_key()), public_key_b64(signing_key())

    assert first == second
    assert (tmp_path / "audit_signing_key").stat().st_mode & 0o777 == 0o600


def test_a_signing_key_that_is_not_32_bytes_of_base64_is_refused_naming_the_setting(settings):
    from django.core.exceptions import ImproperlyConfigured

    from governance.checkpoint_signing import signing_key

    settings.LOUPE_AUDIT_SIGNING_KEY = base64.b64encode(b"short").decode()

    with pytest.raises(ImproperlyConfigured, match="LOUPE_AUDIT_SIGNING_KEY must be a raw 32-byte Ed25519"):
        signing_key()


def test_beat_schedules_the_checkpoint_task_by_its_registered_name(settings):
    from workflow_site.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["audit-checkpoint"]

    assert entry["task"] == audit_checkpoint_task.name == "governance.tasks.audit_checkpoint_task"
    assert entry["task"] in app.tasks
