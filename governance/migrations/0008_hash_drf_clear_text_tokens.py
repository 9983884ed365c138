"""Move DRF's clear-text tokens (rest_framework.authtoken, no longer installed) to hashed ApiTokens.

Each old key becomes an ApiToken holding only the key's sha256, so clients that
hold one keep working, unchanged, until it expires (LOUPE_API_TOKEN_DEFAULT_DAYS
from this migration); then the clear-text rows are deleted. The old table is
left empty, not dropped: its migrations stay recorded as applied, and re-adding
the app later finds the table it expects. Fresh databases have no such table:
nothing to do.

No audit event is written here: a migration runs with historical models, and
`audit_record` needs the live ones; the deploy that runs it is the record (say
so in the change log).
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from django.conf import settings
from django.db import migrations
from django.utils import timezone

OLD_TABLE = "authtoken_token"


def hash_clear_text_tokens(apps, schema_editor) -> None:
    connection = schema_editor.connection
    if OLD_TABLE not in connection.introspection.table_names():
        return
    ApiToken = apps.get_model("governance", "ApiToken")
    quoted = connection.ops.quote_name(OLD_TABLE)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT key, user_id FROM {quoted}")  # noqa: S608 (a constant table name)
        rows = cursor.fetchall()
    expires_at = timezone.now() + timedelta(days=getattr(settings, "LOUPE_API_TOKEN_DEFAULT_DAYS", 30))
    ApiToken.objects.bulk_create(
        ApiToken(
            user_id=user_id,
            name="API token from before hashing",
            prefix=key[:6],
            digest=hashlib.sha256(key.encode()).hexdigest(),
            expires_at=expires_at,
        )
        for key, user_id in rows
    )
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {quoted}")  # noqa: S608


class Migration(migrations.Migration):
    dependencies = [("governance", "0007_password_state_and_api_tokens")]

    # Not reversible: the clear-text keys are gone, which is the point.
    operations = [migrations.RunPython(hash_clear_text_tokens, migrations.RunPython.noop, elidable=False)]
