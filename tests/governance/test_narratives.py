"""Signed narratives of model cards and datasheets (issue 10, points 3 and 8): written by a model admin,
signed as author (and reviewer), versioned and append-only, verified on the document, drafts never shown."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, transaction
from django.urls import reverse

from governance.models import AuditEvent, DocumentNarrative, Signature
from governance.narratives import MAX_SECTION_CHARS, narrative_sign, narrative_write
from governance.signing import SignatureCheck, signature_verify
from models_app.models import Evaluation, ModelVersion
from tests.helpers import PASSWORD, login, make_user
from workflow_site.access import Role

INTENDED = "Second reader for breast biopsies.\nNever the only reader."


@pytest.fixture
def champion(trained_dataset) -> ModelVersion:
    return ModelVersion.objects.select_related("snapshot", "training_run").get(
        dataset=trained_dataset, stage="champion"
    )


def _write(admin, champion, *, sign=True, password=PASSWORD, **sections):  # type: ignore[no-untyped-def]
    return narrative_write(
        user=admin,
        document="model_card",
        subject=champion,
        sections=sections or {"intended_use": INTENDED},
        sign=sign,
        password=password,
    )


def _card(user, champion) -> dict:  # type: ignore[no-untyped-def]
    return login(user).get(reverse("governance:model_card", args=[champion.pk]) + "?format=json").json()


def test_a_signed_narrative_is_the_cards_text_with_its_signature_and_verification(champion, model_admin, auditor):
    _write(model_admin, champion, intended_use=INTENDED, ethical_considerations="Check the <b>margins</b>.")

    card = _card(auditor, champion)

    narrative = card["narrative"]
    assert narrative["status"] == "signed" and narrative["version"] == 1
    assert narrative["sections"]["intended_use"] == INTENDED
    assert card["ethical_considerations"]["narrative"] == "Check the <b>margins</b>."
    (signature,) = narrative["signatures"]
    assert signature["printed_name"] == model_admin.get_full_name() and signature["meaning"] == "authored"
    assert signature["signed_at"] and signature["verification"]["status"] == "verified"
    page = login(auditor).get(reverse("governance:model_card", args=[champion.pk])).content.decode()
    assert "Second reader for breast biopsies.<br>Never the only reader." in page  # line breaks kept
    assert "&lt;b&gt;margins&lt;/b&gt;" in page and "<b>margins" not in page  # escaped, not formatted
    assert "verified: the text and what it describes are as signed" in page
    assert "Write a new version" not in page  # auditors read only


def test_a_draft_is_never_the_documents_text_and_the_history_keeps_every_version(champion, model_admin, auditor):
    _write(model_admin, champion, sign=False, intended_use="First thoughts.")
    card = _card(auditor, champion)
    assert card["narrative"]["status"] == "draft_only" and card["narrative"]["sections"] == {}
    assert card["ethical_considerations"]["narrative"].startswith("Not written yet")

    _write(model_admin, champion, intended_use=INTENDED)
    _write(model_admin, champion, sign=False, intended_use="A newer draft, unsigned.")

    narrative = _card(auditor, champion)["narrative"]
    assert narrative["version"] == 2 and narrative["sections"]["intended_use"] == INTENDED
    assert narrative["newer_draft"] == 3
    assert [(v["version"], v["status"], v["shown"]) for v in narrative["history"]] == [
        (3, "draft", False),
        (2, "signed", True),
        (1, "draft", False),
    ]
    page = login(auditor).get(reverse("governance:model_card", args=[champion.pk])).content.decode()
    assert "A newer draft, unsigned." not in page and "First thoughts." not in page


def test_a_second_model_admin_signs_it_reviewed_and_the_author_cannot_review_their_own(
    champion, model_admin, model_admin2, auditor
):
    narrative = _write(model_admin, champion)

    with pytest.raises(ValidationError, match="second admin reviews"):
        narrative_sign(user=model_admin, narrative=narrative, meaning="reviewed", password=PASSWORD)
    narrative_sign(user=model_admin2, narrative=narrative, meaning="reviewed", password=PASSWORD)
    with pytest.raises(ValidationError, match="reviewed this version already"):
        narrative_sign(user=model_admin2, narrative=narrative, meaning="reviewed", password=PASSWORD)

    signatures = _card(auditor, champion)["narrative"]["signatures"]
    assert [(s["meaning"], s["printed_name"]) for s in signatures] == [
        ("authored", model_admin.get_full_name()),
        ("reviewed", model_admin2.get_full_name()),
    ]
    actions = AuditEvent.objects.filter(action__startswith="narrative.").values_list("action", flat=True)
    assert sorted(actions) == ["narrative.signed", "narrative.signed", "narrative.written"]


def test_only_the_writer_signs_a_draft_as_author_and_only_the_newest(champion, model_admin, model_admin2):
    old = _write(model_admin, champion, sign=False)
    _write(model_admin, champion, sign=False, intended_use="v2")

    with pytest.raises(ValidationError, match="newer version exists"):
        narrative_sign(user=model_admin, narrative=old, meaning="authored", password=PASSWORD)
    newest = DocumentNarrative.objects.get(model_version=champion, version=2)
    with pytest.raises(ValidationError, match="Only its writer"):
        narrative_sign(user=model_admin2, narrative=newest, meaning="authored", password=PASSWORD)
    with pytest.raises(ValidationError, match="Only the version the document shows"):
        narrative_sign(user=model_admin2, narrative=newest, meaning="reviewed", password=PASSWORD)
    narrative_sign(user=model_admin, narrative=newest, meaning="authored", password=PASSWORD)
    assert Signature.objects.filter(record_type="document_narrative", record_id=str(newest.pk)).count() == 1


def test_a_changed_model_version_makes_the_narratives_signature_fail_visibly(champion, model_admin, auditor):
    narrative = _write(model_admin, champion)
    signature = Signature.objects.get(record_type="document_narrative", record_id=str(narrative.pk))
    assert signature_verify(signature).status == SignatureCheck.VERIFIED  # through the signing registry

    evaluation = Evaluation.objects.get(training_run=champion.training_run, role="candidate")
    Evaluation.objects.filter(pk=evaluation.pk).update(metrics={**evaluation.metrics, "accuracy": 0.123})

    assert signature_verify(signature).status == SignatureCheck.CHANGED
    (shown,) = _card(auditor, champion)["narrative"]["signatures"]
    assert shown["verification"]["status"] == "record_changed" and shown["verification"]["ok"] is False
    page = login(auditor).get(reverse("governance:model_card", args=[champion.pk])).content.decode()
    assert "does not verify: record changed since signing" in page


def test_versions_and_their_signatures_are_append_only_in_the_database(champion, model_admin):
    narrative = _write(model_admin, champion)

    with pytest.raises(ValueError, match="append-only"):
        narrative.save()
    table = DocumentNarrative._meta.db_table
    for statement in (f"UPDATE {table} SET sections = '{{}}'", f"DELETE FROM {table}"):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)
    assert DocumentNarrative.objects.get(pk=narrative.pk).sections["intended_use"] == INTENDED


def test_a_wrong_password_saves_nothing_says_so_beside_the_field_and_is_recorded(champion, model_admin):
    url = reverse("governance:model_card_narrative", args=[champion.pk])

    response = login(model_admin).post(url, {"intended_use": INTENDED, "action": "sign", "password": "nope"})

    html = response.content.decode()
    assert response.status_code == 400 and 'id="narrative-password-error"' in html
    assert "Password is not correct; nothing was signed" in html
    assert "Second reader for breast biopsies." in html  # what they wrote is still in the form
    assert not DocumentNarrative.objects.exists()
    assert AuditEvent.objects.filter(action="signature.failed", actor=model_admin).count() == 1


def test_bad_sections_are_refused_beside_their_field(champion, model_admin):
    client = login(model_admin)
    url = reverse("governance:model_card_narrative", args=[champion.pk])

    too_long = client.post(url, {"factors": "x" * (MAX_SECTION_CHARS + 1), "action": "draft"})
    empty = client.post(url, {"intended_use": "   ", "action": "draft"})

    assert too_long.status_code == 400 and 'id="narrative-factors-error"' in too_long.content.decode()
    assert "At most 10,000 characters" in too_long.content.decode()
    assert empty.status_code == 400 and "Write at least one section." in empty.content.decode()
    assert not DocumentNarrative.objects.exists()


def test_the_form_saves_a_draft_and_signs_through_the_pages(champion, model_admin, model_admin2):
    client = login(model_admin)
    url = reverse("governance:model_card_narrative", args=[champion.pk])
    assert client.get(url).status_code == 200

    assert client.post(url, {"intended_use": INTENDED, "change_note": "first", "action": "draft"}).status_code == 302
    draft = DocumentNarrative.objects.get(model_version=champion)
    assert (draft.version, draft.change_note, draft.written_by) == (1, "first", model_admin)
    sign = reverse("governance:narrative_sign", args=[draft.pk])
    assert client.post(sign, {"meaning": "authored", "password": PASSWORD}).status_code == 302
    assert login(model_admin2).post(sign, {"meaning": "reviewed", "password": PASSWORD}).status_code == 302

    page = client.get(reverse("governance:model_card", args=[champion.pk])).content.decode()
    assert "signed, shown" in page and "Write a new version" in page
    assert Signature.objects.filter(record_type="document_narrative").count() == 2


def test_a_wrong_password_on_the_cards_sign_form_is_shown_beside_that_field_and_signs_nothing(
    champion, model_admin, model_admin2
):
    narrative = _write(model_admin, champion)  # signed by its author: model_admin2 may sign it as reviewer
    client = login(model_admin2)
    card = reverse("governance:model_card", args=[champion.pk])

    response = client.post(
        reverse("governance:narrative_sign", args=[narrative.pk]), {"meaning": "reviewed", "password": "nope"}
    )

    # The form is at the foot of a long card: the redirect lands on it, and the refusal is beside its field.
    assert response.status_code == 302 and response["Location"] == f"{card}#narrative-sign-{narrative.pk}"
    page = client.get(card).content.decode()
    field = f"sign-reviewed-{narrative.pk}"
    assert f'<span id="{field}-error" class="field-error">Password is not correct' in page
    assert f'aria-invalid="true" aria-describedby="{field}-error"' in page
    assert not Signature.objects.filter(record_type="document_narrative", meaning="reviewed").exists()
    # Shown once: the next view of the card has neither the message nor the field's error.
    assert f"{field}-error" not in client.get(card).content.decode()


def test_the_datasheet_narrative_is_written_signed_and_shown(champion, model_admin, auditor):
    snapshot = champion.snapshot
    narrative_write(
        user=model_admin,
        document="datasheet",
        subject=snapshot,
        sections={"motivation": "Screening research.", "maintenance": "The breast unit."},
        sign=True,
        password=PASSWORD,
    )

    sheet = login(auditor).get(reverse("governance:datasheet", args=[snapshot.pk]) + "?format=json").json()

    assert sheet["narrative"]["sections"]["motivation"] == "Screening research."
    assert sheet["narrative"]["signatures"][0]["verification"]["ok"] is True
    page = login(auditor).get(reverse("governance:datasheet", args=[snapshot.pk])).content.decode()
    assert "The breast unit." in page and "Narrative and signatures" in page


def test_only_model_admins_of_the_dataset_write_or_sign(champion, model_admin, auditor, reviewer, outsider):
    narrative = _write(model_admin, champion, sign=False)
    stranger = make_user("stranger_admin", Role.MODEL_ADMIN)
    edit = reverse("governance:model_card_narrative", args=[champion.pk])
    sheet_edit = reverse("governance:datasheet_narrative", args=[champion.snapshot_id])
    sign = reverse("governance:narrative_sign", args=[narrative.pk])

    for user in (auditor, reviewer, outsider, stranger):
        client = login(user)
        assert client.get(edit).status_code == 403
        assert client.get(sheet_edit).status_code == 403
        assert client.post(edit, {"intended_use": "x", "action": "draft"}).status_code == 403
        assert client.post(sign, {"meaning": "authored", "password": PASSWORD}).status_code == 403
    assert DocumentNarrative.objects.count() == 1
    assert login(auditor).get(reverse("governance:model_card", args=[champion.pk])).status_code == 200


def test_writing_signing_and_a_failed_signing_all_name_the_narrative_by_one_object_type(
    champion, model_admin, model_admin2
):
    narrative = _write(model_admin, champion, intended_use="Second reader.")
    with pytest.raises(ValidationError):
        narrative_sign(user=model_admin2, narrative=narrative, meaning="reviewed", password="wrong")
    narrative_sign(user=model_admin2, narrative=narrative, meaning="reviewed", password=PASSWORD)

    about = AuditEvent.objects.filter(object_id=str(narrative.pk), action__in=["narrative.written", "narrative.signed"])
    failed = AuditEvent.objects.get(action="signature.failed", object_id=str(narrative.pk))
    assert {e.object_type for e in about} | {failed.object_type} == {"document_narrative"}
    assert about.filter(action="narrative.signed").count() == 2  # authored at writing, then reviewed
    reviewed = about.filter(action="narrative.signed").order_by("-seq").first()
    assert reviewed.after["signature"]["meaning"] == "reviewed" and reviewed.after["signature"]["id"]
