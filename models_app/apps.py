from django.apps import AppConfig


class ModelsAppConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "models_app"
    verbose_name = "Models"

    def ready(self) -> None:
        # annotations must not know models_app: a new gold label reaches the
        # retraining policy, and an import the champion, through these signals,
        # which annotations sends after its transaction commits.
        from annotations.signals import gold_labels_changed, items_imported
        from models_app import receivers

        gold_labels_changed.connect(receivers.on_gold_labels_changed, dispatch_uid="loupe_retraining_policy")
        items_imported.connect(receivers.on_items_imported, dispatch_uid="loupe_predict_imported")
