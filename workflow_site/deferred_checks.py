"""Run a transaction's deferred foreign-key checks now, before it takes the audit chain head.

Django creates PostgreSQL foreign keys DEFERRABLE INITIALLY DEFERRED, so the
check of every row a transaction inserted runs at COMMIT. The audit event is
a transaction's last write, and from it to the commit the transaction holds
the chain head that every audited change in every dataset waits for (README,
lock order). An import that publishes 4 million items spent about 40 s of its
commit checking their foreign keys: 40 s in which no review anywhere could be
saved. `SET CONSTRAINTS ALL IMMEDIATE` runs the pending checks at once (and
checks later writes immediately), so a bulk writer calls this just before its
audit event and the head is held for the event and the commit alone.
"""

from __future__ import annotations

from django.db import connection


def deferred_checks_run_now() -> None:
    """On PostgreSQL, check every deferred constraint of this transaction now. Elsewhere, nothing."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
