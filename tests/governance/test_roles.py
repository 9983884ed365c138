"""Who may do what: every persona against every page and API endpoint.

The rules (DESIGN): reviewers and adjudicators review the datasets they belong
to; model admins import, train, request and approve promotions for their
datasets; the auditor reads everything and changes nothing; someone without a
role, or a reviewer of another dataset, gets a 403 on everything
dataset-specific; anonymous visitors are sent to the login page (pages) or
refused (API). A denial is always a 403 and never changes anything.

One realistic world (a dataset with a champion, two candidates, a pending
promotion) is built once for the module inside a transaction; every test runs
in a savepoint inside it, so a POST in one case never leaks into the next.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from annotations.models import Dataset, DatasetMembership, Feature, ImportBatch, Item, LabelClass
from governance.models import AuditEvent, AuditVerificationRun, PromotionRequest
from models_app.models import ModelVersion, RetrainingPolicy, TrainingRun
from tests.conftest import PASSWORD, csv_bytes, login, make_user, synthetic_rows
from workflow_site.access import Role

# --- the world ----------------------------------------------------------------

PERSONAS = {
    # persona fixture name → username (as in tests/conftest.py)
    "reviewer": "reviewer",
    "reviewer2": "reviewer2",
    "adjudicator": "adjudicator",
    "model_admin": "admin1",
    "model_admin2": "admin2",
    "auditor": "auditor",
    "outsider": "outsider",
    "non_member_reviewer": "stranger",
    "anonymous": None,
}


@dataclass(frozen=True)
class World:
    dataset_id: int
    other_dataset_id: int
    batch_id: int
    open_item_id: int
    open_item_prediction_id: int
    run_id: int
    pending_promotion_id: int
    unrequested_version_id: int
    draft_promotion_id: int  # admin1's draft for v3 (drafts do not block other requests)
    verification_run_id: int  # a finished audit verification (governance/verification_runs.py)


def _train(dataset: Dataset, admin: User) -> ModelVersion:
    from models_app.services import training_run_request
    from models_app.training import training_run_execute

    run = training_run_request(
        dataset=dataset, trigger=TrainingRun.Trigger.MANUAL, requested_by=admin, reason="matrix world", dispatch=False
    )
    version = training_run_execute(run_id=run.pk)
    assert version is not None, TrainingRun.objects.get(pk=run.pk).error
    return version


def _build_world() -> World:
    from annotations.services import import_batch_create
    from governance.promotions import promotion_decide, promotion_request_create
    from models_app.prediction import open_item_ids, predictions_create

    dataset = Dataset.objects.create(name="Tumours", slug="tumours", description="Test data")
    Feature.objects.create(
        dataset=dataset, position=0, name="radius", dtype="float", unit="mm", normal_min=5, normal_max=15
    )
    Feature.objects.create(dataset=dataset, position=1, name="texture", dtype="float", unit="grey levels")
    Feature.objects.create(dataset=dataset, position=2, name="lobes", dtype="integer")
    LabelClass.objects.create(dataset=dataset, position=0, name="malignant", display_name="Malignant")
    LabelClass.objects.create(dataset=dataset, position=1, name="benign", display_name="Benign")
    RetrainingPolicy.objects.create(dataset=dataset, new_gold_labels=5)

    # A second dataset, so the non-member reviewer really is a reviewer somewhere else.
    other = Dataset.objects.create(name="Other", slug="other", description="Someone else's data")
    LabelClass.objects.create(dataset=other, position=0, name="yes", display_name="Yes")

    make_user("reviewer", Role.REVIEWER, dataset=dataset)
    make_user("reviewer2", Role.REVIEWER, dataset=dataset)
    make_user("adjudicator", Role.ADJUDICATOR, dataset=dataset)
    admin1 = make_user("admin1", Role.MODEL_ADMIN, dataset=dataset)
    admin2 = make_user("admin2", Role.MODEL_ADMIN, dataset=dataset)
    # The pending request is made by a third admin, so both admin personas may decide it.
    admin3 = make_user("admin3", Role.MODEL_ADMIN, dataset=dataset)
    make_user("auditor", Role.AUDITOR)
    make_user("outsider")
    stranger = make_user("stranger", Role.REVIEWER)
    DatasetMembership.objects.create(dataset=other, user=stranger)

    def _import(rows: list[dict], purpose: str, name: str) -> ImportBatch:
        return import_batch_create(dataset=dataset, user=admin1, file_name=name, data=csv_bytes(rows), purpose=purpose)

    _import(synthetic_rows(20, start=0), ImportBatch.Purpose.REVIEW, "seed.csv")
    _import(synthetic_rows(20, start=100), ImportBatch.Purpose.HOLDOUT, "holdout.csv")
    pool = _import(synthetic_rows(30, start=200, labelled=False), ImportBatch.Purpose.REVIEW, "pool.csv")

    # Two approved promotions, so the champion replaced one and a rollback has somewhere to go.
    v0 = _train(dataset, admin1)
    first = promotion_request_create(password=PASSWORD, model_version=v0, user=admin1, reason="first model")
    promotion_decide(request_id=first.pk, user=admin2, approve=True, password=PASSWORD, reason="ok")
    v1 = _train(dataset, admin1)
    second = promotion_request_create(
        password=PASSWORD, model_version=v1, user=admin1, reason="second model", acknowledge_regressions=True
    )
    promotion_decide(
        request_id=second.pk, user=admin2, approve=True, password=PASSWORD, reason="ok", acknowledge_regressions=True
    )
    predictions_create(model_version=v1, item_ids=open_item_ids(dataset.pk), update_items=True)

    v2 = _train(dataset, admin1)
    pending = promotion_request_create(password=PASSWORD, model_version=v2, user=admin3, reason="v2 is better")
    v3 = _train(dataset, admin1)
    draft = promotion_request_create(
        model_version=v3, user=admin1, reason="v3 draft", draft=True, acknowledge_regressions=True
    )

    item = Item.objects.filter(dataset=dataset, queue_state=Item.QueueState.OPEN).order_by("pk").first()
    assert item is not None and item.prediction_id is not None
    return World(
        dataset_id=dataset.pk,
        other_dataset_id=other.pk,
        batch_id=pool.pk,
        open_item_id=item.pk,
        open_item_prediction_id=item.prediction_id,
        run_id=v2.training_run_id,
        pending_promotion_id=pending.pk,
        unrequested_version_id=v3.pk,
        draft_promotion_id=draft.pk,
        verification_run_id=AuditVerificationRun.objects.create(
            requested_at=timezone.now(), status=AuditVerificationRun.Status.DONE, result={"ok": True}
        ).pk,
    )


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker) -> Any:
    """Built once, inside a transaction that is rolled back when the module ends."""
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            built = _build_world()
        except BaseException:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)
            raise
    yield built
    with django_db_blocker.unblock():
        transaction.set_rollback(True)
        outer.__exit__(None, None, None)


@pytest.fixture
def broker() -> Any:
    """The broker is the outside world: training dispatch goes to a mock."""
    from models_app.tasks import training_run_execute as train_model

    with mock.patch.object(train_model, "apply_async") as apply_async:
        yield apply_async


# --- the matrix -----------------------------------------------------------------

REVIEWERS = frozenset({"reviewer", "reviewer2", "adjudicator"})
ADMINS = frozenset({"model_admin", "model_admin2"})
AUDITOR = frozenset({"auditor"})
ADMIN_READERS = ADMINS | AUDITOR
DATASET_READERS = REVIEWERS | ADMINS | AUDITOR
SIGNED_IN = frozenset(p for p in PERSONAS if p != "anonymous")


@dataclass(frozen=True)
class Endpoint:
    method: str
    url: Callable[[World], str]
    allowed: frozenset[str]
    ok: int = 200
    api: bool = False
    data: Callable[[World], dict] = field(default=lambda w: {})
    # The audit event an allowed write must leave behind (proof it really happened).
    effect: str = ""
    dispatches_training: bool = False


ENDPOINTS: dict[str, Endpoint] = {
    # pages
    "home": Endpoint("get", lambda w: reverse("home"), SIGNED_IN),
    "dataset_detail": Endpoint(
        "get", lambda w: reverse("annotations:dataset_detail", args=[w.dataset_id]), DATASET_READERS
    ),
    "import_page": Endpoint("get", lambda w: reverse("annotations:import", args=[w.dataset_id]), ADMINS),
    "batch_detail": Endpoint(
        "get", lambda w: reverse("annotations:batch_detail", args=[w.dataset_id, w.batch_id]), ADMIN_READERS
    ),
    "review_page": Endpoint("get", lambda w: reverse("annotations:review", args=[w.dataset_id]), REVIEWERS),
    "guideline_page": Endpoint("get", lambda w: reverse("annotations:guideline", args=[w.dataset_id]), DATASET_READERS),
    "guideline_publish": Endpoint(
        "post",
        lambda w: reverse("annotations:guideline", args=[w.dataset_id]),
        ADMINS,
        ok=302,
        data=lambda w: {"text": "# Rules\n\nCall it malignant when in doubt.", "action": "publish"},
        effect="guideline.published",
    ),
    "agreement_page": Endpoint("get", lambda w: reverse("annotations:agreement", args=[w.dataset_id]), ADMIN_READERS),
    "review_submit": Endpoint(
        "post",
        lambda w: reverse("annotations:review_submit", args=[w.dataset_id, w.open_item_id]),
        REVIEWERS,
        ok=302,
        data=lambda w: {"label": "malignant", "shown_prediction": w.open_item_prediction_id},
        effect="review.submitted",
    ),
    "models_overview": Endpoint("get", lambda w: reverse("models_app:overview", args=[w.dataset_id]), ADMIN_READERS),
    "training_start": Endpoint(
        "post",
        lambda w: reverse("models_app:train", args=[w.dataset_id]),
        ADMINS,
        ok=302,
        data=lambda w: {"reason": "matrix"},
        effect="training.requested",
        dispatches_training=True,
    ),
    "policy_update": Endpoint(
        "post",
        lambda w: reverse("models_app:policy", args=[w.dataset_id]),
        ADMINS,
        ok=302,
        data=lambda w: {"enabled": "on", "new_gold_labels": "7"},
        effect="retraining_policy.updated",
    ),
    # The label-issue re-review: a first post only shows what it would do; the confirmed one runs it.
    "label_issues_check": Endpoint(
        "post", lambda w: reverse("models_app:label_issues", args=[w.dataset_id]), ADMINS, data=lambda w: {"limit": "2"}
    ),
    "label_issues_reopen": Endpoint(
        "post",
        lambda w: reverse("models_app:label_issues", args=[w.dataset_id]),
        ADMINS,
        ok=302,
        data=lambda w: {"limit": "2", "confirm": "yes"},
        effect="label_issues.reopened",
    ),
    "run_detail": Endpoint("get", lambda w: reverse("models_app:run_detail", args=[w.run_id]), ADMIN_READERS),
    # The world's run has finished: an admin is let through and told so (a message), nobody else gets that far.
    "run_cancel": Endpoint("post", lambda w: reverse("models_app:run_cancel", args=[w.run_id]), ADMINS, ok=302),
    "shadow_change": Endpoint(
        "post",
        lambda w: reverse("models_app:shadow_change", args=[w.unrequested_version_id]),
        ADMINS,
        ok=302,
        data=lambda w: {"action": "start", "reason": "watch it"},
        effect="model_version.shadow_started",
    ),
    "model_card": Endpoint(
        "get", lambda w: reverse("governance:model_card", args=[w.unrequested_version_id]), ADMIN_READERS
    ),
    "promotion_list": Endpoint(
        "get", lambda w: reverse("governance:promotion_list", args=[w.dataset_id]), ADMIN_READERS
    ),
    "promotion_request": Endpoint(
        "post",
        lambda w: reverse("governance:promotion_request", args=[w.dataset_id]),
        ADMINS,
        ok=302,
        data=lambda w: {"model_version": w.unrequested_version_id, "reason": "v3 looks good", "password": PASSWORD},
        effect="promotion.requested",
    ),
    "rollback_request": Endpoint(
        "post",
        lambda w: reverse("governance:rollback_request", args=[w.dataset_id]),
        ADMINS,
        ok=302,
        data=lambda w: {
            "rollback_reason": "v2 misreads the new scanner",
            "rollback_acknowledge_regressions": "on",
            "rollback_password": PASSWORD,
        },
        effect="rollback.requested",
    ),
    "promotion_gates": Endpoint(
        "post",
        lambda w: reverse("governance:promotion_gates", args=[w.dataset_id]),
        ADMINS,
        ok=302,
        data=lambda w: {"max_regression_points": "3", "max_subgroup_regression_points": "5"},
        effect="promotion_gates.updated",
    ),
    "promotion_detail": Endpoint(
        "get", lambda w: reverse("governance:promotion_detail", args=[w.pending_promotion_id]), ADMIN_READERS
    ),
    "promotion_decide": Endpoint(
        "post",
        lambda w: reverse("governance:promotion_decide", args=[w.pending_promotion_id]),
        ADMINS,
        ok=302,
        data=lambda w: {"decision": "approve", "password": PASSWORD, "reason": "looks right"},
        effect="promotion.approved",
    ),
    "queue_settings_page": Endpoint(
        "get", lambda w: reverse("annotations:workbench_settings", args=[w.dataset_id]), ADMIN_READERS
    ),
    "model_output_switch": Endpoint(
        "post",
        lambda w: reverse("annotations:model_output_switch", args=[w.dataset_id]),
        ADMINS,
        ok=302,
        data=lambda w: {"model_output": "off", "reason": "stop it"},
        effect="dataset.model_output_switched_off",
    ),
    "retention_period": Endpoint(
        "post",
        lambda w: reverse("annotations:retention_period", args=[w.dataset_id]),
        ADMINS,
        ok=302,
        data=lambda w: {"retention_days": "30"},
        effect="dataset.retention_changed",
    ),
    "legal_hold": Endpoint(
        "post",
        lambda w: reverse("annotations:legal_hold", args=[w.dataset_id]),
        ADMINS,
        ok=302,
        data=lambda w: {"legal_hold": "place", "reason": "litigation"},
        effect="dataset.legal_hold_placed",
    ),
    "queue_settings_change": Endpoint(
        "post",
        lambda w: reverse("annotations:workbench_settings", args=[w.dataset_id]),
        ADMINS,
        ok=302,
        data=lambda w: {"strategy": "margin", "audit_slice_percent": 10, "overlap": 2, "blind_percent": 5},
        effect="dataset.queue_settings_changed",
    ),
    "adjudication_page": Endpoint(
        "get", lambda w: reverse("annotations:adjudicate", args=[w.dataset_id]), frozenset({"adjudicator"})
    ),
    "reviewer_report_page": Endpoint(
        "get", lambda w: reverse("annotations:reviewer_report", args=[w.dataset_id]), ADMIN_READERS
    ),
    "audit_list": Endpoint("get", lambda w: reverse("governance:audit_list"), AUDITOR),
    # A verification logs itself (who verified the trail, when, what was found): a read with a record.
    "audit_verify_page": Endpoint("get", lambda w: reverse("governance:audit_verify"), AUDITOR),
    # The page's button asks a worker to verify (governance/verification_runs.py): the request is recorded.
    "audit_verify": Endpoint(
        "post", lambda w: reverse("governance:audit_verify"), AUDITOR, ok=302, effect="audit.verification_requested"
    ),
    "audit_verify_run": Endpoint(
        "get", lambda w: reverse("governance:audit_verify_run", args=[w.verification_run_id]), AUDITOR
    ),
    "item_history": Endpoint("get", lambda w: reverse("governance:item_history", args=[w.open_item_id]), AUDITOR),
    "lineage_item": Endpoint(
        "get", lambda w: reverse("governance:lineage", args=["item", w.open_item_id]), ADMIN_READERS
    ),
    # A lineage export records itself before it is sent, like the audit trail's exports.
    "lineage_export": Endpoint(
        "get",
        lambda w: reverse("governance:lineage_export", args=["item", w.open_item_id, "jsonl"]),
        ADMIN_READERS,
        effect="audit.exported",
    ),
    "lineage_prediction": Endpoint(
        "get", lambda w: reverse("governance:lineage", args=["prediction", w.open_item_prediction_id]), ADMIN_READERS
    ),
    "lineage_promotion": Endpoint(
        "get", lambda w: reverse("governance:lineage", args=["promotion", w.pending_promotion_id]), ADMIN_READERS
    ),
    # An export records itself before it streams (what, which filters, up to which seq).
    "audit_export_events": Endpoint(
        "get", lambda w: reverse("governance:audit_export", args=["events", "csv"]), AUDITOR, effect="audit.exported"
    ),
    "audit_export_signatures": Endpoint(
        "get",
        lambda w: reverse("governance:audit_export", args=["signatures", "jsonl"]),
        AUDITOR,
        effect="audit.exported",
    ),
    "audit_export_checkpoints": Endpoint(
        "get",
        lambda w: reverse("governance:audit_export", args=["checkpoints", "csv"]),
        AUDITOR,
        effect="audit.exported",
    ),
    # API
    "api_datasets": Endpoint("get", lambda w: "/api/datasets/", SIGNED_IN, api=True),
    "api_next_item": Endpoint("get", lambda w: f"/api/datasets/{w.dataset_id}/next-item/", REVIEWERS, api=True),
    "api_progress": Endpoint("get", lambda w: f"/api/datasets/{w.dataset_id}/progress/", REVIEWERS, api=True),
    "api_review_create": Endpoint(
        "post",
        lambda w: f"/api/items/{w.open_item_id}/reviews/",
        REVIEWERS,
        ok=201,
        api=True,
        data=lambda w: {"label": "malignant", "shown_prediction_id": w.open_item_prediction_id},
        effect="review.submitted",
    ),
    "api_training_run_create": Endpoint(
        "post",
        lambda w: f"/api/datasets/{w.dataset_id}/training-runs/",
        ADMINS,
        ok=201,
        api=True,
        data=lambda w: {"reason": "matrix"},
        effect="training.requested",
        dispatches_training=True,
    ),
    "api_training_run_detail": Endpoint("get", lambda w: f"/api/training-runs/{w.run_id}/", ADMIN_READERS, api=True),
    "api_training_run_cancel": Endpoint(
        "post", lambda w: f"/api/training-runs/{w.run_id}/cancel/", ADMINS, ok=400, api=True, data=lambda w: {}
    ),
    "api_promotion_request_create": Endpoint(
        "post",
        lambda w: f"/api/model-versions/{w.unrequested_version_id}/promotion-requests/",
        ADMINS,
        ok=201,
        api=True,
        data=lambda w: {"reason": "v3 looks good", "password": PASSWORD},
        effect="promotion.requested",
    ),
    "api_model_output": Endpoint(
        "get", lambda w: f"/api/datasets/{w.dataset_id}/model-output/", ADMIN_READERS, api=True
    ),
    "api_model_output_switch": Endpoint(
        "post",
        lambda w: f"/api/datasets/{w.dataset_id}/model-output/",
        ADMINS,
        ok=200,
        api=True,
        data=lambda w: {"off": True, "reason": "stop it"},
        effect="dataset.model_output_switched_off",
    ),
    "api_retention": Endpoint("get", lambda w: f"/api/datasets/{w.dataset_id}/retention/", ADMIN_READERS, api=True),
    "api_lineage_item": Endpoint("get", lambda w: f"/api/lineage/item/{w.open_item_id}/", ADMIN_READERS, api=True),
    "api_envelope": Endpoint(
        "get", lambda w: f"/api/datasets/{w.dataset_id}/change-envelope/", ADMIN_READERS, api=True
    ),
    "api_envelope_draft": Endpoint(
        "post",
        lambda w: f"/api/datasets/{w.dataset_id}/change-envelope/",
        ADMINS,
        ok=201,
        api=True,
        data=lambda w: {"clauses": {"algorithms": {"logistic_regression": {}}}, "change_summary": "LR only"},
        effect="change_envelope.drafted",
    ),
    "api_retention_change": Endpoint(
        "post",
        lambda w: f"/api/datasets/{w.dataset_id}/retention/",
        ADMINS,
        ok=200,
        api=True,
        data=lambda w: {"retention_days": 30},
        effect="dataset.retention_changed",
    ),
    "api_legal_hold": Endpoint(
        "post",
        lambda w: f"/api/datasets/{w.dataset_id}/legal-hold/",
        ADMINS,
        ok=200,
        api=True,
        data=lambda w: {"hold": True, "reason": "litigation"},
        effect="dataset.legal_hold_placed",
    ),
    "api_shadow_report": Endpoint(
        "get", lambda w: f"/api/model-versions/{w.unrequested_version_id}/shadow-report/", ADMIN_READERS, api=True
    ),
    "api_shadow_change": Endpoint(
        "post",
        lambda w: f"/api/model-versions/{w.unrequested_version_id}/shadow/",
        ADMINS,
        ok=200,
        api=True,
        data=lambda w: {"action": "start", "reason": "watch it"},
        effect="model_version.shadow_started",
    ),
    "api_rollback_request_create": Endpoint(
        "post",
        lambda w: f"/api/datasets/{w.dataset_id}/rollback-requests/",
        ADMINS,
        ok=201,
        api=True,
        data=lambda w: {"reason": "v2 misreads the new scanner", "acknowledge_regressions": True, "password": PASSWORD},
        effect="rollback.requested",
    ),
    "api_promotion_decision": Endpoint(
        "post",
        lambda w: f"/api/promotion-requests/{w.pending_promotion_id}/decision/",
        ADMINS,
        ok=200,
        api=True,
        data=lambda w: {"decision": "approve", "password": PASSWORD, "reason": "looks right"},
        effect="promotion.approved",
    ),
    "api_audit_events": Endpoint("get", lambda w: "/api/audit-events/", AUDITOR, api=True),
    "api_guideline": Endpoint("get", lambda w: f"/api/datasets/{w.dataset_id}/guideline/", DATASET_READERS, api=True),
    "api_guideline_preview": Endpoint(
        "post",
        lambda w: f"/api/datasets/{w.dataset_id}/guideline/preview/",
        ADMINS,
        api=True,
        data=lambda w: {"text": "# Rules\n\nA draft."},
    ),
    # Reviewers too, as on the items page: the selector limits them to the items they answered.
    "api_items": Endpoint("get", lambda w: f"/api/datasets/{w.dataset_id}/items/", DATASET_READERS, api=True),
    "api_agreement": Endpoint("get", lambda w: f"/api/datasets/{w.dataset_id}/agreement/", ADMIN_READERS, api=True),
    "api_queue_settings": Endpoint(
        "get", lambda w: f"/api/datasets/{w.dataset_id}/queue-settings/", ADMIN_READERS, api=True
    ),
    "api_adjudication_next": Endpoint(
        "get", lambda w: f"/api/datasets/{w.dataset_id}/adjudication/next-item/", frozenset({"adjudicator"}), api=True
    ),
    "api_reviewer_report": Endpoint(
        "get", lambda w: f"/api/datasets/{w.dataset_id}/reviewer-report/", ADMIN_READERS, api=True
    ),
    "api_guideline_publish": Endpoint(
        "post",
        lambda w: f"/api/datasets/{w.dataset_id}/guideline/",
        ADMINS,
        ok=201,
        api=True,
        data=lambda w: {"text": "# Rules\n\nCall it benign when sure."},
        effect="guideline.published",
    ),
    # Governance pages' API counterparts (issue 10): governance/*_apis.py.
    "api_promotion_list": Endpoint(
        "get", lambda w: f"/api/datasets/{w.dataset_id}/promotion-requests/", ADMIN_READERS, api=True
    ),
    "api_promotion_gates": Endpoint(
        "get", lambda w: f"/api/datasets/{w.dataset_id}/promotion-gates/", ADMIN_READERS, api=True
    ),
    "api_promotion_gates_set": Endpoint(
        "put",
        lambda w: f"/api/datasets/{w.dataset_id}/promotion-gates/",
        ADMINS,
        api=True,
        data=lambda w: {
            "min_holdout_accuracy": None,
            "max_regression_points": 3,
            "max_subgroup_regression_points": 5,
            "max_ece": None,
            "paired_test_not_worse": True,
        },
        effect="promotion_gates.updated",
    ),
    "api_model_card": Endpoint(
        "get", lambda w: f"/api/model-versions/{w.unrequested_version_id}/model-card/", ADMIN_READERS, api=True
    ),
    "api_datasheet": Endpoint("get", lambda w: f"/api/snapshots/{_snapshot_id(w)}/datasheet/", ADMIN_READERS, api=True),
    # The writing form is the model admins' (auditors read the narrative on the card, above).
    "api_model_card_narrative": Endpoint(
        "get", lambda w: f"/api/model-versions/{w.unrequested_version_id}/model-card/narrative/", ADMINS, api=True
    ),
    "api_model_card_narrative_write": Endpoint(
        "post",
        lambda w: f"/api/model-versions/{w.unrequested_version_id}/model-card/narrative/",
        ADMINS,
        ok=201,
        api=True,
        data=lambda w: {"intended_use": "Second reader for biopsies."},
        effect="narrative.written",
    ),
    "api_datasheet_narrative_write": Endpoint(
        "post",
        lambda w: f"/api/snapshots/{_snapshot_id(w)}/datasheet/narrative/",
        ADMINS,
        ok=201,
        api=True,
        data=lambda w: {"motivation": "Screening research."},
        effect="narrative.written",
    ),
    "api_item_history": Endpoint("get", lambda w: f"/api/items/{w.open_item_id}/history/", AUDITOR, api=True),
    "api_lineage_export": Endpoint(
        "get",
        lambda w: f"/api/lineage/item/{w.open_item_id}/export/?file_format=jsonl",
        ADMIN_READERS,
        api=True,
        effect="audit.exported",
    ),
    "api_audit_export": Endpoint(
        "get", lambda w: "/api/audit/exports/?kind=events", AUDITOR, api=True, effect="audit.exported"
    ),
    "api_audit_integrity": Endpoint("get", lambda w: "/api/audit/integrity/", AUDITOR, api=True),
    "api_audit_checkpoints": Endpoint("get", lambda w: "/api/audit/checkpoints/", AUDITOR, api=True),
    "api_audit_last_verification": Endpoint("get", lambda w: "/api/audit/verification/", AUDITOR, api=True),
    # Like the audit page's button: the verification records itself.
    "api_audit_verify": Endpoint(
        "post", lambda w: "/api/audit/verification/", AUDITOR, api=True, effect="audit.verified"
    ),
    "api_audit_verification_run_create": Endpoint(
        "post",
        lambda w: "/api/audit/verification-runs/",
        AUDITOR,
        api=True,
        ok=202,
        effect="audit.verification_requested",
    ),
    "api_audit_verification_run": Endpoint(
        "get", lambda w: f"/api/audit/verification-runs/{w.verification_run_id}/", AUDITOR, api=True
    ),
    "api_audit_inclusion_proof": Endpoint(
        "get", lambda w: "/api/audit/proofs/inclusion/?seq=1&tree_size=2", AUDITOR, api=True
    ),
    "api_audit_consistency_proof": Endpoint(
        "get", lambda w: "/api/audit/proofs/consistency/?first_size=1&second_size=2", AUDITOR, api=True
    ),
    "api_audit_proof_verify": Endpoint(
        "post",
        lambda w: "/api/audit/proofs/verify/",
        AUDITOR,
        api=True,
        data=lambda w: {"kind": "inclusion", "proof": []},
    ),
}


def _snapshot_id(world: World) -> int:
    return ModelVersion.objects.get(pk=world.unrequested_version_id).snapshot_id


def _client_for(persona: str) -> Client:
    username = PERSONAS[persona]
    if username is None:
        return Client()
    return login(User.objects.get(username=username))


def _changes_since(seq: int) -> list[str]:
    """Audit actions recorded after `seq`, logins aside: the trace of any state change."""
    return list(
        AuditEvent.objects.filter(seq__gt=seq)
        .exclude(action__startswith="auth.")
        .order_by("seq")
        .values_list("action", flat=True)
    )


def _last_seq() -> int:
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


@pytest.mark.parametrize("endpoint_name", list(ENDPOINTS))
@pytest.mark.parametrize("persona", list(PERSONAS))
def test_each_persona_gets_the_status_the_rules_allow_on_each_endpoint(
    world, db, broker, django_capture_on_commit_callbacks, persona, endpoint_name
):
    endpoint = ENDPOINTS[endpoint_name]
    client = _client_for(persona)
    url = endpoint.url(world)
    if endpoint.effect == "review.submitted" and PERSONAS[persona] is not None:
        # Reviews are of items the queue handed out: hand this one to the persona.
        Item.objects.filter(pk=world.open_item_id).update(leased_to=User.objects.get(username=PERSONAS[persona]))
    seq_before = _last_seq()

    with django_capture_on_commit_callbacks(execute=True):
        if endpoint.method == "get":
            response = client.get(url)
        elif endpoint.api:  # post or put, with a JSON body
            response = getattr(client, endpoint.method)(url, endpoint.data(world), content_type="application/json")
        else:
            response = client.post(url, endpoint.data(world))

    if persona == "anonymous":
        if endpoint.api:
            assert response.status_code in (401, 403), response.content
        else:
            assert response.status_code == 302
            assert response["Location"].startswith(reverse("login") + "?next=")
        assert _changes_since(seq_before) == []
        broker.assert_not_called()
        return

    if persona in endpoint.allowed:
        assert response.status_code == endpoint.ok, (persona, endpoint_name, response.content[:500])
        if response.status_code == 302:
            assert not response["Location"].startswith(reverse("login"))
        if endpoint.effect:
            assert endpoint.effect in _changes_since(seq_before)
        else:
            assert _changes_since(seq_before) == [], "a read must not change anything"
        if endpoint.dispatches_training:
            broker.assert_called_once()
            new_run = TrainingRun.objects.order_by("-pk").first()
            assert broker.call_args.kwargs["args"] == [new_run.pk]
    else:
        # A denial is a plain 403: no redirect, and nothing changed.
        assert response.status_code == 403, (persona, endpoint_name, response.status_code)
        assert _changes_since(seq_before) == []
        broker.assert_not_called()


# --- what the allowed-for-everyone lists show ----------------------------------


@pytest.mark.parametrize("persona", ["outsider", "non_member_reviewer"])
def test_people_outside_a_dataset_do_not_see_it_listed(world, db, persona):
    client = _client_for(persona)

    page = client.get(reverse("home"))
    api = client.get("/api/datasets/")

    assert page.status_code == 200
    assert b"Tumours" not in page.content
    assert world.dataset_id not in [d["id"] for d in api.json()]


def test_the_non_member_reviewer_sees_only_their_own_dataset(world, db):
    api = _client_for("non_member_reviewer").get("/api/datasets/")

    assert [d["slug"] for d in api.json()] == ["other"]


def test_the_auditor_sees_every_dataset_listed(world, db):
    api = _client_for("auditor").get("/api/datasets/")

    assert sorted(d["slug"] for d in api.json()) == ["other", "tumours"]


def test_a_denied_reviewer_leaves_the_item_and_the_promotion_untouched(world, db):
    client = _client_for("non_member_reviewer")

    review = client.post(
        reverse("annotations:review_submit", args=[world.dataset_id, world.open_item_id]),
        {"label": "malignant", "shown_prediction": world.open_item_prediction_id},
    )
    decide = client.post(
        reverse("governance:promotion_decide", args=[world.pending_promotion_id]),
        {"decision": "approve", "password": PASSWORD},
    )

    assert (review.status_code, decide.status_code) == (403, 403)
    assert Item.objects.get(pk=world.open_item_id).queue_state == Item.QueueState.OPEN
    assert PromotionRequest.objects.get(pk=world.pending_promotion_id).status == PromotionRequest.Status.PENDING


def test_the_auditor_cannot_change_anything_even_with_a_correct_password(world, db):
    client = _client_for("auditor")
    seq_before = _last_seq()

    responses = [
        client.post(
            reverse("governance:promotion_decide", args=[world.pending_promotion_id]),
            {"decision": "approve", "password": PASSWORD},
        ),
        client.post(
            f"/api/promotion-requests/{world.pending_promotion_id}/decision/",
            {"decision": "approve", "password": PASSWORD},
            content_type="application/json",
        ),
        client.post(reverse("models_app:policy", args=[world.dataset_id]), {"new_gold_labels": "3"}),
        client.post(reverse("annotations:import", args=[world.dataset_id]), {}),
    ]

    assert [r.status_code for r in responses] == [403, 403, 403, 403]
    assert _changes_since(seq_before) == []
    assert RetrainingPolicy.objects.get(dataset_id=world.dataset_id).new_gold_labels == 5


# --- ids that do not exist must not be probeable --------------------------------

MISSING = 987654321
ROLE_GATED_MISSING = {
    "promotion_detail": ("get", f"/governance/promotions/{MISSING}/"),
    "promotion_decide": ("post", f"/governance/promotions/{MISSING}/decide/"),
    "promotion_submit": ("post", f"/governance/promotions/{MISSING}/submit/"),
    "promotion_withdraw": ("post", f"/governance/promotions/{MISSING}/withdraw/"),
    "run_detail": ("get", f"/models/runs/{MISSING}/"),
    "item_history": ("get", f"/governance/audit/items/{MISSING}/"),
    "lineage_review": ("get", f"/governance/lineage/review/{MISSING}/"),
    "api_training_run_detail": ("get", f"/api/training-runs/{MISSING}/"),
    "api_training_run_cancel": ("post", f"/api/training-runs/{MISSING}/cancel/"),
    "api_shadow_change": ("post", f"/api/model-versions/{MISSING}/shadow/"),
    "api_shadow_report": ("get", f"/api/model-versions/{MISSING}/shadow-report/"),
    "api_promotion_request_create": ("post", f"/api/model-versions/{MISSING}/promotion-requests/"),
    "api_promotion_decision": ("post", f"/api/promotion-requests/{MISSING}/decision/"),
    "api_promotion_detail": ("get", f"/api/promotion-requests/{MISSING}/"),
    "api_promotion_submit": ("post", f"/api/promotion-requests/{MISSING}/submit/"),
    "api_promotion_withdraw": ("post", f"/api/promotion-requests/{MISSING}/withdraw/"),
    "api_rollback_request_create": ("post", f"/api/datasets/{MISSING}/rollback-requests/"),
    "api_lineage": ("get", f"/api/lineage/review/{MISSING}/"),
    "api_envelope": ("get", f"/api/datasets/{MISSING}/change-envelope/"),
    "api_envelope_sign": ("post", f"/api/change-envelope-versions/{MISSING}/sign/"),
    "api_envelope_approve": ("post", f"/api/change-envelope-versions/{MISSING}/approve/"),
    "api_promotion_list": ("get", f"/api/datasets/{MISSING}/promotion-requests/"),
    "api_promotion_gates": ("get", f"/api/datasets/{MISSING}/promotion-gates/"),
    "api_promotion_edit": ("post", f"/api/promotion-requests/{MISSING}/edit/"),
    "api_model_card": ("get", f"/api/model-versions/{MISSING}/model-card/"),
    "api_datasheet": ("get", f"/api/snapshots/{MISSING}/datasheet/"),
    "api_model_card_narrative": ("post", f"/api/model-versions/{MISSING}/model-card/narrative/"),
    "api_datasheet_narrative": ("post", f"/api/snapshots/{MISSING}/datasheet/narrative/"),
    "api_narrative_sign": ("post", f"/api/narratives/{MISSING}/sign/"),
    "api_item_history": ("get", f"/api/items/{MISSING}/history/"),
    "api_lineage_export": ("get", f"/api/lineage/item/{MISSING}/export/"),
    "api_audit_checkpoint": ("get", f"/api/audit/checkpoints/{MISSING}/"),
    "api_audit_checkpoint_document": ("get", f"/api/audit/checkpoints/{MISSING}/document/"),
    "audit_verify_run": ("get", f"/governance/audit/verify/{MISSING}/"),
    "api_audit_verification_run": ("get", f"/api/audit/verification-runs/{MISSING}/"),
}


@pytest.mark.parametrize("name", list(ROLE_GATED_MISSING))
@pytest.mark.parametrize("persona", ["outsider", "non_member_reviewer"])
def test_without_the_role_a_missing_id_is_a_403_like_an_existing_one(world, db, persona, name):
    method, url = ROLE_GATED_MISSING[name]
    client = _client_for(persona)

    response = client.get(url) if method == "get" else client.post(url, {}, content_type="application/json")

    # A 404 here would tell someone with no access which ids exist.
    assert response.status_code == 403


@pytest.mark.parametrize(
    "url",
    [
        f"/governance/promotions/{MISSING}/",
        f"/models/runs/{MISSING}/",
        f"/governance/audit/items/{MISSING}/",
        f"/governance/lineage/gold-label/{MISSING}/",
        f"/api/training-runs/{MISSING}/",
        f"/api/datasets/{MISSING}/promotion-requests/",
        f"/api/model-versions/{MISSING}/model-card/",
        f"/api/items/{MISSING}/history/",
        f"/api/lineage/item/{MISSING}/export/",
        f"/api/audit/checkpoints/{MISSING}/document/",
        f"/governance/audit/verify/{MISSING}/",
        f"/api/audit/verification-runs/{MISSING}/",
    ],
)
def test_the_auditor_gets_a_404_for_a_missing_id(world, db, url):
    assert _client_for("auditor").get(url).status_code == 404


@pytest.mark.parametrize(
    "existing, missing",
    [
        ("/datasets/{dataset_id}/", f"/datasets/{MISSING}/"),
        ("/datasets/{dataset_id}/review/", f"/datasets/{MISSING}/review/"),
        ("/api/datasets/{dataset_id}/next-item/", f"/api/datasets/{MISSING}/next-item/"),
    ],
)
def test_a_member_of_another_dataset_cannot_tell_a_missing_id_from_a_forbidden_one(world, db, existing, missing):
    """A reviewer of dataset B gets the same answer for A's ids as for ids that exist nowhere."""
    client = _client_for("non_member_reviewer")

    forbidden = client.get(existing.format(dataset_id=world.dataset_id))
    absent = client.get(missing)

    assert forbidden.status_code == absent.status_code == 403
    assert _without_csrf_tokens(forbidden.content) == _without_csrf_tokens(absent.content)


def _without_csrf_tokens(page: bytes) -> bytes:
    # Every page carries a fresh (masked) CSRF token, for htmx and the sign-out form;
    # nothing else may differ.
    page = re.sub(rb'name="csrfmiddlewaretoken" value="[^"]+"', b"", page)
    return re.sub(rb'"X-CSRFToken": "[^"]+"', b"", page)


def test_a_reviewer_gets_the_same_answer_for_an_item_elsewhere_and_a_missing_item(world, db):
    client = _client_for("non_member_reviewer")
    body = {"label": "malignant", "shown_prediction_id": None}

    forbidden = client.post(f"/api/items/{world.open_item_id}/reviews/", body, content_type="application/json")
    absent = client.post(f"/api/items/{MISSING}/reviews/", body, content_type="application/json")

    assert forbidden.status_code == absent.status_code == 403
    assert forbidden.json() == absent.json()
