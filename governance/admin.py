"""Site admins manage users, roles (groups), permissions and API tokens here; every change is audited.

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

from django.contrib import admin
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.hashers import is_password_usable
from django.contrib.auth.models import Group, Permission, User
from django.db import router, transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext_lazy
from django.views.decorators.debug import sensitive_post_parameters
from rest_framework.authtoken.admin import TokenAdmin
from rest_framework.authtoken.models import Token, TokenProxy

from governance.audit import audit_record

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


admin.site.unregister(TokenProxy)


@admin.register(TokenProxy)
class AuditedTokenAdmin(AuditedAuthAdmin, TokenAdmin):
    """DRF's token admin, audited. The key is a credential: it is never recorded; a token is
    named by its user, as DRF's admin names it (TokenProxy's pk is the user id)."""

    object_type = "token"
    label_keys = ("user",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # A token is a credential: it is issued to one user and never moved to another.
        return ("user",) if obj is not None else ()

    def audit_state(self, obj: Any) -> State:
        row = Token.objects.filter(key=obj.key).values("user_id", "user__username").get()
        return {"user": row["user__username"], "user_id": row["user_id"]}

    def audit_object_id(self, obj: Any) -> str:
        return str(obj.user_id)

    def audit_slot(self, obj: Any) -> tuple[str, Any]:
        # The proxy's pk follows the user, which the change form may reassign; the key does not.
        return (self.opts.label, obj.key)
