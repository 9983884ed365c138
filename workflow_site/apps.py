from django.apps import AppConfig


class WorkflowSiteConfig(AppConfig):
    name = "workflow_site"
    verbose_name = "Loupe site"

    def ready(self) -> None:
        from workflow_site import checks  # noqa: F401  (registers the system checks)
