from django.contrib.auth.decorators import login_required
from django.urls import path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from annotations import (
    agreement_apis,
    dataset_apis,
    guideline_apis,
    override_rate_apis,
    oversight_apis,
    progress_apis,
    retention_apis,
    reviewer_report_apis,
    workbench_apis,
)
from annotations import apis as annotation_apis
from governance import apis as governance_apis
from governance import (
    audit_export_apis,
    audit_integrity_apis,
    document_apis,
    envelope_apis,
    item_history_apis,
    lineage_apis,
    promotion_apis,
    verification_run_apis,
)
from models_app import apis as model_apis
from models_app import export_apis, label_issue_apis, shadow_apis

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="api_docs"), name="api_root"),
    # Swagger UI, for people signed in: the split view loads its start-up script from
    # this same URL (?script=) and everything else from static/, so a strict CSP holds.
    path(
        "docs/",
        login_required(SpectacularSwaggerSplitView.as_view(url_name="api_schema", template_name="api/swagger_ui.html")),
        name="api_docs",
    ),
    path("schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path("datasets/", dataset_apis.DatasetsApi.as_view(), name="api_datasets"),
    path("datasets/<int:dataset_id>/items/", dataset_apis.ItemListApi.as_view(), name="api_items"),
    path("datasets/<int:dataset_id>/guideline/", guideline_apis.GuidelineApi.as_view(), name="api_guideline"),
    path(
        "datasets/<int:dataset_id>/guideline/preview/",
        guideline_apis.GuidelinePreviewApi.as_view(),
        name="api_guideline_preview",
    ),
    path("datasets/<int:dataset_id>/agreement/", agreement_apis.AgreementApi.as_view(), name="api_agreement"),
    path(
        "datasets/<int:dataset_id>/reviewer-report/",
        reviewer_report_apis.ReviewerReportApi.as_view(),
        name="api_reviewer_report",
    ),
    path(
        "datasets/<int:dataset_id>/override-rates/",
        override_rate_apis.OverrideRatesApi.as_view(),
        name="api_override_rates",
    ),
    path("datasets/<int:dataset_id>/export/", export_apis.ExportApi.as_view(), name="api_export"),
    path("datasets/<int:dataset_id>/next-item/", annotation_apis.NextItemApi.as_view(), name="api_next_item"),
    path("datasets/<int:dataset_id>/progress/", progress_apis.ProgressApi.as_view(), name="api_progress"),
    path("items/<int:item_id>/reviews/", annotation_apis.ReviewCreateApi.as_view(), name="api_review_create"),
    path("reviews/<int:review_id>/revise/", workbench_apis.ReviewReviseApi.as_view(), name="api_review_revise"),
    path(
        "datasets/<int:dataset_id>/model-output/",
        oversight_apis.ModelOutputApi.as_view(),
        name="api_model_output",
    ),
    path("datasets/<int:dataset_id>/retention/", retention_apis.RetentionApi.as_view(), name="api_retention"),
    path("datasets/<int:dataset_id>/legal-hold/", retention_apis.LegalHoldApi.as_view(), name="api_legal_hold"),
    path(
        "datasets/<int:dataset_id>/queue-settings/",
        workbench_apis.QueueSettingsApi.as_view(),
        name="api_queue_settings",
    ),
    path(
        "datasets/<int:dataset_id>/adjudication/next-item/",
        workbench_apis.AdjudicationNextApi.as_view(),
        name="api_adjudication_next",
    ),
    path(
        "items/<int:item_id>/adjudication/",
        workbench_apis.AdjudicationSubmitApi.as_view(),
        name="api_adjudication_submit",
    ),
    path("datasets/<int:dataset_id>/imports/", annotation_apis.ImportCreateApi.as_view(), name="api_import_create"),
    path(
        "datasets/<int:dataset_id>/imports/<int:batch_id>/",
        annotation_apis.ImportDetailApi.as_view(),
        name="api_import_detail",
    ),
    path("datasets/<int:dataset_id>/training-runs/", model_apis.TrainingRunCreateApi.as_view(), name="api_run_create"),
    path(
        "datasets/<int:dataset_id>/label-issues/",
        label_issue_apis.LabelIssuesReopenApi.as_view(),
        name="api_label_issues_reopen",
    ),
    path("training-runs/<int:run_id>/", model_apis.TrainingRunDetailApi.as_view(), name="api_run_detail"),
    path("training-runs/<int:run_id>/cancel/", model_apis.TrainingRunCancelApi.as_view(), name="api_run_cancel"),
    path(
        "model-versions/<int:model_version_id>/shadow/",
        shadow_apis.ShadowChangeApi.as_view(),
        name="api_shadow_change",
    ),
    path(
        "model-versions/<int:model_version_id>/shadow-report/",
        shadow_apis.ShadowReportApi.as_view(),
        name="api_shadow_report",
    ),
    path(
        "model-versions/<int:model_version_id>/promotion-requests/",
        governance_apis.PromotionRequestCreateApi.as_view(),
        name="api_promotion_create",
    ),
    path(
        "datasets/<int:dataset_id>/rollback-requests/",
        governance_apis.RollbackRequestCreateApi.as_view(),
        name="api_rollback_create",
    ),
    path(
        "promotion-requests/<int:pk>/decision/",
        governance_apis.PromotionDecisionApi.as_view(),
        name="api_promotion_decide",
    ),
    path("promotion-requests/<int:pk>/", governance_apis.PromotionDetailApi.as_view(), name="api_promotion_detail"),
    path(
        "promotion-requests/<int:pk>/submit/",
        governance_apis.PromotionSubmitApi.as_view(),
        name="api_promotion_submit",
    ),
    path(
        "promotion-requests/<int:pk>/withdraw/",
        governance_apis.PromotionWithdrawApi.as_view(),
        name="api_promotion_withdraw",
    ),
    path(
        "promotion-requests/<int:pk>/edit/",
        promotion_apis.PromotionDraftEditApi.as_view(),
        name="api_promotion_edit",
    ),
    path(
        "datasets/<int:dataset_id>/promotion-requests/",
        promotion_apis.PromotionListApi.as_view(),
        name="api_promotion_list",
    ),
    path(
        "datasets/<int:dataset_id>/promotion-gates/",
        promotion_apis.PromotionGatesApi.as_view(),
        name="api_promotion_gates",
    ),
    path("audit-events/", governance_apis.AuditEventListApi.as_view(), name="api_audit_events"),
    # The trail's integrity (governance/audit_integrity_apis.py) and the auditor's downloads.
    path("audit/integrity/", audit_integrity_apis.IntegrityStatusApi.as_view(), name="api_audit_integrity"),
    path("audit/verification/", audit_integrity_apis.AuditVerificationApi.as_view(), name="api_audit_verification"),
    # The page's "Verify": a worker walks, the client follows the run (governance/verification_run_apis.py).
    path(
        "audit/verification-runs/",
        verification_run_apis.VerificationRunCreateApi.as_view(),
        name="api_audit_verification_runs",
    ),
    path(
        "audit/verification-runs/<int:run_id>/",
        verification_run_apis.VerificationRunDetailApi.as_view(),
        name="api_audit_verification_run",
    ),
    path("audit/checkpoints/", audit_integrity_apis.CheckpointListApi.as_view(), name="api_audit_checkpoints"),
    path(
        "audit/checkpoints/<int:pk>/",
        audit_integrity_apis.CheckpointDetailApi.as_view(),
        name="api_audit_checkpoint",
    ),
    path(
        "audit/checkpoints/<int:pk>/document/",
        audit_integrity_apis.CheckpointDocumentApi.as_view(),
        name="api_audit_checkpoint_document",
    ),
    path(
        "audit/proofs/inclusion/",
        audit_integrity_apis.InclusionProofApi.as_view(),
        name="api_audit_inclusion_proof",
    ),
    path(
        "audit/proofs/consistency/",
        audit_integrity_apis.ConsistencyProofApi.as_view(),
        name="api_audit_consistency_proof",
    ),
    path("audit/proofs/verify/", audit_integrity_apis.ProofVerifyApi.as_view(), name="api_audit_proof_verify"),
    path("audit/exports/", audit_export_apis.AuditExportApi.as_view(), name="api_audit_export"),
    path("items/<int:item_id>/history/", item_history_apis.ItemHistoryApi.as_view(), name="api_item_history"),
    path("lineage/<slug:kind>/<int:pk>/", lineage_apis.LineageApi.as_view(), name="api_lineage"),
    path(
        "lineage/<slug:kind>/<int:pk>/export/",
        audit_export_apis.LineageExportApi.as_view(),
        name="api_lineage_export",
    ),
    # Model cards, datasheets and their narratives (governance/document_apis.py).
    path(
        "model-versions/<int:model_version_id>/model-card/",
        document_apis.ModelCardApi.as_view(),
        name="api_model_card",
    ),
    path("snapshots/<int:snapshot_id>/datasheet/", document_apis.DatasheetApi.as_view(), name="api_datasheet"),
    path(
        "model-versions/<int:subject_id>/model-card/narrative/",
        document_apis.ModelCardNarrativeApi.as_view(),
        name="api_model_card_narrative",
    ),
    path(
        "snapshots/<int:subject_id>/datasheet/narrative/",
        document_apis.DatasheetNarrativeApi.as_view(),
        name="api_datasheet_narrative",
    ),
    path("narratives/<int:pk>/sign/", document_apis.NarrativeSignApi.as_view(), name="api_narrative_sign"),
    path("datasets/<int:dataset_id>/change-envelope/", envelope_apis.EnvelopeApi.as_view(), name="api_envelope"),
    path(
        "change-envelope-versions/<int:pk>/sign/",
        envelope_apis.EnvelopeSignApi.as_view(),
        name="api_envelope_sign",
    ),
    path(
        "change-envelope-versions/<int:pk>/approve/",
        envelope_apis.EnvelopeApproveApi.as_view(),
        name="api_envelope_approve",
    ),
]
