import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workflow_site.settings")
application = get_asgi_application()

from workflow_site.checks import database_checks_at_first_connection  # noqa: E402  (after Django is set up)

# The privileged-role warnings (loupe.W004, W005) at this process's first connection, not at import.
database_checks_at_first_connection()
