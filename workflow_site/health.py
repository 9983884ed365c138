"""`/health/`: is the database reachable, is the broker reachable?

Answers 200 while the database works (the web app can serve and queue work:
training requests wait in the database while the broker is down) and 503 when
it does not. Each check reports its own status and latency.
"""

from __future__ import annotations

import logging
import time

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)


def _check_database() -> dict[str, object]:
    started = time.monotonic()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:  # any failure means "not reachable"; details go to the log, not to anonymous callers
        logger.exception("Health check: database unreachable")
        return {"ok": False, "error": "unreachable (see the server log)"}
    return {"ok": True, "vendor": connection.vendor, "ms": round((time.monotonic() - started) * 1000, 1)}


def _check_broker() -> dict[str, object]:
    from workflow_site.celery import app, ensure_broker_folders

    started = time.monotonic()
    transport = app.conf.broker_url.split("://", 1)[0]
    try:
        ensure_broker_folders()
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception:
        logger.exception("Health check: broker unreachable")
        return {"ok": False, "transport": transport, "error": "unreachable (see the server log)"}
    return {"ok": True, "transport": transport, "ms": round((time.monotonic() - started) * 1000, 1)}


@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    database = _check_database()
    broker = _check_broker()
    status = "ok" if database["ok"] and broker["ok"] else ("degraded" if database["ok"] else "down")
    return JsonResponse(
        {"status": status, "database": database, "broker": broker},
        status=200 if database["ok"] else 503,
    )
