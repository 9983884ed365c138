from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "governance"

    def ready(self) -> None:
        # contrib.auth, django-axes and governance must not know each other: their
        # signals are the seam where logins, logouts and lockouts reach the audit trail.
        from governance import auth_audit

        auth_audit.connect()
        # Signed record types register how to recompute their hash (governance/signing.py, signature_verify).
        from governance import envelope_services, narratives, promotions  # noqa: F401
