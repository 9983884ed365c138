"""The promotions page's other acts through the API (governance/promotion_apis.py, issue 10): the promotion
gates (read; set by a model admin, validated and audited as the page's form is), the list of a dataset's
requests, and a draft's edit."""

from __future__ import annotations

import pytest
from django.urls import reverse

from governance.models import AuditEvent, PromotionGates, PromotionRequest
from governance.promotions import promotion_request_create
from tests.helpers import PASSWORD, login, make_user
from workflow_site.access import Role

GATES = {
    "min_holdout_accuracy": 0.8,
    "max_regression_points": 3.0,
    "max_subgroup_regression_points": 6.0,
    "max_ece": None,
    "paired_test_not_worse": False,
}


def _gates_url(dataset) -> str:  # type: ignore[no-untyped-def]
    return f"/api/datasets/{dataset.pk}/promotion-gates/"


def _gate_events() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="promotion_gates.updated").order_by("seq"))


def _stored(dataset) -> dict | None:  # type: ignore[no-untyped-def]
    return PromotionGates.objects.filter(dataset=dataset).values(*GATES).first()


# --- the gates ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["model_admin", "auditor"])
def test_model_admins_and_auditors_read_the_gates_the_defaults_until_set(dataset, request, persona):
    body = login(request.getfixturevalue(persona)).get(_gates_url(dataset)).json()

    assert body == {
        "dataset": dataset.pk,
        "min_holdout_accuracy": None,
        "max_regression_points": 2.0,
        "max_subgroup_regression_points": 5.0,
        "max_ece": None,
        "paired_test_not_worse": True,
        "updated_at": None,
    }


def test_a_model_admin_sets_the_gates_and_the_change_is_audited_as_on_the_page(dataset, model_admin):
    response = login(model_admin).put(_gates_url(dataset), GATES, content_type="application/json")

    assert response.status_code == 200
    body = response.json()
    assert {name: body[name] for name in GATES} == GATES == _stored(dataset)
    assert body["updated_at"] is not None
    (event,) = _gate_events()
    assert event.actor_id == model_admin.pk and event.dataset_id == dataset.pk
    assert event.before == {
        "min_holdout_accuracy": None,
        "max_regression_points": 2.0,
        "max_subgroup_regression_points": 5.0,
        "paired_test_not_worse": True,
    }
    assert event.after == {k: v for k, v in GATES.items() if k != "max_ece"}


def test_the_api_and_the_page_write_the_same_event(dataset, model_admin):
    login(model_admin).post(
        reverse("governance:promotion_gates", args=[dataset.pk]),
        {"min_holdout_accuracy": "0.8", "max_regression_points": "3", "max_subgroup_regression_points": "6"},
    )
    login(model_admin).put(_gates_url(dataset), {**GATES, "max_ece": 0.1}, content_type="application/json")

    page, api = _gate_events()
    assert (page.object_type, page.object_id) == (api.object_type, api.object_id)
    assert api.before == {"max_ece": None} and api.after == {"max_ece": 0.1}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"min_holdout_accuracy": 1.5}, "min_holdout_accuracy"),  # the service's rule: a fraction
        ({"max_ece": -0.1}, "max_ece"),
        ({"max_regression_points": 101}, "max_regression_points"),
        ({"max_subgroup_regression_points": -1}, "max_subgroup_regression_points"),
        ({"max_regression_points": "a lot"}, "max_regression_points"),
        ({"max_regression_points": None}, "max_regression_points"),
        ({"paired_test_not_worse": "perhaps"}, "paired_test_not_worse"),
    ],
)
def test_a_bad_gate_is_a_400_naming_it_and_nothing_changes(dataset, model_admin, change, field):
    response = login(model_admin).put(_gates_url(dataset), {**GATES, **change}, content_type="application/json")

    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert _stored(dataset) is None and _gate_events() == []


def test_every_gate_must_be_given(dataset, model_admin):
    partial = {k: v for k, v in GATES.items() if k != "paired_test_not_worse"}

    response = login(model_admin).put(_gates_url(dataset), partial, content_type="application/json")

    assert response.status_code == 400 and list(response.json()) == ["paired_test_not_worse"]
    assert _stored(dataset) is None


@pytest.mark.parametrize("persona", ["auditor", "reviewer", "outsider"])
def test_only_a_model_admin_of_the_dataset_sets_the_gates(dataset, request, persona):
    response = login(request.getfixturevalue(persona)).put(_gates_url(dataset), GATES, content_type="application/json")

    assert response.status_code == 403
    assert _stored(dataset) is None and _gate_events() == []


def test_a_model_admin_of_another_dataset_neither_reads_nor_sets_the_gates(dataset):
    stranger = login(make_user("elsewhere", Role.MODEL_ADMIN))

    assert stranger.get(_gates_url(dataset)).status_code == 403
    assert stranger.put(_gates_url(dataset), GATES, content_type="application/json").status_code == 403
    assert stranger.get("/api/datasets/987654/promotion-gates/").status_code == 403  # missing: the same answer


def test_reviewers_do_not_read_the_gates_and_the_auditor_gets_a_404_for_a_missing_dataset(dataset, reviewer, auditor):
    assert login(reviewer).get(_gates_url(dataset)).status_code == 403
    assert login(auditor).get("/api/datasets/987654/promotion-gates/").status_code == 404


# --- the list of requests and a draft's edit ---------------------------------------------------------------


@pytest.fixture
def draft(trained_dataset, model_admin) -> PromotionRequest:
    from tests.helpers import candidate_train

    version = candidate_train(trained_dataset, requested_by=model_admin, reason="a candidate")
    return promotion_request_create(
        model_version=version, user=model_admin, reason="v2 draft", draft=True, acknowledge_regressions=True
    )


def _list(user, dataset, query: str = "") -> dict:  # type: ignore[no-untyped-def]
    response = login(user).get(f"/api/datasets/{dataset.pk}/promotion-requests/{query}")
    assert response.status_code == 200, response.content
    return response.json()


def test_the_list_shows_the_requests_newest_first_with_their_signatures_checked(
    trained_dataset, draft, model_admin, auditor
):
    approved = PromotionRequest.objects.get(model_version__dataset=trained_dataset, status="approved")

    mine = _list(model_admin, trained_dataset)
    theirs = _list(auditor, trained_dataset)

    assert [r["id"] for r in mine["results"]] == [draft.pk, approved.pk] and mine["older"] is None
    assert [r["id"] for r in theirs["results"]] == [approved.pk]  # a draft is its requester's alone
    row = theirs["results"][0]
    assert row["status"] == "approved" and row["requested_by"] == model_admin.username
    assert row["signature"]["check"]["status"] == "verified"
    assert row["request_signature"]["check"]["ok"] is True


def test_the_list_filters_by_status(trained_dataset, draft, model_admin):
    assert [r["id"] for r in _list(model_admin, trained_dataset, "?status=draft")["results"]] == [draft.pk]
    assert len(_list(model_admin, trained_dataset, "?status=")["results"]) == 2  # empty: every state
    assert _list(model_admin, trained_dataset, f"?before={draft.pk}")["results"][0]["status"] == "approved"


@pytest.mark.parametrize(("query", "field"), [("?status=lost", "status"), ("?before=none", "before")])
def test_a_bad_list_filter_is_a_400_naming_it(trained_dataset, model_admin, query, field):
    response = login(model_admin).get(f"/api/datasets/{trained_dataset.pk}/promotion-requests/{query}")

    assert response.status_code == 400 and field in response.json()


def test_reviewers_do_not_see_the_promotion_list(trained_dataset, reviewer):
    assert login(reviewer).get(f"/api/datasets/{trained_dataset.pk}/promotion-requests/").status_code == 403


def test_the_requester_edits_the_drafts_reason_and_the_edit_is_audited(draft, model_admin):
    response = login(model_admin).post(
        f"/api/promotion-requests/{draft.pk}/edit/", {"reason": "v2, reworded"}, content_type="application/json"
    )

    assert response.status_code == 200
    assert response.json()["reason"] == "v2, reworded" == PromotionRequest.objects.get(pk=draft.pk).reason
    event = AuditEvent.objects.get(action="promotion.draft_edited")
    assert event.actor_id == model_admin.pk and event.before["reason"] == "v2 draft"


def test_a_blank_reason_is_a_400_naming_it_and_the_draft_is_unchanged(draft, model_admin):
    response = login(model_admin).post(
        f"/api/promotion-requests/{draft.pk}/edit/", {"reason": "  "}, content_type="application/json"
    )

    assert response.status_code == 400 and list(response.json()) == ["reason"]
    assert PromotionRequest.objects.get(pk=draft.pk).reason == "v2 draft"
    assert not AuditEvent.objects.filter(action="promotion.draft_edited").exists()


def test_nobody_but_the_requester_edits_a_draft(draft, model_admin2, auditor):
    other = login(model_admin2).post(
        f"/api/promotion-requests/{draft.pk}/edit/", {"reason": "mine now"}, content_type="application/json"
    )
    audit = login(auditor).post(
        f"/api/promotion-requests/{draft.pk}/edit/", {"reason": "mine now"}, content_type="application/json"
    )

    assert (other.status_code, audit.status_code) == (403, 403)
    assert PromotionRequest.objects.get(pk=draft.pk).reason == "v2 draft"
    assert not AuditEvent.objects.filter(action="promotion.draft_edited").exists()
    # The other admin's try is on record, as on the page (governance/promotion_requests.py).
    assert AuditEvent.objects.filter(action="promotion.transition_refused", actor_id=model_admin2.pk).exists()


def test_a_submitted_request_is_no_longer_editable(draft, model_admin):
    client = login(model_admin)
    client.post(
        f"/api/promotion-requests/{draft.pk}/submit/",
        {"password": PASSWORD, "acknowledge_regressions": True},
        content_type="application/json",
    )

    response = client.post(
        f"/api/promotion-requests/{draft.pk}/edit/", {"reason": "too late"}, content_type="application/json"
    )

    assert response.status_code == 400
    assert PromotionRequest.objects.get(pk=draft.pk).reason == "v2 draft"
