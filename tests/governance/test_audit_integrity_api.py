"""The audit trail's integrity through the API (governance/audit_integrity_apis.py, issue 10): checkpoints and
their signed documents, the integrity line, verification (recorded like the page's), and Merkle proofs.

Auditors only, like the auditor's pages: a reviewer or a model admin gets a 403 and changes nothing; a
request without credentials a 401 that asks for a token.
"""

from __future__ import annotations

import copy

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse
from drf_spectacular.generators import SchemaGenerator

from governance.audit import audit_record
from governance.audit_proofs import audit_consistency_proof, audit_inclusion_proof, proof_document_verify
from governance.checkpoint_signing import ExportedCheckpoint, new_private_key_b64
from governance.checkpoints import VERIFIED_ACTION, audit_checkpoint_create, checkpoint_export
from governance.credentials import api_token_create
from governance.models import AuditCheckpoint, AuditEvent
from tests.helpers import login

CHECKPOINTS = "/api/audit/checkpoints/"
INTEGRITY = "/api/audit/integrity/"
VERIFICATION = "/api/audit/verification/"
INCLUSION = "/api/audit/proofs/inclusion/"
CONSISTENCY = "/api/audit/proofs/consistency/"
PROOF_VERIFY = "/api/audit/proofs/verify/"


@pytest.fixture(autouse=True)
def signing_key(settings) -> None:
    settings.LOUPE_AUDIT_SIGNING_KEY = new_private_key_b64()
    settings.LOUPE_AUDIT_TRUSTED_KEYS = []


def _events(count: int) -> None:
    with transaction.atomic():
        for n in range(count):
            audit_record(actor=None, action="test.event", object_type="thing", object_id=n)


@pytest.fixture
def checkpoints(db) -> list[AuditCheckpoint]:
    """Two checkpoints, the second over more events than the first (oldest first)."""
    _events(3)
    first = audit_checkpoint_create()
    _events(4)
    second = audit_checkpoint_create()
    assert first is not None and second is not None
    return [first, second]


def _verified_events() -> int:
    return AuditEvent.objects.filter(action=VERIFIED_ACTION).count()


# --- who may ------------------------------------------------------------------------------------------

READS = [
    CHECKPOINTS,
    INTEGRITY,
    VERIFICATION,
    f"{INCLUSION}?seq=1&tree_size=1",
    f"{CONSISTENCY}?first_size=1&second_size=2",
]


@pytest.mark.parametrize("url", READS)
def test_only_the_auditor_reads_the_trails_integrity(checkpoints, auditor, reviewer, model_admin, outsider, url):
    assert login(auditor).get(url).status_code == 200
    for user in (reviewer, model_admin, outsider):
        assert login(user).get(url).status_code == 403, user.username


@pytest.mark.parametrize("url", [*READS, f"{CHECKPOINTS}1/", f"{CHECKPOINTS}1/document/"])
def test_without_credentials_the_answer_is_a_401_asking_for_a_token(db, url):
    response = Client().get(url)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_an_auditor_with_a_token_reads_the_checkpoints(checkpoints, auditor):
    _, secret = api_token_create(user=auditor, name="audit script", days=7)

    response = Client().get(CHECKPOINTS, HTTP_AUTHORIZATION=f"Token {secret}")

    assert response.status_code == 200
    assert [c["tree_size"] for c in response.json()["results"]] == [c.tree_size for c in reversed(checkpoints)]


# --- checkpoints ------------------------------------------------------------------------------------------


def test_the_checkpoints_are_listed_newest_first_with_what_a_third_party_needs(checkpoints, auditor):
    body = login(auditor).get(CHECKPOINTS).json()

    newest = body["results"][0]
    stored = checkpoints[1]
    assert [c["id"] for c in body["results"]] == [stored.pk, checkpoints[0].pk]
    assert newest["root_hash"] == stored.root_hash and newest["signature"] == stored.signature
    assert newest["public_key"] == stored.public_key and newest["key_fingerprint"] == stored.key_fingerprint
    assert (newest["tree_size"], newest["last_seq"], newest["last_event_hash"]) == (
        stored.tree_size,
        stored.last_seq,
        stored.last_event_hash,
    )
    assert body["next"] is None


def test_the_checkpoint_list_is_paged_by_key(checkpoints, auditor):
    client = login(auditor)

    first = client.get(CHECKPOINTS + "?limit=1").json()
    second = client.get(first["next"]).json()

    assert [c["id"] for c in first["results"] + second["results"]] == [checkpoints[1].pk, checkpoints[0].pk]


def test_a_checkpoint_reads_alone_and_as_the_signed_document_the_command_exports(checkpoints, auditor):
    client = login(auditor)
    checkpoint = checkpoints[0]

    detail = client.get(f"{CHECKPOINTS}{checkpoint.pk}/").json()
    document = client.get(f"{CHECKPOINTS}{checkpoint.pk}/document/").json()

    assert detail["tree_size"] == checkpoint.tree_size and detail["root_hash"] == checkpoint.root_hash
    assert document == checkpoint_export(checkpoint)
    exported = ExportedCheckpoint(document["statement"], document["signature"], document["public_key"])
    assert exported.signature_ok()  # checkable with the document alone


def test_a_missing_checkpoint_is_a_404_for_the_auditor_and_a_403_for_anyone_else(checkpoints, auditor, reviewer):
    missing = max(c.pk for c in checkpoints) + 100

    assert login(auditor).get(f"{CHECKPOINTS}{missing}/").status_code == 404
    assert login(auditor).get(f"{CHECKPOINTS}{missing}/document/").status_code == 404
    for url in (f"{CHECKPOINTS}{missing}/", f"{CHECKPOINTS}{checkpoints[0].pk}/document/"):
        assert login(reviewer).get(url).status_code == 403


# --- the integrity line -----------------------------------------------------------------------------------


def test_the_integrity_line_says_when_there_is_no_checkpoint_and_no_verification(auditor):
    body = login(auditor).get(INTEGRITY).json()

    # No checkpoint, so no signature to check: null, not false (false would read as a failed check).
    assert body == {"checkpoint": None, "signature_ok": None, "verified_at": None, "verified_ok": None}


def test_the_integrity_line_gives_the_last_checkpoint_and_the_last_verification(checkpoints, auditor):
    client = login(auditor)
    client.post(VERIFICATION, {}, content_type="application/json")

    body = client.get(INTEGRITY).json()

    assert body["checkpoint"]["id"] == checkpoints[1].pk and body["signature_ok"] is True
    assert body["verified_at"] is not None and body["verified_ok"] is True


def test_the_integrity_line_says_false_when_the_newest_checkpoint_is_signed_by_a_key_no_longer_trusted(
    checkpoints, auditor, settings
):
    settings.LOUPE_AUDIT_SIGNING_KEY = new_private_key_b64()  # the key rotated, the old one not kept as trusted

    body = login(auditor).get(INTEGRITY).json()

    assert body["checkpoint"]["id"] == checkpoints[1].pk and body["signature_ok"] is False


def test_the_schema_says_the_signature_is_null_without_a_checkpoint(db):
    schema = SchemaGenerator().get_schema(request=None, public=True)

    ref = schema["paths"][INTEGRITY]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    signature_ok = schema["components"]["schemas"][ref.rpartition("/")[2]]["properties"]["signature_ok"]
    assert signature_ok.get("nullable") is True and "null: there is no checkpoint" in signature_ok["description"]


# --- verification ----------------------------------------------------------------------------------------


def test_a_verification_walks_the_trail_and_is_recorded_like_the_pages(checkpoints, auditor):
    client = login(auditor)
    assert client.get(VERIFICATION).json() == {"last": None}
    size = AuditEvent.objects.count()

    body = client.post(VERIFICATION, {}, content_type="application/json").json()

    assert body["ok"] is True and body["chain_break"] is None and body["problems"] == []
    assert body["events_checked"] == size and body["checkpoints_checked"] == 2 and body["exported_checked"] == 0
    assert body["last_checkpoint"]["id"] == checkpoints[1].pk
    event = AuditEvent.objects.get(action=VERIFIED_ACTION)
    assert event.actor_id == auditor.pk and event.after["ok"] is True and event.after["events"] == size
    last = client.get(VERIFICATION).json()["last"]
    assert (last["event_seq"], last["actor"], last["ok"], last["checkpoints"]) == (event.seq, "auditor", True, 2)


def test_a_verification_checks_the_exported_checkpoints_it_is_given(checkpoints, auditor):
    good = checkpoint_export(checkpoints[0])
    forged = copy.deepcopy(good)
    forged["statement"]["root_hash"] = "00" * 32

    body = (
        login(auditor)
        .post(VERIFICATION, {"exported_checkpoints": [good, forged]}, content_type="application/json")
        .json()
    )

    assert body["exported_checked"] == 2 and body["ok"] is False
    (problem,) = body["problems"]
    assert problem.startswith("exported checkpoint") and "signature does not verify" in problem
    assert AuditEvent.objects.get(action=VERIFIED_ACTION).after["ok"] is False


V1 = "loupe.audit-checkpoint/v1"


@pytest.mark.parametrize(
    ("document", "words"),
    [
        ({"statement": {"type": "something else", "tree_size": 3}, "signature": "x", "public_key": "y"}, "type"),
        ({"statement": {"type": V1, "tree_size": -1}, "signature": "x", "public_key": "y"}, "tree_size"),
        ({"statement": {"type": V1, "tree_size": True}, "signature": "x", "public_key": "y"}, "tree_size"),
        ({"statement": {"type": V1, "tree_size": 3}, "public_key": "y"}, "required"),
        ({"statement": "not an object", "signature": "x", "public_key": "y"}, "dictionary"),
    ],
)
def test_a_malformed_exported_checkpoint_is_a_400_naming_it_and_nothing_is_recorded(
    checkpoints, auditor, document, words
):
    response = login(auditor).post(VERIFICATION, {"exported_checkpoints": [document]}, content_type="application/json")

    assert response.status_code == 400
    # Named by its place in the request (the error body is flat: workflow_site/api_errors.py).
    named = {k: v for k, v in response.json().items() if k.startswith("exported_checkpoints[0]")}
    assert named and words in str(named)
    assert _verified_events() == 0


@pytest.mark.parametrize("persona", ["reviewer", "model_admin"])
def test_only_the_auditor_runs_a_verification(checkpoints, request, persona):
    response = login(request.getfixturevalue(persona)).post(VERIFICATION, {}, content_type="application/json")

    assert response.status_code == 403
    assert _verified_events() == 0


# --- proofs ---------------------------------------------------------------------------------------------


def test_an_inclusion_proof_is_the_commands_and_verifies_against_the_checkpoints_root(checkpoints, auditor):
    checkpoint = checkpoints[1]

    proof = login(auditor).get(f"{INCLUSION}?seq=2&tree_size={checkpoint.tree_size}").json()

    assert proof == audit_inclusion_proof(seq=2, tree_size=checkpoint.tree_size)
    assert proof["root_hash"] == checkpoint.root_hash and proof["checkpoint"]["pk"] == checkpoint.pk
    assert proof_document_verify(proof)


def test_a_consistency_proof_shows_the_older_checkpoint_is_a_prefix_of_the_newer(checkpoints, auditor):
    older, newer = checkpoints
    url = f"{CONSISTENCY}?first_size={older.tree_size}&second_size={newer.tree_size}"

    proof = login(auditor).get(url).json()

    assert proof == audit_consistency_proof(first_size=older.tree_size, second_size=newer.tree_size)
    assert (proof["first_root"], proof["second_root"]) == (older.root_hash, newer.root_hash)
    assert proof_document_verify(proof)


@pytest.mark.parametrize(
    ("url", "field"),
    [
        (f"{INCLUSION}?seq=5&tree_size=3", "seq"),
        (f"{INCLUSION}?seq=0&tree_size=3", "seq"),
        (f"{INCLUSION}?seq=1", "tree_size"),
        (f"{INCLUSION}?seq=1&tree_size=many", "tree_size"),
        (f"{INCLUSION}?seq=1&tree_size=100000", "tree_size"),  # beyond the trail
        (f"{CONSISTENCY}?first_size=4&second_size=2", "first_size"),
        (f"{CONSISTENCY}?first_size=1&second_size=100000", "second_size"),
    ],
)
def test_a_bad_proof_request_is_a_400_naming_the_parameter(checkpoints, auditor, url, field):
    client = login(auditor)
    before = AuditEvent.objects.count()

    response = client.get(url)

    assert response.status_code == 400
    assert field in response.json()
    assert AuditEvent.objects.count() == before


def test_a_proof_document_is_checked_with_nothing_but_itself(checkpoints, auditor, reviewer):
    client = login(auditor)
    proof = client.get(f"{INCLUSION}?seq=1&tree_size={checkpoints[1].tree_size}").json()
    altered = {**proof, "event_hash": "11" * 32}
    other = login(reviewer)
    before = AuditEvent.objects.count()

    good = client.post(PROOF_VERIFY, proof, content_type="application/json")
    bad = client.post(PROOF_VERIFY, altered, content_type="application/json")
    not_a_proof = client.post(PROOF_VERIFY, {"kind": "poem"}, content_type="application/json")
    refused = other.post(PROOF_VERIFY, proof, content_type="application/json")

    assert (good.json(), bad.json()) == ({"verifies": True}, {"verifies": False})
    assert not_a_proof.status_code == 400 and "kind" in not_a_proof.json()
    assert refused.status_code == 403
    assert AuditEvent.objects.count() == before  # a check reads nothing and records nothing


def test_the_audit_pages_verify_button_and_the_api_record_the_same_event(
    checkpoints, auditor, django_capture_on_commit_callbacks
):
    client = login(auditor)

    with django_capture_on_commit_callbacks(execute=True):  # the page's walk runs in the (eager) worker task
        client.post(reverse("governance:audit_verify"))
    client.post(VERIFICATION, {}, content_type="application/json")

    page, api = AuditEvent.objects.filter(action=VERIFIED_ACTION).order_by("seq")
    assert (page.object_type, page.actor_id) == (api.object_type, api.actor_id) == ("audittrail", auditor.pk)
    assert set(page.after) == set(api.after)


def test_more_than_a_hundred_exported_checkpoints_are_refused(checkpoints, auditor):
    document = checkpoint_export(checkpoints[0])

    response = login(auditor).post(
        VERIFICATION, {"exported_checkpoints": [document] * 101}, content_type="application/json"
    )

    assert response.status_code == 400 and "exported_checkpoints" in response.json()
    assert _verified_events() == 0


def test_a_bad_exported_checkpoint_is_named_by_its_place_in_a_flat_error_body(db, auditor):
    # The documented 400 body is flat (messages per field), so a nested document's error is named by path.
    response = login(auditor).post(
        "/api/audit/verification/",
        {"exported_checkpoints": [{"statement": {}, "signature": "", "public_key": "k", "how_to_verify": ""}]},
        content_type="application/json",
    )

    assert response.status_code == 400
    body = response.json()
    assert all(isinstance(messages, str | list) for messages in body.values())
    assert {"exported_checkpoints[0].signature", "exported_checkpoints[0].how_to_verify"} <= set(body)
