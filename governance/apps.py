from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "governance"

    def ready(self) -> None:
        # contrib.auth, django-axes and governance must not know each other: their
        # signals are the seam where logins, logouts and lockouts reach the audit trail.
        from governance import auth_audit

        auth_audit.connect()
        # models_app must not know governance: every registered candidate reaches the change envelope here.
        from governance.receivers import on_candidate_registered
        from models_app.signals import candidate_registered

        candidate_registered.connect(on_candidate_registered, dispatch_uid="loupe_envelope_on_register")
        # Signed record types register how to recompute their hash (governance/signing.py, signature_verify).
        from governance import envelope_services, narratives, promotions  # noqa: F401
