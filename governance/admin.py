"""Site admins manage users, roles (groups), permissions and API tokens here; every change is audited.

A password a site admin sets for someone else (the password form, the add-user
form) is temporary: its holder must choose their own before anything else
(governance/credentials.py). API tokens are listed without their secret (only a
hash is stored) and can be revoked, never created or edited, here: a token is
created by its owner, who alone sees it.

The admin classes hold the request, so each writes its own audit event with the
site admin as actor, inside the transaction of the change: if the append fails,
the change rolls back with it. No signal, and no request kept aside anywhere.

Where the hooks fall in Django 5.2's admin views:

- `save_model` runs before the row is written: the "before" state is read from
  the database there. The password form has no `save_model`; its view reads it.
- `log_addition` / `log_change` run after `save_related`, so the "after" state
  already holds the new groups and permissions.
- `log_deletions` runs before the delete, in the delete view and in the bulk
  "delete selected" action alike.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, ClassVar

from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.hashers import is_password_usable
from django.contrib.auth.models import Group, Permission, User
from django.db import router, transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.utils.translation import gettext_lazy
from django.views.decorators.debug import sensitive_post_parameters

from annotations.templatetags.loupe_format import reveal
from governance.audit import audit_record
from governance.credentials import api_token_revoke, password_mark_set_by_admin
from governance.models import ApiToken, PasswordState

State = dict[str, Any]

# Request attribute carrying each "before" state (and the verb to record) from the
# hook that reads it to the hook that writes the event. A plain attribute of this one
# request, so it cannot leak into another request or thread.
_PENDING = "_loupe_admin_audit_pending"
_REASON = "changed in the site admin"


@dataclass(frozen=True)
class _Password:
    """Tells whether the stored hash changed without carrying it: only a digest is kept,
    and the audit JSON encoder refuses this type, so a slip fails loudly instead of leaking."""

    usable: bool
    digest: str

    @classmethod
    def of(cls, encoded: str) -> _Password:
        return cls(
            usable=is_password_usable(encoded),
            digest=hashlib.sha256(encoded.encode()).hexdigest(),
        )

    def shown(self) -> str:
        return "set" if self.usable else "unusable"

    def shown_as_changed(self) -> str:
        return "changed" if self.usable else "unusable"


def _shown(value: Any) -> Any:
    return value.shown() if isinstance(value, _Password) else value


def _permission_names(permissions: QuerySet[Permission]) -> list[str]:
    return sorted(
        f"{app}.{codename}" for app, codename in permissions.values_list("content_type__app_label", "codename")
    )


@admin.action(permissions=["delete"], description=gettext_lazy("Delete selected %(verbose_name_plural)s"))
def delete_selected(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
    """Django's bulk delete, run in one transaction: Django calls actions in autocommit,
    and the deletions must commit or roll back with their audit events."""
    with transaction.atomic(using=router.db_for_write(modeladmin.model)):
        return django_delete_selected(modeladmin, request, queryset)


class AuditedAuthAdmin(admin.ModelAdmin):
    """Writes one audit event for every create, change and delete, in the change's transaction."""

    object_type: ClassVar[str]
    # Shown on both sides of every event, changed or not, so an event reads on its own.
    label_keys: ClassVar[tuple[str, ...]]

    def audit_state(self, obj: Any) -> State:
        """The audited fields of `obj` as the database holds them now."""
        raise NotImplementedError

    def audit_deleted_state(self, obj: Any) -> State:
        """What is lost with `obj` (by default its audited fields)."""
        return self.audit_state(obj)

    def audit_object_id(self, obj: Any) -> str:
        return str(obj.pk)

    def audit_slot(self, obj: Any) -> tuple[str, Any]:
        """Where a pending "before" state for `obj` waits on the request."""
        return (self.opts.label, obj.pk)

    def remember_before(self, request: HttpRequest, obj: Any, verb: str) -> None:
        pending = getattr(request, _PENDING, None)
        if pending is None:
            pending = {}
            setattr(request, _PENDING, pending)
        pending[self.audit_slot(obj)] = (verb, self.audit_state(obj))

    def take_before(self, request: HttpRequest, obj: Any) -> tuple[str, State]:
        try:
            return getattr(request, _PENDING, {}).pop(self.audit_slot(obj))
        except KeyError:
            # A change reached log_change by a path that read no "before" state:
            # refuse it (rolls the change back) rather than record half an event.
            raise RuntimeError(f"No before-state was taken for {self.opts.label} {obj.pk}; audit this path.") from None

    def record(self, request: HttpRequest, obj: Any, verb: str, before: State | None, after: State | None) -> None:
        audit_record(
            actor=request.user,
            action=f"{self.object_type}.{verb}",
            object_type=self.object_type,
            object_id=self.audit_object_id(obj),
            before=before,
            after=after,
            reason=_REASON,
        )

    def changes(self, before: State, after: State) -> tuple[State, State]:
        """The label keys plus every key whose value changed, on each side."""
        changed = [key for key in after if key not in self.label_keys and before.get(key) != after[key]]
        shown_before = {key: _shown(before.get(key)) for key in (*self.label_keys, *changed)}
        shown_after = {key: _shown(after[key]) for key in (*self.label_keys, *changed)}
        for key in changed:
            if isinstance(after[key], _Password):
                shown_after[key] = after[key].shown_as_changed()
        return shown_before, shown_after

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if change:
            self.remember_before(request, obj, "updated")
        super().save_model(request, obj, form, change)

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        after = {key: _shown(value) for key, value in self.audit_state(obj).items()}
        self.record(request, obj, "created", before=None, after=after)
        return super().log_addition(request, obj, message)

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        verb, before = self.take_before(request, obj)
        shown_before, shown_after = self.changes(before, self.audit_state(obj))
        self.record(request, obj, verb, before=shown_before, after=shown_after)
        return super().log_change(request, obj, message)

    def log_deletions(self, request: HttpRequest, queryset: Any) -> Any:
        for obj in queryset:
            before = {key: _shown(value) for key, value in self.audit_deleted_state(obj).items()}
            self.record(request, obj, "deleted", before=before, after=None)
        return super().log_deletions(request, queryset)


admin.site.unregister(User)


@admin.register(User)
class AuditedUserAdmin(AuditedAuthAdmin, UserAdmin):
    object_type = "user"
    label_keys = ("username",)
    actions = [delete_selected]
    list_display = (*UserAdmin.list_display, "password_status")
    readonly_fields = ("password_status",)
    fieldsets = (*UserAdmin.fieldsets, ("Password state", {"fields": ("password_status",)}))

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        # The password column reads each user's state: one join, not one query per row.
        return super().get_queryset(request).select_related("loupe_password_state__set_by")

    @admin.display(description="password")
    def password_status(self, obj: Any) -> str:
        try:
            state = obj.loupe_password_state
        except PasswordState.DoesNotExist:
            state = None
        if state is None or not state.must_change:
            return "own"
        by = state.set_by.get_username() if state.set_by else "a site admin"
        return format_html(
            "temporary: set by {} on {}, must be changed at sign-in", reveal(by), f"{state.set_at:%Y-%m-%d %H:%M}"
        )

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        # The admin typed this password: temporary, recorded before the event reads the state back.
        if is_password_usable(obj.password):
            self._mark_temporary(request, obj)
        return super().log_addition(request, obj, message)

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        verb = getattr(request, _PENDING, {}).get(self.audit_slot(obj), ("",))[0]
        if verb == "password_changed" and is_password_usable(obj.password):
            self._mark_temporary(request, obj)
        return super().log_change(request, obj, message)

    def _mark_temporary(self, request: HttpRequest, obj: Any) -> None:
        password_mark_set_by_admin(user=obj, set_by=request.user)
        if obj.pk != request.user.pk:
            self.message_user(
                request,
                f"This password is temporary: {obj.get_username()} must choose their own at their next sign-in, "
                "and cannot sign or use the API until then.",
                messages.WARNING,
            )

    def audit_state(self, obj: Any) -> State:
        row = (
            User._base_manager.filter(pk=obj.pk)
            .values("username", "is_active", "is_staff", "is_superuser", "password")
            .get()
        )
        return {
            "username": row["username"],
            "is_active": row["is_active"],
            "is_staff": row["is_staff"],
            "is_superuser": row["is_superuser"],
            "groups": sorted(Group.objects.filter(user__pk=obj.pk).values_list("name", flat=True)),
            "user_permissions": _permission_names(Permission.objects.filter(user__pk=obj.pk)),
            "password": _Password.of(row["password"]),
            "password_temporary": PasswordState.objects.filter(user_id=obj.pk, must_change=True).exists(),
        }

    @method_decorator(sensitive_post_parameters())
    def user_change_password(self, request: HttpRequest, id: str, form_url: str = "") -> HttpResponse:
        """Django runs the password form in autocommit; the new hash and its audit event must commit together."""
        if request.method != "POST":
            return super().user_change_password(request, id, form_url)
        with transaction.atomic(using=router.db_for_write(self.model)):
            user = self.get_object(request, unquote(id))
            if user is not None:  # else Django answers 404 below
                self.remember_before(request, user, "password_changed")
            return super().user_change_password(request, id, form_url)


admin.site.unregister(Group)


@admin.register(Group)
class AuditedGroupAdmin(AuditedAuthAdmin, GroupAdmin):
    object_type = "group"
    label_keys = ("name",)
    actions = [delete_selected]

    def audit_state(self, obj: Any) -> State:
        return {
            "name": Group.objects.filter(pk=obj.pk).values_list("name", flat=True).get(),
            "permissions": _permission_names(Permission.objects.filter(group__pk=obj.pk)),
        }

    def audit_deleted_state(self, obj: Any) -> State:
        # Deleting a role silently takes it from everyone who held it: name them.
        members = User._base_manager.filter(groups__pk=obj.pk).values_list("username", flat=True)
        return {**self.audit_state(obj), "members": sorted(members)}


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Every user's API tokens, read-only and without their secret (only its hash is stored, and not shown);
    a site admin may revoke them. Revocation is audited by `api_token_revoke`."""

    list_display = ("prefix_shown", "name_shown", "owner", "created_at", "expires_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at", "expires_at")
    search_fields = ("user__username", "name", "prefix")
    fields = (
        "owner",
        "name_shown",
        "prefix_shown",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
        "revoked_by",
    )
    readonly_fields = fields
    list_select_related = ("user",)
    actions = ["revoke_selected"]

    @admin.display(description="token", ordering="prefix")
    def prefix_shown(self, obj: ApiToken) -> str:
        return f"{obj.prefix}…"

    @admin.display(description="name", ordering="name")
    def name_shown(self, obj: ApiToken) -> str:
        return reveal(obj.name)

    @admin.display(description="owner", ordering="user__username")
    def owner(self, obj: ApiToken) -> str:
        return reveal(obj.user.get_username())

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # only the owner creates a token, so only the owner ever sees it

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoked tokens stay, as history; revoking is the action below

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_superuser

    @admin.action(permissions=["revoke"], description="Revoke selected API tokens")
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        revoked = 0
        for token_id in queryset.filter(revoked_at__isnull=True).values_list("pk", flat=True):
            api_token_revoke(token_id=token_id, by=request.user)
            revoked += 1
        self.message_user(request, f"{revoked} API token(s) revoked.")


# Axes' sign-in records, with their deletions audited too; imported last, as it builds on this module.
from governance import admin_axes  # noqa: E402,F401
