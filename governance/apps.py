from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "governance"

    def ready(self) -> None:
        # contrib.auth and governance must not know each other: auth's signals
        # are the seam where logins, logouts and failed logins reach the audit trail.
        from governance import auth_audit

        auth_audit.connect()
