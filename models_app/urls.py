from django.urls import path

from models_app import export_views, label_issue_views, shadow_views, views

app_name = "models_app"

urlpatterns = [
    path("datasets/<int:dataset_id>/", views.models_overview, name="overview"),
    path("datasets/<int:dataset_id>/train/", views.training_start, name="train"),
    path("datasets/<int:dataset_id>/policy/", views.policy_update, name="policy"),
    path("datasets/<int:dataset_id>/label-issues/", label_issue_views.label_issues_reopen_view, name="label_issues"),
    path("runs/<int:run_id>/", views.run_detail, name="run_detail"),
    path("runs/<int:run_id>/cancel/", views.run_cancel, name="run_cancel"),
    path("versions/<int:model_version_id>/shadow/", shadow_views.shadow_change, name="shadow_change"),
    path("datasets/<int:dataset_id>/export/", export_views.export_page, name="export"),
]
