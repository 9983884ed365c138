from django.urls import path

from annotations import (
    adjudication_views,
    agreement_views,
    guideline_views,
    override_rate_views,
    retention_views,
    reviewer_report_views,
    views,
    workbench_views,
)
from annotations.item_list_views import item_list

app_name = "annotations"

urlpatterns = [
    path("<int:dataset_id>/", views.dataset_detail, name="dataset_detail"),
    path("<int:dataset_id>/import/", views.import_upload, name="import"),
    path("<int:dataset_id>/imports/<int:batch_id>/", views.batch_detail, name="batch_detail"),
    path("<int:dataset_id>/imports/<int:batch_id>/report.csv", views.batch_report_download, name="batch_report"),
    path("<int:dataset_id>/guideline/", guideline_views.guideline_page, name="guideline"),
    path("<int:dataset_id>/agreement/", agreement_views.agreement_page, name="agreement"),
    path("<int:dataset_id>/reviewers/", reviewer_report_views.reviewer_report_page, name="reviewer_report"),
    path("<int:dataset_id>/override-rates/", override_rate_views.override_rates_page, name="override_rates"),
    path("<int:dataset_id>/review/", views.review_page, name="review"),
    path("<int:dataset_id>/review/<int:item_id>/", views.review_submit_view, name="review_submit"),
    path("<int:dataset_id>/reviews/<int:review_id>/revise/", views.review_revise_view, name="review_revise"),
    path("<int:dataset_id>/adjudicate/", adjudication_views.adjudication_page, name="adjudicate"),
    path(
        "<int:dataset_id>/adjudicate/<int:item_id>/",
        adjudication_views.adjudication_submit_view,
        name="adjudication_submit",
    ),
    path("<int:dataset_id>/queue-settings/", workbench_views.workbench_settings_page, name="workbench_settings"),
    path("<int:dataset_id>/model-output/", workbench_views.model_output_switch_view, name="model_output_switch"),
    path("<int:dataset_id>/retention/", retention_views.retention_period_view, name="retention_period"),
    path("<int:dataset_id>/legal-hold/", retention_views.legal_hold_view, name="legal_hold"),
    path("<int:dataset_id>/items/", item_list, name="item_list"),
]
