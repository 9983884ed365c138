"""Support for test_every_change_is_audited: the Django admin's write paths, generated from its registry.

Each registered ModelAdmin is tried for add, change, delete and each of its
changelist actions as the site admin (`refused` where the ModelAdmin does not
allow one: it must then answer 403); its other pages, and every other method
(the admin answers PUT, PATCH and DELETE as a GET), are probed as reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any

from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.test import Client, RequestFactory
from django.urls import get_resolver

from annotations.models import DatasetMembership
from governance.credentials import api_token_create
from tests.conftest import PASSWORD
from tests.governance.test_roles import World
from tests.governance.write_paths import Request, Write, concrete_url, url_patterns, write_methods

# --- the Django admin, generated from its registry ------------------------------------------------


def _site_admin_request() -> Any:
    request = RequestFactory().get("/admin/")
    request.user = User(username="siteadmin", is_superuser=True, is_staff=True, is_active=True)
    return request


def _admin_object(label: str, world: World) -> Any:
    """An object of each registered model for the admin to change or delete (made here, rolled back after)."""
    from axes.models import AccessAttempt, AccessAttemptExpiration, AccessFailureLog, AccessLog
    from django.utils import timezone

    from annotations.models import Dataset

    seen = {"user_agent": "pytest", "ip_address": "10.0.0.9", "username": "reviewer", "path_info": "/login/"}
    if label == "auth.user":
        return User.objects.create_user("leaver", password=PASSWORD)
    if label == "auth.group":
        return Group.objects.create(name="statisticians")
    if label == "annotations.dataset":
        return Dataset.objects.create(name="Empty", slug="empty")
    if label == "annotations.datasetmembership":
        return DatasetMembership.objects.get(dataset_id=world.dataset_id, user__username="reviewer")
    if label == "governance.apitoken":
        return api_token_create(user=User.objects.get(username="reviewer"), name="laptop", days=30)[0]
    if label == "axes.accessattempt":
        # A lockout (failures at the limit) that has expired, so that the cleanup action has one to remove.
        attempt = AccessAttempt.objects.create(**seen, get_data="", post_data="", failures_since_start=5)
        long_ago = timezone.now() - timedelta(days=1)
        AccessAttempt.objects.filter(pk=attempt.pk).update(attempt_time=long_ago)  # auto_now_add otherwise
        AccessAttemptExpiration.objects.create(access_attempt=attempt, expires_at=long_ago)
        return attempt
    if label == "axes.accesslog":
        return AccessLog.objects.create(**seen)
    if label == "axes.accessfailurelog":
        return AccessFailureLog.objects.create(**seen, locked_out=True)
    raise AssertionError(f"No object for the admin of {label}: add one to _admin_object.")


ADMIN_ADD = {
    "auth.user": {
        "username": "newbie",
        "usable_password": "true",
        "password1": "a-long-passphrase-7",
        "password2": "a-long-passphrase-7",
    },
    "auth.group": {"name": "statisticians"},
    "annotations.dataset": {"name": "Lungs", "slug": "lungs"},
    "annotations.datasetmembership": {},  # filled in with ids by _admin_add_data
}
ADMIN_CHANGE = {
    "auth.user": {"first_name": "Changed"},
    "auth.group": {"name": "statisticians-2"},
    "annotations.dataset": {"description": "Changed in the admin"},
    "annotations.datasetmembership": {},  # moved to the other dataset by _admin_change_data
}


def _admin_add_data(label: str, world: World, form: dict) -> dict:
    if label == "annotations.datasetmembership":
        return {**form, "dataset": world.other_dataset_id, "user": User.objects.get(username="reviewer").pk}
    return {**form, **ADMIN_ADD[label]}


def _admin_change_data(label: str, world: World, form: dict) -> dict:
    if label == "annotations.datasetmembership":
        return {**form, "dataset": world.other_dataset_id}
    return {**form, **ADMIN_CHANGE[label]}


class _FormFields(HTMLParser):
    """The values a browser would post from the admin's main form, as rendered."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, list[str]] = {}
        self._in_form = False
        self._select: str | None = None
        self._textarea: str | None = None

    def _add(self, name: str | None, value: str) -> None:
        if name:
            self.data.setdefault(name, []).append(value)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("id", "").endswith("_form"):
            self._in_form = True
        if not self._in_form:
            return
        if tag == "input" and a.get("type", "text") not in ("submit", "button", "file"):
            if a.get("type") not in ("checkbox", "radio") or "checked" in a:
                self._add(a.get("name"), a.get("value", "on" if a.get("type") == "checkbox" else ""))
        elif tag == "select":
            self._select = a.get("name")
        elif tag == "option" and self._select and "selected" in a:
            self._add(self._select, a.get("value", ""))
        elif tag == "textarea":
            self._textarea = a.get("name")
            self.data[self._textarea] = [""]

    def handle_data(self, text: str) -> None:
        if self._textarea:
            self.data[self._textarea][0] += text

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def _admin_form(client: Client, url: str) -> dict:
    page = client.get(url)
    assert page.status_code == 200, (url, page.status_code)
    parser = _FormFields()
    parser.feed(page.content.decode())
    # A textarea's first newline is not part of its value (HTML).
    return {
        k: [v.removeprefix("\n") for v in vs] if len(vs) > 1 else vs[0].removeprefix("\n")
        for k, vs in parser.data.items()
    }


@dataclass(frozen=True)
class AdminWrite:
    """A write to one registered ModelAdmin, as the site admin: `refused` when the ModelAdmin does not allow it."""

    label: str
    kind: str  # add | change | delete | action:<name> | password
    refused: bool


def admin_writes(no_write: dict[str, str]) -> dict[tuple[str, str, str], AdminWrite | Write]:
    request = _site_admin_request()
    writes: dict[tuple[str, str, str], AdminWrite | Write] = {}
    probe = Write("siteadmin", (200, 302, 403, 404, 405), lambda w, c: c["url"], changes=False)
    for model, model_admin in admin.site._registry.items():
        label, base = model._meta.label_lower, f"admin/{model._meta.app_label}/{model._meta.model_name}/"
        writes[(f"{base}add/", "POST", "add")] = AdminWrite(label, "add", not model_admin.has_add_permission(request))
        writes[(f"{base}<path:object_id>/change/", "POST", "change")] = AdminWrite(
            label, "change", not model_admin.has_change_permission(request)
        )
        writes[(f"{base}<path:object_id>/delete/", "POST", "delete")] = AdminWrite(
            label, "delete", not model_admin.has_delete_permission(request)
        )
        actions = list(model_admin.get_actions(request)) or ["none"]
        for name in actions:
            writes[(base, "POST", f"action {name}")] = AdminWrite(label, f"action:{name}", False)
        if label == "auth.user":
            writes[(f"{base}<id>/password/", "POST", "password")] = AdminWrite(label, "password", False)
        # The history page and the bare object URL (a redirect to change/) only read.
        writes[(f"{base}<path:object_id>/history/", "POST", "read")] = AdminWrite(label, "history", False)
        writes[(f"{base}<path:object_id>/", "POST", "read")] = AdminWrite(label, "bare", False)
    # The admin site's own pages (index, login, app lists, jsi18n, the catch-all...) only read;
    # signing out ends the session and is audited.
    writes[("admin/logout/", "POST", "sign out")] = Write("siteadmin", (200, 302), lambda w, c: "/admin/logout/")
    for route, view in url_patterns(get_resolver()):
        if route.startswith("admin/") and route not in no_write and write_methods(view):
            if not any(key[0] == route for key in writes):
                writes[(route, "POST", "read")] = probe
    # Django's admin views branch on POST and answer every other method as a GET.
    for route, _method, _ in list(writes):
        for method in ("PUT", "PATCH", "DELETE"):
            writes[(route, method, "read")] = probe
    return writes


def admin_request(case: AdminWrite, route: str, world: World, client: Client) -> Request:
    obj = None if case.kind == "add" else _admin_object(case.label, world)
    url = concrete_url(route, world, obj)
    if case.refused:
        return Request("siteadmin", url, {}, "form", (403,), changes=False)
    if case.kind == "add":
        return Request(
            "siteadmin", url, _admin_add_data(case.label, world, _admin_form(client, url)), "form", (302,), True
        )
    if case.kind == "change":
        form = _admin_form(client, url)
        # Axes' records are read-only fields: saving them changes nothing, and must not need an event.
        editable = case.label in ADMIN_CHANGE
        data = _admin_change_data(case.label, world, form) if editable else form
        return Request("siteadmin", url, data, "form", (302,), editable)
    if case.kind == "delete":
        return Request("siteadmin", url, {"post": "yes"}, "form", (302,), True)
    if case.kind == "password":
        secret = "a-long-passphrase-8"
        data = {"usable_password": "true", "password1": secret, "password2": secret}
        return Request("siteadmin", url, data, "form", (302,), True)
    if case.kind.startswith("action:"):
        name = case.kind.removeprefix("action:")
        if name == "none":
            return Request("siteadmin", url, {}, "form", (200,), False)
        return Request(
            "siteadmin", url, {"action": name, "_selected_action": [obj.pk], "post": "yes"}, "form", (302,), True
        )
    return Request("siteadmin", url, {}, "form", (200, 302), False)  # history, the bare object URL
