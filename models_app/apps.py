from django.apps import AppConfig


class ModelsAppConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "models_app"
    verbose_name = "Models"

    def ready(self) -> None:
        # annotations must not know models_app: a new gold label reaches the
        # retraining policy through this signal, inside the review's transaction.
        from annotations.signals import gold_labels_changed, items_imported
        from models_app import receivers

        gold_labels_changed.connect(receivers.check_retraining_policy, dispatch_uid="loupe_retraining_policy")
        items_imported.connect(receivers.predict_imported_items, dispatch_uid="loupe_predict_imported")
