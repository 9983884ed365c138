"""Model cards, datasheets and their narratives through the API (governance/document_apis.py, issue 10).

The pages' rules: model admins of the dataset and auditors read the documents, narrative included; model
admins write a narrative (a new version each time, a draft or signed) and sign versions; the services are
governance/narratives.py's, so the audit events are the pages' and a wrong password is recorded.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from governance.models import AuditEvent, DocumentNarrative
from governance.narratives import MAX_SECTION_CHARS, narrative_write
from models_app.models import ModelVersion
from tests.helpers import PASSWORD, login, make_user
from workflow_site.access import Role


@pytest.fixture
def champion(trained_dataset) -> ModelVersion:
    return ModelVersion.objects.select_related("snapshot").get(dataset=trained_dataset, stage="champion")


def _card_url(version: ModelVersion) -> str:
    return f"/api/model-versions/{version.pk}/model-card/"


def _narrative_url(version: ModelVersion) -> str:
    return f"/api/model-versions/{version.pk}/model-card/narrative/"


def _datasheet_narrative_url(version: ModelVersion) -> str:
    return f"/api/snapshots/{version.snapshot_id}/datasheet/narrative/"


def _events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("seq"))


# --- the documents -------------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["model_admin", "auditor"])
def test_the_model_card_is_the_pages_json(champion, request, persona):
    client = login(request.getfixturevalue(persona))

    api = client.get(_card_url(champion)).json()
    page = client.get(reverse("governance:model_card", args=[champion.pk]) + "?format=json").json()

    assert api["kind"] == "model_card" and api["model_details"]["version"] == champion.version
    assert api["narrative"] == page["narrative"] and api.keys() == page.keys()


@pytest.mark.parametrize("persona", ["model_admin", "auditor"])
def test_the_datasheet_is_the_pages_json(champion, request, persona):
    client = login(request.getfixturevalue(persona))

    api = client.get(f"/api/snapshots/{champion.snapshot_id}/datasheet/").json()
    page = client.get(reverse("governance:datasheet", args=[champion.snapshot_id]) + "?format=json").json()

    assert api.keys() == page.keys() and api["narrative"]["status"] == "not_written"


def test_reviewers_read_neither_document_and_a_missing_one_is_a_404_for_the_auditor(champion, reviewer, auditor):
    for url in (_card_url(champion), f"/api/snapshots/{champion.snapshot_id}/datasheet/"):
        assert login(reviewer).get(url).status_code == 403
    assert login(reviewer).get("/api/model-versions/987654/model-card/").status_code == 403
    assert login(auditor).get("/api/model-versions/987654/model-card/").status_code == 404
    assert login(auditor).get("/api/snapshots/987654/datasheet/").status_code == 404


def test_the_auditor_reads_a_signed_narrative_on_the_card(champion, model_admin, auditor):
    narrative_write(
        user=model_admin,
        document="model_card",
        subject=champion,
        sections={"intended_use": "Second reader."},
        sign=True,
        password=PASSWORD,
    )

    narrative = login(auditor).get(_card_url(champion)).json()["narrative"]

    assert narrative["status"] == "signed" and narrative["sections"]["intended_use"] == "Second reader."
    assert narrative["signatures"][0]["verification"]["status"] == "verified"


# --- writing -------------------------------------------------------------------------------------------


def test_the_form_starts_from_the_newest_version_draft_or_signed(champion, model_admin):
    narrative_write(user=model_admin, document="model_card", subject=champion, sections={"factors": "Age."})

    body = login(model_admin).get(_narrative_url(champion)).json()

    assert body["document"] == "model_card" and body["subject_id"] == champion.pk and body["latest_version"] == 1
    sections = {s["name"]: s["text"] for s in body["sections"]}
    assert list(sections) == ["intended_use", "out_of_scope", "factors", "ethical_considerations", "caveats"]
    assert sections["factors"] == "Age." and sections["intended_use"] == ""
    assert body["narrative"]["status"] == "draft_only" and body["narrative"]["history"][0]["status"] == "draft"


def test_a_draft_is_saved_as_a_new_version_and_audited(champion, model_admin):
    response = login(model_admin).post(
        _narrative_url(champion),
        {"intended_use": "Second reader.\r\nNever alone.", "change_note": "first"},
        content_type="application/json",
    )

    assert response.status_code == 201
    body = response.json()
    assert body["latest_version"] == 1 and body["narrative"]["status"] == "draft_only"
    saved = DocumentNarrative.objects.get(model_version=champion)
    assert saved.sections["intended_use"] == "Second reader.\nNever alone." and saved.change_note == "first"
    (event,) = _events("narrative.written")
    assert event.actor_id == model_admin.pk and event.after["version"] == 1
    assert _events("narrative.signed") == []


def test_a_version_saved_and_signed_at_once_becomes_the_documents_text(champion, model_admin):
    response = login(model_admin).post(
        _narrative_url(champion),
        {"intended_use": "Second reader.", "sign": True, "password": PASSWORD},
        content_type="application/json",
    )

    assert response.status_code == 201
    narrative = response.json()["narrative"]
    assert narrative["status"] == "signed" and narrative["sections"]["intended_use"] == "Second reader."
    assert narrative["signatures"][0]["meaning"] == "authored"
    assert len(_events("narrative.written")) == len(_events("narrative.signed")) == 1


def test_a_datasheet_narrative_is_written_the_same_way(champion, model_admin):
    client = login(model_admin)

    response = client.post(
        _datasheet_narrative_url(champion), {"motivation": "Screening research."}, content_type="application/json"
    )

    assert response.status_code == 201 and response.json()["document"] == "datasheet"
    assert DocumentNarrative.objects.get(snapshot_id=champion.snapshot_id).sections["motivation"] == (
        "Screening research."
    )
    assert [s["name"] for s in client.get(_datasheet_narrative_url(champion)).json()["sections"]] == [
        "motivation",
        "collection_process",
        "uses",
        "maintenance",
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"intended_use": "x" * (MAX_SECTION_CHARS + 1)}, "intended_use"),
        ({"intended_use": "   "}, "non_field_errors"),  # nothing written
        ({}, "non_field_errors"),
        ({"intended_use": "Second reader.", "sign": True, "password": "wrong"}, "password"),
        ({"intended_use": "Second reader.", "sign": "maybe"}, "sign"),
        ({"intended_use": ["a", "list"]}, "intended_use"),
    ],
)
def test_a_bad_narrative_is_a_400_naming_the_field_and_saves_nothing(champion, model_admin, body, field):
    response = login(model_admin).post(_narrative_url(champion), body, content_type="application/json")

    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not DocumentNarrative.objects.exists()
    assert _events("narrative.written") == []


def test_a_wrong_signing_password_is_recorded_as_on_the_page(champion, model_admin):
    login(model_admin).post(
        _narrative_url(champion),
        {"intended_use": "Second reader.", "sign": True, "password": "wrong"},
        content_type="application/json",
    )

    (failed,) = _events("signature.failed")
    assert failed.actor_id == model_admin.pk


@pytest.mark.parametrize("persona", ["auditor", "reviewer", "outsider"])
def test_only_a_model_admin_opens_or_writes_a_narrative(champion, request, persona):
    client = login(request.getfixturevalue(persona))

    assert client.get(_narrative_url(champion)).status_code == 403
    response = client.post(_narrative_url(champion), {"intended_use": "x"}, content_type="application/json")
    assert response.status_code == 403
    assert not DocumentNarrative.objects.exists()


def test_a_model_admin_of_another_dataset_gets_the_same_403_as_for_a_missing_version(champion):
    stranger = login(make_user("elsewhere", Role.MODEL_ADMIN))

    forbidden = stranger.get(_narrative_url(champion))
    missing = stranger.get("/api/model-versions/987654/model-card/narrative/")

    assert forbidden.status_code == missing.status_code == 403
    assert forbidden.json() == missing.json()


# --- signing -------------------------------------------------------------------------------------------


def _sign(user, narrative: DocumentNarrative, meaning: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    return login(user).post(
        f"/api/narratives/{narrative.pk}/sign/",
        {"meaning": meaning, "password": password},
        content_type="application/json",
    )


@pytest.fixture
def draft(champion, model_admin) -> DocumentNarrative:
    return narrative_write(
        user=model_admin, document="model_card", subject=champion, sections={"intended_use": "Second reader."}
    )


def test_the_writer_signs_a_draft_and_another_admin_reviews_it(draft, model_admin, model_admin2):
    authored = _sign(model_admin, draft, "authored")
    reviewed = _sign(model_admin2, draft, "reviewed")

    assert (authored.status_code, reviewed.status_code) == (200, 200)
    body = reviewed.json()
    assert body["status"] == "signed" and body["version"] == draft.version
    assert [s["meaning"] for s in body["signatures"]] == ["authored", "reviewed"]
    assert [e.actor_id for e in _events("narrative.signed")] == [model_admin.pk, model_admin2.pk]


@pytest.mark.parametrize(
    ("signer", "meaning", "password", "field"),
    [
        ("model_admin2", "authored", PASSWORD, "meaning"),  # only its writer signs as author
        ("model_admin", "reviewed", PASSWORD, "meaning"),  # not yet shown, and its writer cannot review it
        ("model_admin", "approved", PASSWORD, "meaning"),
        ("model_admin", "authored", "wrong", "password"),
        ("model_admin", "authored", "", "password"),
    ],
)
def test_a_refused_signature_is_a_400_naming_the_field_and_signs_nothing(
    draft, request, signer, meaning, password, field
):
    response = _sign(request.getfixturevalue(signer), draft, meaning, password)

    assert response.status_code == 400, response.content
    assert field in response.json()
    assert _events("narrative.signed") == []


@pytest.mark.parametrize("persona", ["auditor", "reviewer"])
def test_only_a_model_admin_signs_a_narrative(draft, request, persona):
    assert _sign(request.getfixturevalue(persona), draft, "authored").status_code == 403
    assert _events("narrative.signed") == []


def test_a_missing_narrative_is_a_403_for_a_model_admin(draft, model_admin):
    response = login(model_admin).post(
        "/api/narratives/987654/sign/", {"meaning": "authored", "password": PASSWORD}, content_type="application/json"
    )

    assert response.status_code == 403
