"""django-axes' sign-in records in the site admin, with every deletion audited.

Axes registers its own ModelAdmins for lockouts (AccessAttempt), sign-ins
(AccessLog) and failed sign-ins (AccessFailureLog); a site admin may delete them
there. Deleting a lockout unlocks an account, and deleting a log erases sign-in
history: both are state changes a regulator asks about, and axes' admins record
neither. These subclasses write one audit event per deleted record, with the
site admin as actor, inside the deletion's transaction: the delete view (which
Django runs in a transaction), the bulk "delete selected" action and axes'
"clean up expired attempts" action (both made atomic here) alike.

The records' other fields are read-only in axes' admins, and adding is refused.
"""

from __future__ import annotations

from typing import Any, ClassVar

import axes.admin  # noqa: F401  (registers axes' admins first, so they can be replaced below)
from axes.admin import AccessAttemptAdmin, AccessFailureLogAdmin, AccessLogAdmin
from axes.conf import settings as axes_settings
from axes.helpers import get_cool_off
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.db import router, transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from governance.admin import delete_selected
from governance.audit import audit_record

_REASON = "deleted in the site admin"


class AuditedAxesAdmin(admin.ModelAdmin):
    object_type: ClassVar[str]
    # What identifies the record to someone reading the trail (no form data: it may hold a mistyped password).
    state_fields: ClassVar[tuple[str, ...]] = ("username", "ip_address", "path_info", "attempt_time")

    actions = [delete_selected]

    def log_deletions(self, request: HttpRequest, queryset: Any) -> Any:
        # Called by the delete view and the bulk action before the rows go, inside their transaction.
        for obj in queryset:
            audit_record(
                actor=request.user,
                action=f"{self.object_type}.deleted",
                object_type=self.object_type,
                object_id=obj.pk,
                before={name: getattr(obj, name) for name in self.state_fields},
                reason=_REASON,
            )
        return super().log_deletions(request, queryset)


admin.site.unregister(AccessAttempt)
admin.site.unregister(AccessLog)
admin.site.unregister(AccessFailureLog)


@admin.register(AccessAttempt)
class AuditedAccessAttemptAdmin(AuditedAxesAdmin, AccessAttemptAdmin):
    object_type = "login_lockout"
    state_fields = (*AuditedAxesAdmin.state_fields, "failures_since_start")
    actions = [delete_selected, "cleanup_expired_attempts"]

    @admin.action(permissions=["delete"], description="Clean up expired attempts")
    def cleanup_expired_attempts(self, request: HttpRequest, queryset: QuerySet[AccessAttempt]) -> None:
        """Axes' cleanup, audited: the same rows it would delete, each recorded before it goes.

        (Axes' own action also fails in the admin: it reads the sign-in time that its
        middleware sets on login requests only.)"""
        if axes_settings.AXES_USE_ATTEMPT_EXPIRATION:
            expired = AccessAttempt.objects.filter(expiration__expires_at__lte=timezone.now())
        else:
            cool_off = get_cool_off(request)
            if cool_off is None:  # lockouts never expire: nothing is "expired"
                self.message_user(request, "Lockouts do not expire here (no AXES_COOLOFF_TIME): nothing to clean.")
                return
            expired = AccessAttempt.objects.filter(attempt_time__lte=timezone.now() - cool_off)
        with transaction.atomic(using=router.db_for_write(AccessAttempt)):
            rows = list(expired.select_for_update())
            self.log_deletions(request, rows)
            AccessAttempt.objects.filter(pk__in=[row.pk for row in rows]).delete()
        self.message_user(request, f"Cleaned up {len(rows)} expired access attempts.")


@admin.register(AccessLog)
class AuditedAccessLogAdmin(AuditedAxesAdmin, AccessLogAdmin):
    object_type = "login_log"
    state_fields = (*AuditedAxesAdmin.state_fields, "logout_time")


@admin.register(AccessFailureLog)
class AuditedAccessFailureLogAdmin(AuditedAxesAdmin, AccessFailureLogAdmin):
    object_type = "login_failure"
    state_fields = (*AuditedAxesAdmin.state_fields, "locked_out")
