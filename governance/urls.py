from django.urls import path

from governance import document_views, envelope_views, export_views, lineage_views, narrative_views, views

app_name = "governance"

urlpatterns = [
    path("datasets/<int:dataset_id>/promotions/", views.promotion_list, name="promotion_list"),
    path("datasets/<int:dataset_id>/promotions/request/", views.promotion_request_view, name="promotion_request"),
    path("datasets/<int:dataset_id>/promotions/rollback/", views.rollback_request_view, name="rollback_request"),
    path("datasets/<int:dataset_id>/promotions/gates/", views.promotion_gates_view, name="promotion_gates"),
    path("datasets/<int:dataset_id>/envelope/", envelope_views.envelope_page, name="envelope"),
    path("datasets/<int:dataset_id>/envelope/draft/", envelope_views.envelope_draft_view, name="envelope_draft"),
    path("envelope-versions/<int:pk>/sign/", envelope_views.envelope_sign_view, name="envelope_sign"),
    path("envelope-versions/<int:pk>/approve/", envelope_views.envelope_approve_view, name="envelope_approve"),
    path("promotions/<int:pk>/", views.promotion_detail, name="promotion_detail"),
    path("promotions/<int:pk>/decide/", views.promotion_decide_view, name="promotion_decide"),
    path("promotions/<int:pk>/edit/", views.promotion_edit_view, name="promotion_edit"),
    path("promotions/<int:pk>/submit/", views.promotion_submit_view, name="promotion_submit"),
    path("promotions/<int:pk>/withdraw/", views.promotion_withdraw_view, name="promotion_withdraw"),
    path("model-versions/<int:model_version_id>/card/", document_views.model_card_view, name="model_card"),
    path("snapshots/<int:snapshot_id>/datasheet/", document_views.datasheet_view, name="datasheet"),
    path(
        "model-versions/<int:subject_id>/card/narrative/",
        narrative_views.narrative_edit_view,
        {"document": "model_card"},
        name="model_card_narrative",
    ),
    path(
        "snapshots/<int:subject_id>/datasheet/narrative/",
        narrative_views.narrative_edit_view,
        {"document": "datasheet"},
        name="datasheet_narrative",
    ),
    path("narratives/<int:pk>/sign/", narrative_views.narrative_sign_view, name="narrative_sign"),
    path("audit/", views.audit_list, name="audit_list"),
    path("audit/verify/", views.audit_verify, name="audit_verify"),
    path("audit/verify/<int:run_id>/", views.audit_verify_run, name="audit_verify_run"),
    path("audit/export/<slug:kind>.<slug:fmt>", export_views.audit_export, name="audit_export"),
    path("audit/items/<int:item_id>/", views.item_history, name="item_history"),
    path("lineage/<slug:kind>/<int:pk>/", lineage_views.lineage_view, name="lineage"),
    path("lineage/<slug:kind>/<int:pk>/export.<slug:fmt>", lineage_views.lineage_export_view, name="lineage_export"),
]
