"""Support for test_every_change_is_audited: the URLconf's write paths, the requests, the fingerprint.

`write_paths()` walks the URLconf (`get_resolver()`, recursively) and reads, for
each pattern, the writing methods its view accepts: from a function view's
`require_http_methods` family of decorators (seen through `login_required` and
any other `functools.wraps` decorator), or from a class-based or DRF view's
handlers. A function view with no such decorator accepts every method.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from governance.models import AuditEvent
from tests.governance.test_roles import World

WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")

# Tables left out of the fingerprint, each for a reason. Everything else (the apps', auth's,
# axes') is compared row by row: axes' sign-in records too, since a site admin deleting a
# lockout unlocks an account.
BOOKKEEPING_TABLES = {
    # The trail itself: what the test counts, not what it checks.
    "governance_auditevent": "the audit trail: counted, not fingerprinted",
    "governance_auditchainhead": "the audit trail's head, moved by every audit_record",
    # Written on reads by design, off the chain (DESIGN: "Viewing an item's data is logged too").
    "governance_dataaccess": "the read log, kept off the chain",
    # The signed-in session and its flash messages are the request's, not the app's state.
    "django_session": "sessions and flash messages",
    # Django writes its own admin log next to every admin change, which the audited
    # ModelAdmins record on the chain anyway.
    "django_admin_log": "the admin's own change log, a shadow of the audited change",
}

# --- the URLconf ---------------------------------------------------------------------------------


def url_patterns(resolver: URLResolver, prefix: str = "") -> Iterator[tuple[str, Callable]]:
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            yield from url_patterns(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry.callback


def _declared_methods(view: Callable) -> set[str] | None:
    """The methods a function view's `require_http_methods` (or require_POST/GET/safe) lets through, or None."""
    current: Any = view
    while current is not None:
        code, cells = getattr(current, "__code__", None), getattr(current, "__closure__", None) or ()
        if code is not None and "request_method_list" in code.co_freevars:
            return {m.upper() for m in cells[code.co_freevars.index("request_method_list")].cell_contents}
        current = getattr(current, "__wrapped__", None)
    return None


def write_methods(view: Callable) -> tuple[str, ...]:
    cls = getattr(view, "cls", None) or getattr(view, "view_class", None)
    if cls is not None:
        return tuple(m for m in WRITE_METHODS if m.lower() in cls.http_method_names and hasattr(cls, m.lower()))
    declared = _declared_methods(view)
    return tuple(m for m in WRITE_METHODS if declared is None or m in declared)


def write_paths() -> list[tuple[str, str]]:
    """Every (route, method) in the URLconf that may write, in URLconf order."""
    seen: dict[tuple[str, str], None] = {}
    for route, view in url_patterns(get_resolver()):
        for method in write_methods(view):
            seen[(route, method)] = None
    return list(seen)


@dataclass(frozen=True)
class Write:
    """A request that succeeds (`ok`) as `persona` and, when `changes`, must change the database."""

    persona: str
    ok: tuple[int, ...]
    url: Callable[[World, dict], str]
    data: Callable[[World, dict], Any] = field(default=lambda w, c: {})
    setup: Callable[[World], dict] = field(default=lambda w: {})
    body: str = "form"  # form | json | multipart
    changes: bool = True


@dataclass(frozen=True)
class Request:
    persona: str
    url: str
    data: Any
    body: str
    ok: tuple[int, ...]
    changes: bool


def concrete_url(route: str, world: World, obj: Any = None) -> str:
    """The route with its converters filled from the world (admin object ids from `obj`)."""
    route = re.sub(r"\^\(\?P<app_label>[^)]*\)/\$", "auth/", route)
    route = route.replace("(?P<url>.*)$", "no-such-page/")
    values = {
        "dataset_id": world.dataset_id,
        "batch_id": world.batch_id,
        "item_id": world.open_item_id,
        "run_id": world.run_id,
        "model_version_id": world.unrequested_version_id,
        "subject_id": world.unrequested_version_id,  # a narrative's model version (a datasheet's case gives its URL)
        "pk": world.pending_promotion_id,
        "review_id": 1,  # the cases that post to a review make one and give its URL
        "object_id": obj.pk if obj is not None else 1,
        "id": obj.pk if obj is not None else 1,
        "content_type_id": 1,
    }
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(values[m.group(1)]), route)


# --- the fingerprint -------------------------------------------------------------------------------


def fingerprint() -> dict[str, str]:
    """A digest of every row of every table but the bookkeeping ones, per table."""
    digests = {}
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            if table in BOOKKEEPING_TABLES:
                continue
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            rows = sorted(repr(row) for row in cursor.fetchall())
            digests[table] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
    return digests


def last_seq() -> int:
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


def send(client: Client, method: str, url: str, data: Any, body: str) -> Any:
    if body == "json":
        return client.generic(method, url, json.dumps(data), content_type="application/json")
    if method == "POST":
        return client.post(url, data)  # form or multipart: the test client encodes files as multipart
    return client.generic(method, url, "")


# --- the change envelope's write paths (governance/envelope_views.py) -------------------------------------------

ENVELOPE_CLAUSES = {"algorithms": {"logistic_regression": {}}, "label_sources": "any"}
ENVELOPE_DRAFT_FORM = {
    "algorithms": ["logistic_regression"],
    "algorithms.logistic_regression.C.max": "100",
    "label_sources": "any",
    "change_summary": "logistic regression, C up to 100",
}


def envelope_draft(world: World, *, signed: bool) -> dict:
    """An envelope version of the world's dataset drafted by admin2 (and signed by them when `signed`): admin1
    signs or approves it in the case. Its id is the case's `envelope_version_id`."""
    from django.contrib.auth.models import User

    from annotations.models import Dataset
    from governance.envelope_services import envelope_version_draft, envelope_version_sign
    from tests.conftest import PASSWORD

    author = User.objects.get(username="admin1" if not signed else "admin2")
    version = envelope_version_draft(
        dataset=Dataset.objects.get(pk=world.dataset_id), user=author, clauses=ENVELOPE_CLAUSES, change_summary="x"
    )
    if signed:
        envelope_version_sign(version=version, user=author, password=PASSWORD)
    return {"envelope_version_id": version.pk}
