"""The change envelope (issue 10, point 5): versioned clauses validated against the catalogue, signed by their
author and approved by another model admin; every candidate judged clause by clause; a substantial change cannot
be requested or approved through the normal path."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse

from governance.envelope import envelope_active, envelope_check
from governance.envelope_clauses import envelope_clauses_validate
from governance.envelope_services import envelope_version_approve, envelope_version_draft, envelope_version_sign
from governance.model_cards import model_card
from governance.models import (
    AuditEvent,
    ChangeEnvelopeSignoff,
    EnvelopeAssessment,
    PromotionRequest,
    Signature,
)
from governance.promotions import EnvelopeRefused, promotion_decide, promotion_request_create
from governance.signing import signature_verify
from models_app.models import ModelVersion
from tests.conftest import PASSWORD, login
from tests.helpers import candidate_train

# Wide enough for the trained world's logistic regression (C = 1, max_iter = 1000, imported seed labels).
PERMISSIVE = {
    "algorithms": {"logistic_regression": {"C": {"min": 0.01, "max": 100}}, "hist_gradient_boosting": {}},
    "label_sources": "any",
    "evaluation_sets": {"holdout": {"min_size": 10}},
    "acceptance": {"min_holdout_accuracy": 0.0, "max_regression_points": 100},
}


def _with(**changes) -> dict:
    return {**PERMISSIVE, **changes}


def _active(dataset, author, approver, clauses: dict, summary: str = "the plan"):
    version = envelope_version_draft(dataset=dataset, user=author, clauses=clauses, change_summary=summary)
    envelope_version_sign(version=version, user=author, password=PASSWORD)
    envelope_version_approve(version=version, user=approver, password=PASSWORD, reason="agreed")
    return version


@pytest.fixture
def candidate(trained_dataset, model_admin) -> ModelVersion:
    return candidate_train(trained_dataset, requested_by=model_admin, reason="envelope")


# --- the clauses, validated against the catalogue -------------------------------------------------------------


def test_valid_clauses_come_back_in_canonical_form():
    clean = envelope_clauses_validate(
        {
            "algorithms": {
                "logistic_regression": {"C": {"min": "0.1", "max": 10}, "class_weight_balanced": {"allowed": [True]}},
                "torch_mlp": {"hidden_sizes": {"choices": ["128,64", "64"]}},
            },
            "label_sources": "adjudicated",
            "evaluation_sets": {"holdout": {"min_size": "200"}},
            "acceptance": {"max_ece": 0.05},
        }
    )
    assert clean["algorithms"]["logistic_regression"]["C"] == {"min": 0.1, "max": 10.0}
    assert clean["algorithms"]["torch_mlp"]["hidden_sizes"] == {"choices": ["64", "128,64"]}  # catalogue order
    assert clean["evaluation_sets"] == {"holdout": {"min_size": 200}, "out_of_time": {"min_size": None}}
    assert clean["acceptance"] == {"min_holdout_accuracy": None, "max_ece": 0.05, "max_regression_points": None}


@pytest.mark.parametrize(
    ("clauses", "key", "words"),
    [
        ({"algorithms": {"xgboost": {}}}, "algorithms.xgboost", "Unknown algorithm 'xgboost'"),
        (
            {"algorithms": {"logistic_regression": {"gamma": {"max": 1}}}},
            "algorithms.logistic_regression.gamma",
            "Unknown hyperparameter 'gamma' of logistic_regression",
        ),
        (
            {"algorithms": {"logistic_regression": {"C": {"max": 1e6}}}},
            "algorithms.logistic_regression.C.max",
            "above the catalogue's maximum 10000 for C of logistic_regression",
        ),
        (
            {"algorithms": {"torch_mlp": {"epochs": {"min": 0}}}},
            "algorithms.torch_mlp.epochs.min",
            "below the catalogue's minimum 1 for epochs of torch_mlp",
        ),
        (
            {"algorithms": {"torch_mlp": {"epochs": {"min": 2.5}}}},
            "algorithms.torch_mlp.epochs.min",
            "must be a whole number",
        ),
        (
            {"algorithms": {"torch_mlp": {"hidden_sizes": {"choices": ["999"]}}}},
            "algorithms.torch_mlp.hidden_sizes",
            "'999' not among the catalogue's choices",
        ),
        ({"algorithms": {}}, "algorithms", "at least one algorithm"),
        (_with(label_sources="gossip"), "label_sources", "Unknown label source 'gossip'"),
        (_with(evaluation_sets={"holdout": {"min_size": -3}}), "evaluation_sets.holdout.min_size", "at least 1"),
        (_with(acceptance={"max_ece": 2}), "acceptance.max_ece", "between 0 and 1"),
        (_with(colour="blue"), "colour", "Unknown clause 'colour'"),
    ],
)
def test_invalid_clauses_name_the_field_and_why(clauses, key, words):
    with pytest.raises(ValidationError) as refused:
        envelope_clauses_validate({**PERMISSIVE, **clauses} if "algorithms" in clauses else clauses)
    assert key in refused.value.message_dict, refused.value.message_dict
    assert words in " ".join(refused.value.message_dict[key])


def test_an_invalid_draft_changes_nothing(dataset, model_admin):
    before = AuditEvent.objects.count()
    with pytest.raises(ValidationError) as refused:
        envelope_version_draft(
            dataset=dataset, user=model_admin, clauses={"algorithms": {"nope": {}}}, change_summary=""
        )
    assert set(refused.value.message_dict) == {"algorithms.nope", "change_summary"}
    assert AuditEvent.objects.count() == before and envelope_active(dataset.pk) is None


# --- signing and four eyes -------------------------------------------------------------------------------------


def test_a_version_is_drafted_signed_by_its_author_and_approved_by_another_admin(dataset, model_admin, model_admin2):
    version = envelope_version_draft(dataset=dataset, user=model_admin, clauses=PERMISSIVE, change_summary="first")
    assert version.number == 1 and envelope_active(dataset.pk) is None  # a draft is not active

    with pytest.raises(ValidationError, match="not signed by its author"):
        envelope_version_approve(version=version, user=model_admin2, password=PASSWORD)
    with pytest.raises(PermissionDenied):
        envelope_version_sign(version=version, user=model_admin2, password=PASSWORD)  # only the author signs

    authored = envelope_version_sign(version=version, user=model_admin, password=PASSWORD)
    assert authored.meaning == Signature.Meaning.AUTHORED and authored.record_type == "change_envelope_version"

    with pytest.raises(PermissionDenied):
        envelope_version_approve(version=version, user=model_admin, password=PASSWORD)  # four eyes
    assert AuditEvent.objects.filter(action="change_envelope.self_approval_refused").exists()
    assert envelope_active(dataset.pk) is None

    approval = envelope_version_approve(version=version, user=model_admin2, password=PASSWORD, reason="ok")
    assert approval.meaning == Signature.Meaning.APPROVAL
    assert envelope_active(dataset.pk) == version
    assert signature_verify(authored).ok and signature_verify(approval).ok
    actions = list(
        AuditEvent.objects.filter(object_type="change_envelope_version", object_id=str(version.pk))
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions == [
        "change_envelope.drafted",
        "change_envelope.signed",
        "change_envelope.self_approval_refused",
        "change_envelope.approved",
    ]
    approved = AuditEvent.objects.get(action="change_envelope.approved")
    assert approved.before == {"active_version": None} and approved.after["active_version"] == 1

    # A second version replaces it once approved; the older one stays, superseded.
    second = _active(dataset, model_admin2, model_admin, _with(label_sources="reviewed"), "stricter labels")
    assert second.number == 2 and envelope_active(dataset.pk) == second


def test_a_wrong_password_signs_nothing_and_is_recorded(dataset, model_admin):
    version = envelope_version_draft(dataset=dataset, user=model_admin, clauses=PERMISSIVE, change_summary="first")
    with pytest.raises(ValidationError) as refused:
        envelope_version_sign(version=version, user=model_admin, password="wrong")
    assert "Password is not correct" in refused.value.message_dict["password"][0]
    assert not ChangeEnvelopeSignoff.objects.filter(version=version).exists()
    assert AuditEvent.objects.filter(action="signature.failed", object_id=str(version.pk)).exists()


def test_the_database_holds_four_eyes_and_append_only(dataset, model_admin):
    version = envelope_version_draft(dataset=dataset, user=model_admin, clauses=PERMISSIVE, change_summary="first")
    signature = Signature.objects.create(
        signer=model_admin,
        printed_name="x",
        meaning="approval",
        signed_at=version.created_at,
        record_type="change_envelope_version",
        record_id=str(version.pk),
        record_hash=version.record_hash,
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        ChangeEnvelopeSignoff.objects.create(
            version=version, kind="approval", signer=model_admin, version_author=model_admin, signature=signature
        )
    with pytest.raises(ValueError, match="append-only"):
        version.change_summary = "edited"
        version.save()


# --- the check, clause by clause -------------------------------------------------------------------------------


def test_without_an_envelope_the_check_says_so_and_blocks_nothing(trained_dataset, candidate, model_admin):
    assessment = envelope_check(model_version=candidate)
    assert assessment.pk is None and assessment.envelope_version_id is None and not assessment.substantial_change
    request = promotion_request_create(
        model_version=candidate, user=model_admin, reason="no envelope", acknowledge_regressions=True, password=PASSWORD
    )
    event = AuditEvent.objects.get(action="promotion.requested", object_id=str(request.pk))
    assert event.after["envelope"]["verdict"] == "no envelope"


def test_a_candidate_within_the_envelope_passes_every_clause_and_the_check_is_stored_once(
    trained_dataset, candidate, model_admin, model_admin2
):
    envelope = _active(trained_dataset, model_admin, model_admin2, PERMISSIVE)
    assessment = envelope_check(model_version=candidate, actor=model_admin)
    assert assessment.pk and assessment.envelope_version == envelope and assessment.within
    clauses = {c["clause"]: c for c in assessment.clauses}
    assert {"algorithm", "hyperparameter logistic_regression.C", "label sources", "evaluation set: holdout"} <= set(
        clauses
    )
    assert clauses["algorithm"]["actual"] == "logistic_regression"
    assert clauses["hyperparameter logistic_regression.C"]["actual"] == 1.0
    assert all({"clause", "expected", "actual", "passed", "explanation"} <= set(c) for c in assessment.clauses)
    assert envelope_check(model_version=candidate, actor=model_admin).pk == assessment.pk  # same facts: same row
    assert AuditEvent.objects.filter(action="change_envelope.assessed").count() == 1


@pytest.mark.parametrize(
    ("clauses", "failed"),
    [
        (_with(algorithms={"hist_gradient_boosting": {}}), "algorithm"),
        (_with(algorithms={"logistic_regression": {"C": {"max": 0.5}}}), "hyperparameter logistic_regression.C"),
        (_with(label_sources="adjudicated"), "label sources"),
        (_with(evaluation_sets={"holdout": {"min_size": 100000}}), "evaluation set: holdout"),
        (_with(evaluation_sets={"out_of_time": {"min_size": 1}}), "evaluation set: out-of-time"),
        (_with(acceptance={"max_ece": 0.0}), "maximum ECE"),
    ],
)
def test_a_candidate_outside_the_envelope_is_refused_at_request_and_marked_substantial(
    trained_dataset, candidate, model_admin, model_admin2, clauses, failed
):
    _active(trained_dataset, model_admin, model_admin2, clauses)
    with pytest.raises(EnvelopeRefused) as refused:
        promotion_request_create(
            model_version=candidate, user=model_admin, reason="try", acknowledge_regressions=True, password=PASSWORD
        )
    message = " ".join(refused.value.messages)
    assert failed in message and "substantial change" in message and "new change-envelope version" in message
    assert not PromotionRequest.objects.filter(model_version=candidate).exists()
    stored = EnvelopeAssessment.objects.get(model_version=candidate)  # kept although the request was refused
    assert stored.substantial_change and not stored.within
    assert failed in [c["clause"] for c in stored.clauses if not c["passed"]]
    event = AuditEvent.objects.get(action="promotion.substantial_change_refused")
    assert event.after["attempted"] == "request" and failed in event.after["failed_clauses"]


def test_the_label_source_clause_counts_where_the_snapshot_labels_came_from(
    trained_dataset, candidate, model_admin, model_admin2
):
    _active(trained_dataset, model_admin, model_admin2, _with(label_sources="double_reviewed_or_adjudicated"))
    clause = next(c for c in envelope_check(model_version=candidate).clauses if c["clause"] == "label sources")
    assert clause["passed"] is False and clause["actual"].get("import", 0) > 0
    assert "imported with the data" in clause["explanation"]


def test_an_approval_is_refused_when_a_newer_envelope_excludes_the_candidate(
    trained_dataset, candidate, model_admin, model_admin2
):
    _active(trained_dataset, model_admin, model_admin2, PERMISSIVE)
    pending = promotion_request_create(
        model_version=candidate, user=model_admin, reason="within v1", acknowledge_regressions=True, password=PASSWORD
    )
    _active(trained_dataset, model_admin2, model_admin, _with(algorithms={"torch_mlp": {}}), "torch only")

    with pytest.raises(EnvelopeRefused) as refused:
        promotion_decide(
            request_id=pending.pk,
            user=model_admin2,
            approve=True,
            password=PASSWORD,
            reason="ok",
            acknowledge_regressions=True,
            override_reason="gates aside",
        )
    assert "algorithm" in " ".join(refused.value.messages) and "substantial change" in " ".join(refused.value.messages)
    pending.refresh_from_db()
    assert pending.status == "pending" and pending.signature_id is None
    assert not AuditEvent.objects.filter(action="signature.failed").exists()  # refused before the password
    event = AuditEvent.objects.get(action="promotion.substantial_change_refused")
    assert event.after["attempted"] == "approve" and event.after["envelope_version"] == 2
    assert EnvelopeAssessment.objects.filter(model_version=candidate, substantial_change=True).exists()

    # Rejecting it stays possible, and the decision keeps the assessment it was judged by.
    decided = promotion_decide(
        request_id=pending.pk, user=model_admin2, approve=False, password=PASSWORD, reason="outside the plan"
    )
    assert decided.envelope_assessment.substantial_change
    rejected = AuditEvent.objects.get(action="promotion.rejected", object_id=str(pending.pk))
    assert rejected.after["envelope"]["verdict"] == "substantial change"


def test_an_approval_within_the_envelope_stores_the_assessment_with_the_decision(
    trained_dataset, candidate, model_admin, model_admin2
):
    _active(trained_dataset, model_admin, model_admin2, PERMISSIVE)
    pending = promotion_request_create(
        model_version=candidate, user=model_admin, reason="within", acknowledge_regressions=True, password=PASSWORD
    )
    decided = promotion_decide(
        request_id=pending.pk,
        user=model_admin2,
        approve=True,
        password=PASSWORD,
        reason="ok",
        acknowledge_regressions=True,
        override_reason="gates aside for this test",
    )
    assert decided.status == "approved" and decided.envelope_assessment.within
    approved = AuditEvent.objects.get(action="promotion.approved", object_id=str(pending.pk))
    assert approved.after["envelope"]["verdict"] == "within the envelope"
    section = model_card(ModelVersion.objects.get(pk=candidate.pk))["change_envelope"]
    assert section["checks"][0]["verdict"] == "within the envelope" and section["active_envelope_version"] == 1


# --- pages and roles -------------------------------------------------------------------------------------------


def test_the_envelope_page_is_for_model_admins_and_auditors_only(dataset, model_admin, auditor, reviewer, outsider):
    url = reverse("governance:envelope", args=[dataset.pk])
    page = login(model_admin).get(url)
    assert page.status_code == 200 and b"No envelope" in page.content and b"Draft a new version" in page.content
    read_only = login(auditor).get(url)
    assert read_only.status_code == 200 and b"Draft a new version" not in read_only.content
    assert login(reviewer).get(url).status_code == 403
    assert login(outsider).get(url).status_code == 403
    draft = reverse("governance:envelope_draft", args=[dataset.pk])
    form = {"algorithms": ["logistic_regression"], "change_summary": "x"}
    assert login(auditor).post(draft, form).status_code == 403
    assert login(reviewer).post(draft, form).status_code == 403
    assert not dataset.envelope_versions.exists()


def _envelope_page_queries(client, dataset) -> tuple[str, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        page = client.get(reverse("governance:envelope", args=[dataset.pk]))
    assert page.status_code == 200
    return page.content.decode(), len(queries)


def test_the_envelope_page_checks_every_signature_in_a_fixed_number_of_queries(
    dataset, model_admin, model_admin2, auditor
):
    client = login(auditor)
    _active(dataset, model_admin, model_admin2, PERMISSIVE, summary="first")
    _envelope_page_queries(client, dataset)  # the first view fills per-process caches
    page, one = _envelope_page_queries(client, dataset)
    assert page.count('data-signature-check="verified"') == 2
    for n in range(3):
        _active(dataset, model_admin, model_admin2, PERMISSIVE, summary=f"revision {n}")
    page, four = _envelope_page_queries(client, dataset)
    assert page.count('data-signature-check="verified"') == 8
    assert one == four  # a tampered version still shows as such: see the test of the database's refusal below


def test_the_draft_form_shows_each_error_next_to_its_field_and_saves_nothing(dataset, model_admin):
    client = login(model_admin)
    response = client.post(
        reverse("governance:envelope_draft", args=[dataset.pk]),
        {
            "algorithms": ["logistic_regression"],
            "algorithms.logistic_regression.C.max": "99999",
            "acceptance.max_ece": "3",
            "change_summary": "",
        },
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert 'id="algorithms.logistic_regression.C.max-error"' in body and "catalogue&#x27;s maximum 10000" in body
    assert 'id="acceptance.max_ece-error"' in body and 'id="change_summary-error"' in body
    assert not dataset.envelope_versions.exists()


def test_the_pages_walk_draft_sign_approve_and_show_the_signatures(dataset, model_admin, model_admin2, auditor):
    first = login(model_admin)
    response = first.post(
        reverse("governance:envelope_draft", args=[dataset.pk]),
        {
            "algorithms": ["logistic_regression"],
            "algorithms.logistic_regression.C.min": "0.1",
            "algorithms.logistic_regression.class_weight_balanced.allowed": "false",
            "label_sources": "reviewed",
            "evaluation_sets.holdout.min_size": "50",
            "acceptance.max_regression_points": "2",
            "change_summary": "logistic regression only, reviewed labels",
        },
    )
    assert response.status_code == 302
    version = dataset.envelope_versions.get()
    assert version.clauses["algorithms"] == {
        "logistic_regression": {"C": {"min": 0.1}, "class_weight_balanced": {"allowed": [False]}}
    }
    sign, approve = (reverse(f"governance:envelope_{act}", args=[version.pk]) for act in ("sign", "approve"))
    assert first.post(sign, {"password": "nope"}).status_code == 400
    assert first.post(sign, {"password": PASSWORD}).status_code == 302
    assert first.post(approve, {"password": PASSWORD}).status_code == 403  # its author
    second = login(model_admin2)
    assert second.post(approve, {"password": PASSWORD}).status_code == 302
    page = login(auditor).get(reverse("governance:envelope", args=[dataset.pk])).content.decode()
    assert "v1</strong>" in page and page.count('data-signature-check="verified"') == 2
    # Five columns with the sign-off forms are wider than a phone: the table scrolls in its own region.
    assert 'class="table-scroll" role="region" aria-labelledby="envelope-history-title"' in page
    # The draft form: each algorithm's checkbox is beside its ranges' disclosure, never inside its summary.
    form = login(model_admin).get(reverse("governance:envelope", args=[dataset.pk])).content.decode()
    assert '<summary><label><input type="checkbox"' not in form
    assert '<summary>Hyperparameter ranges<span class="sr-only"> for Logistic regression' in form
    # An empty bound reads as no limit, in words.
    assert "holdout accuracy: no minimum;" in page and "ECE: no maximum;" in page
    assert "regression against the champion ≤ 2.0 points" in page
    assert login(auditor).post(approve, {}).status_code == 403


def test_the_promotion_pages_show_the_envelope_beside_the_gates(trained_dataset, candidate, model_admin, model_admin2):
    client = login(model_admin)
    listing = client.get(reverse("governance:promotion_list", args=[trained_dataset.pk])).content.decode()
    assert reverse("governance:envelope", args=[trained_dataset.pk]) in listing and "no envelope" in listing
    pending = promotion_request_create(
        model_version=candidate, user=model_admin, reason="look", acknowledge_regressions=True, password=PASSWORD
    )
    _active(trained_dataset, model_admin, model_admin2, _with(algorithms={"torch_mlp": {}}))
    detail = client.get(reverse("governance:promotion_detail", args=[pending.pk])).content.decode()
    assert 'data-envelope-verdict="substantial change"' in detail and "Substantial change" in detail
    assert EnvelopeAssessment.objects.count() == 0  # a page view stores nothing
    # Both tables are wider than a phone (JSON in the clauses): each scrolls in its own region.
    assert '<div class="table-scroll" role="region" aria-label="Change envelope clauses"' in detail
    listing = client.get(reverse("governance:promotion_list", args=[trained_dataset.pk])).content.decode()
    assert 'class="table-scroll" role="region" aria-labelledby="candidates-title"' in listing


def test_a_rollback_is_not_blocked_by_the_envelope_but_keeps_its_assessment(
    trained_dataset, candidate, model_admin, model_admin2
):
    from governance.rollbacks import rollback_request_create

    first = ModelVersion.objects.get(dataset=trained_dataset, stage=ModelVersion.Stage.CHAMPION)
    promoted = promotion_request_create(
        model_version=candidate, user=model_admin, reason="v2", acknowledge_regressions=True, password=PASSWORD
    )
    promotion_decide(
        request_id=promoted.pk,
        user=model_admin2,
        approve=True,
        password=PASSWORD,
        reason="ok",
        acknowledge_regressions=True,
        override_reason="gates aside for this test",
    )
    _active(trained_dataset, model_admin, model_admin2, _with(algorithms={"torch_mlp": {}}), "torch only")
    rollback = rollback_request_create(
        dataset_id=trained_dataset.pk,
        user=model_admin,
        reason="v2 misreads",
        acknowledge_regressions=True,
        password=PASSWORD,
    )
    decided = promotion_decide(
        request_id=rollback.pk,
        user=model_admin2,
        approve=True,
        password=PASSWORD,
        reason="back to v1",
        acknowledge_regressions=True,
        override_reason="putting the previous champion back",
    )
    assert decided.status == "approved" and ModelVersion.objects.get(pk=first.pk).is_champion
    assert decided.envelope_assessment.substantial_change  # shown and kept, not blocking a rollback


def test_the_promotions_list_marks_a_checked_candidate_as_a_substantial_change(
    trained_dataset, candidate, model_admin, model_admin2
):
    _active(trained_dataset, model_admin, model_admin2, _with(label_sources="adjudicated"))
    with pytest.raises(EnvelopeRefused):
        promotion_request_create(
            model_version=candidate, user=model_admin, reason="try", acknowledge_regressions=True, password=PASSWORD
        )
    listing = login(model_admin).get(reverse("governance:promotion_list", args=[trained_dataset.pk])).content.decode()
    assert 'data-envelope-check="substantial change"' in listing and "label sources" in listing
    card = login(model_admin).get(reverse("governance:model_card", args=[candidate.pk])).content.decode()
    assert "data-card-envelope" in card and "substantial change" in card


def test_the_database_refuses_edits_and_a_tampered_version_fails_its_signature_check(
    dataset, model_admin, model_admin2, auditor
):
    from django.db import connection

    version = _active(dataset, model_admin, model_admin2, PERMISSIVE)
    table = "governance_changeenvelopeversion"
    for statement in (f"UPDATE {table} SET change_summary = 'x'", f"DELETE FROM {table}"):
        with pytest.raises(Exception, match=f"{table} is append-only"), transaction.atomic(), connection.cursor() as c:
            c.execute(statement)

    # As a database administrator would: triggers off, the clauses widened behind the signers' backs.
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER {table}_append_only")
        else:
            cursor.execute(f"DROP TRIGGER {table}_append_only_update")
        cursor.execute(f"UPDATE {table} SET change_summary = 'anything goes' WHERE id = %s", [version.pk])
    signoffs = ChangeEnvelopeSignoff.objects.filter(version=version).select_related("signature")
    assert [signature_verify(s.signature).status for s in signoffs] == ["record_changed", "record_changed"]
    page = login(auditor).get(reverse("governance:envelope", args=[dataset.pk])).content.decode()
    assert page.count('data-signature-check="record_changed"') == 2


def test_a_refusal_judged_under_the_lock_names_an_assessment_that_exists(
    trained_dataset, candidate, model_admin, model_admin2, monkeypatch
):
    # The champion seems to move between the judgement before the locks and the one under them, on every attempt:
    # the first attempts give up and judge again outside the lock; the last judges the envelope inside the
    # decision's transaction, which the refusal rolls back, that assessment with it.
    from governance import promotions

    _active(trained_dataset, model_admin, model_admin2, PERMISSIVE)
    pending = promotion_request_create(
        model_version=candidate, user=model_admin, reason="within v1", acknowledge_regressions=True, password=PASSWORD
    )
    _active(trained_dataset, model_admin2, model_admin, _with(algorithms={"torch_mlp": {}}), "torch only")
    real, calls = promotions.current_champion, []

    def moving(dataset_id):  # type: ignore[no-untyped-def]
        calls.append(dataset_id)
        return None if len(calls) % 2 == 1 else real(dataset_id)  # judged against none, locked with the real one

    monkeypatch.setattr(promotions, "current_champion", moving)
    with pytest.raises(EnvelopeRefused):
        promotion_decide(
            request_id=pending.pk,
            user=model_admin2,
            approve=True,
            password=PASSWORD,
            reason="ok",
            acknowledge_regressions=True,
            override_reason="gates aside",
        )

    assert len(calls) == 2 * promotions._JUDGE_ATTEMPTS  # each attempt: once judging, once under the lock
    event = AuditEvent.objects.get(action="promotion.substantial_change_refused")
    assert EnvelopeAssessment.objects.filter(pk=event.after["assessment"], substantial_change=True).exists()


def test_every_registered_candidate_is_judged_against_the_envelope_without_a_promotion_request(
    trained_dataset, model_admin, model_admin2, django_capture_on_commit_callbacks
):
    _active(trained_dataset, model_admin, model_admin2, _with(algorithms={"torch_mlp": {}}), "torch only")

    with django_capture_on_commit_callbacks(execute=True):  # the judgement follows the registration's commit
        version = candidate_train(trained_dataset, requested_by=model_admin, reason="nobody will ask to promote it")

    stored = EnvelopeAssessment.objects.get(model_version=version)
    assert stored.substantial_change and stored.checked_by is None
    assert "algorithm" in " ".join(c["clause"] for c in stored.clauses if not c["passed"])
    assert AuditEvent.objects.filter(action="change_envelope.assessed", object_id=str(stored.pk)).exists()
    assert not PromotionRequest.objects.filter(model_version=version).exists()


def test_the_api_drafts_signs_approves_and_reads_the_envelope_as_the_page_does(dataset, model_admin, model_admin2):
    author, approver = login(model_admin), login(model_admin2)
    url = f"/api/datasets/{dataset.pk}/change-envelope/"

    refused = author.post(url, {"clauses": {"algorithms": {"no_such": {}}}, "change_summary": ""}, "application/json")
    assert refused.status_code == 400
    assert {"algorithms.no_such", "change_summary"} <= set(refused.json()), refused.json()
    assert not dataset.envelope_versions.exists()

    drafted = author.post(url, {"clauses": PERMISSIVE, "change_summary": "the plan"}, "application/json")
    assert drafted.status_code == 201, drafted.content
    version = drafted.json()
    assert (version["number"], version["status"], version["authored"]) == (1, "draft, not signed", None)
    sign = f"/api/change-envelope-versions/{version['id']}/sign/"
    approve = f"/api/change-envelope-versions/{version['id']}/approve/"
    wrong = author.post(sign, {"password": "not it"}, "application/json")
    assert wrong.status_code == 400 and "password" in wrong.json()
    assert approver.post(sign, {"password": PASSWORD}, "application/json").status_code == 403  # not its author
    signed = author.post(sign, {"password": PASSWORD}, "application/json")
    assert signed.status_code == 200 and signed.json()["authored"]["check"]["status"] == "verified"
    assert author.post(approve, {"password": PASSWORD}, "application/json").status_code == 403  # four eyes
    approved = approver.post(approve, {"password": PASSWORD, "reason": "agreed"}, "application/json")
    assert approved.status_code == 200, approved.content
    assert approved.json()["approval"]["reason"] == "agreed"

    listing = approver.get(url).json()
    assert listing["active_number"] == 1
    [row] = listing["versions"]
    assert row["status"] == "active" and row["clauses"] == envelope_active(dataset.pk).clauses
    assert [row[s]["check"]["status"] for s in ("authored", "approval")] == ["verified", "verified"]
    assert [row[s]["signer"] for s in ("authored", "approval")] == [model_admin.username, model_admin2.username]
