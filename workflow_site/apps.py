from django.apps import AppConfig
from django.db.backends.signals import connection_created


class WorkflowSiteConfig(AppConfig):
    name = "workflow_site"
    verbose_name = "Loupe site"

    def ready(self) -> None:
        from workflow_site import checks  # noqa: F401  (registers the system checks)
        from workflow_site.sqlite_guards import register_append_only_function

        # Every SQLite connection gets the function its append-only triggers consult.
        connection_created.connect(register_append_only_function, dispatch_uid="loupe_sqlite_append_only")
