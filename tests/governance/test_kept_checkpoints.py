"""Verifying the trail against checkpoint documents kept outside Loupe, in a worker (issue 10, point 1):
uploaded on the verify page (governance/kept_checkpoint_forms.py) or sent to POST audit/verification-runs/.

A bad file is refused naming the file and what is wrong, and nothing is asked for; a good one goes onto a
new run, and the walk checks the trail against it as `verify_audit --checkpoint FILE` does.
"""

from __future__ import annotations

import copy
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction

from governance.audit import audit_record
from governance.checkpoint_signing import new_private_key_b64
from governance.checkpoints import audit_checkpoint_create, checkpoint_export
from governance.models import AuditCheckpoint, AuditEvent, AuditVerificationRun
from governance.verification_runs import REQUESTED_ACTION
from tests.helpers import login

VERIFY = "/governance/audit/verify/"
RUNS = "/api/audit/verification-runs/"


@pytest.fixture(autouse=True)
def signing_key(settings) -> None:
    settings.LOUPE_AUDIT_SIGNING_KEY = new_private_key_b64()
    settings.LOUPE_AUDIT_TRUSTED_KEYS = []


@pytest.fixture
def checkpoint(db) -> AuditCheckpoint:
    with transaction.atomic():
        for n in range(4):
            audit_record(actor=None, action="test.event", object_type="thing", object_id=n)
    made = audit_checkpoint_create()
    assert made is not None
    return made


def _file(name: str, document: object) -> SimpleUploadedFile:
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    return SimpleUploadedFile(name, body, content_type="application/json")


def _forged(document: dict) -> dict:
    forged = copy.deepcopy(document)
    forged["statement"]["root_hash"] = "00" * 32
    return forged


def test_the_verify_page_offers_the_upload_with_its_label(checkpoint, auditor):
    html = login(auditor).get(VERIFY).content.decode()

    assert 'enctype="multipart/form-data"' in html and 'name="kept" value="1"' in html
    assert '<label for="id_documents">Checkpoint documents you kept</label>' in html
    assert 'type="file" name="documents" id="id_documents" multiple' in html


def test_uploaded_checkpoints_go_onto_a_new_run_that_checks_the_trail_against_them(
    checkpoint, auditor, django_capture_on_commit_callbacks
):
    good = checkpoint_export(checkpoint)
    client = login(auditor)
    files = [_file("kept.json", good), _file("forged.json", _forged(good))]

    with django_capture_on_commit_callbacks(execute=True):  # the (eager) worker walks after the commit
        response = client.post(VERIFY, {"kept": "1", "documents": files})

    run = AuditVerificationRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/governance/audit/verify/{run.pk}/"
    assert [document["statement"] for document in run.exported_checkpoints] == [
        good["statement"],
        _forged(good)["statement"],
    ]
    run.refresh_from_db()
    assert run.status == AuditVerificationRun.Status.DONE
    assert run.result["exported_checked"] == 2 and run.result["ok"] is False
    (problem,) = run.result["problems"]
    assert problem.startswith("exported checkpoint") and "signature does not verify" in problem
    page = client.get(response["Location"]).content.decode()
    assert "but a signed checkpoint does not: exported checkpoint" in page


def test_a_kept_checkpoint_that_matches_is_counted_on_the_result(
    checkpoint, auditor, django_capture_on_commit_callbacks
):
    client = login(auditor)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(VERIFY, {"kept": "1", "documents": [_file("kept.json", checkpoint_export(checkpoint))]})

    page = client.get(response["Location"]).content.decode()
    assert "1 signed checkpoint verified, and 1 checkpoint you kept." in page


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"\xff\xfe not text", "not a JSON document"),
        (b"{not json", "not a JSON document"),
        ({"statement": {"type": "something else", "tree_size": 3}, "signature": "x", "public_key": "y"}, "type"),
        (
            {"statement": {"type": "loupe.audit-checkpoint/v1", "tree_size": -1}, "signature": "x", "public_key": "y"},
            "tree_size",
        ),
        ({"signature": "x"}, "not a checkpoint document"),
    ],
)
def test_a_file_that_is_not_a_checkpoint_document_is_refused_naming_it_and_nothing_is_asked(
    checkpoint, auditor, body, words
):
    client = login(auditor)
    before = AuditEvent.objects.count()
    good = _file("good.json", checkpoint_export(checkpoint))

    response = client.post(VERIFY, {"kept": "1", "documents": [good, _file("bad name <b>.json", body)]})

    assert response.status_code == 400
    html = response.content.decode()
    assert 'role="alert"' in html and "bad name &lt;b&gt;.json: " in html and words in html
    assert 'aria-invalid="true"' in html
    assert not AuditVerificationRun.objects.exists()
    assert AuditEvent.objects.count() == before


def test_the_upload_without_a_file_asks_for_one(checkpoint, auditor):
    response = login(auditor).post(VERIFY, {"kept": "1"})

    assert response.status_code == 400 and "This field is required." in response.content.decode()
    assert not AuditVerificationRun.objects.exists()


def test_an_oversized_file_is_refused_before_it_is_parsed(checkpoint, auditor, monkeypatch):
    from governance import kept_checkpoint_forms

    monkeypatch.setattr(kept_checkpoint_forms, "MAX_DOCUMENT_BYTES", 100)
    response = login(auditor).post(
        VERIFY, {"kept": "1", "documents": [_file("big.json", checkpoint_export(checkpoint))]}
    )

    assert response.status_code == 400 and "big.json: " in response.content.decode()
    assert "over the 100 a checkpoint document may have" in response.content.decode()


def test_only_an_auditor_may_upload(checkpoint, reviewer, model_admin):
    for user in (reviewer, model_admin):
        response = login(user).post(
            VERIFY, {"kept": "1", "documents": [_file("k.json", checkpoint_export(checkpoint))]}
        )
        assert response.status_code == 403
    assert not AuditVerificationRun.objects.exists()


def test_the_run_api_takes_exported_checkpoints_and_always_makes_a_new_run(
    checkpoint, auditor, django_capture_on_commit_callbacks
):
    client = login(auditor)
    good = checkpoint_export(checkpoint)
    plain = client.post(RUNS, {}, content_type="application/json").json()  # queued, not walked

    with django_capture_on_commit_callbacks(execute=True):
        asked = client.post(RUNS, {"exported_checkpoints": [good]}, content_type="application/json")

    assert asked.status_code == 202
    body = asked.json()
    assert body["id"] != plain["id"], "a run with kept checkpoints is never folded into a plain one"
    run = AuditVerificationRun.objects.get(pk=body["id"])
    assert run.exported_checkpoints == [{k: v for k, v in good.items() if k != "how_to_verify"}]
    done = client.get(body["status_url"]).json()
    assert done["status"] == "done" and done["result"]["exported_checked"] == 1 and done["result"]["ok"] is True


def test_the_run_api_refuses_a_malformed_document_naming_it_and_asks_for_nothing(checkpoint, auditor):
    client = login(auditor)
    before = AuditEvent.objects.filter(action=REQUESTED_ACTION).count()
    bad = {"statement": {"type": "something else", "tree_size": 3}, "signature": "x", "public_key": "y"}

    response = client.post(RUNS, {"exported_checkpoints": [bad]}, content_type="application/json")

    assert response.status_code == 400
    assert any(key.startswith("exported_checkpoints[0]") for key in response.json())
    assert not AuditVerificationRun.objects.exists()
    assert AuditEvent.objects.filter(action=REQUESTED_ACTION).count() == before


def test_too_many_bytes_in_all_are_refused_and_nothing_is_asked(checkpoint, auditor, monkeypatch):
    from governance import kept_checkpoint_forms

    document = checkpoint_export(checkpoint)
    size = len(json.dumps(document).encode())
    monkeypatch.setattr(kept_checkpoint_forms, "MAX_TOTAL_BYTES", size + 1)
    files = [_file("a.json", document), _file("b.json", document)]

    response = login(auditor).post(VERIFY, {"kept": "1", "documents": files})

    assert (
        response.status_code == 400 and f"{2 * size:,} bytes in all: at most {size + 1:,}" in response.content.decode()
    )
    assert not AuditVerificationRun.objects.exists()


def test_verify_again_after_a_kept_run_checks_the_same_documents_again(
    checkpoint, auditor, django_capture_on_commit_callbacks
):
    client = login(auditor)
    kept = checkpoint_export(checkpoint)
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post(VERIFY, {"kept": "1", "documents": [_file("kept.json", kept)]})
    page = client.get(first["Location"]).content.decode()
    run = AuditVerificationRun.objects.get()
    assert f'name="again" value="{run.pk}"' in page and "Verify again against the 1 kept checkpoint</button>" in page

    with django_capture_on_commit_callbacks(execute=True):
        again = client.post(VERIFY, {"again": str(run.pk)})

    second = AuditVerificationRun.objects.exclude(pk=run.pk).get()
    assert again["Location"] == f"/governance/audit/verify/{second.pk}/"
    assert second.exported_checkpoints == run.exported_checkpoints
    second.refresh_from_db()
    assert second.result["exported_checked"] == 1 and second.result["ok"] is True


def test_verify_again_names_a_run_only_an_auditor_may_read(checkpoint, auditor, reviewer):
    run = AuditVerificationRun.objects.create(requested_by=auditor, requested_at=checkpoint.created_at)

    assert login(reviewer).post(VERIFY, {"again": str(run.pk)}).status_code == 403
    assert login(auditor).post(VERIFY, {"again": "999999"}).status_code == 404
    assert AuditVerificationRun.objects.count() == 1
