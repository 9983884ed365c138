"""Governance writes. `audit_record` is the one function every app calls."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from governance.audit_chain import chain_hash, event_fields, to_json_value
from governance.models import AuditChainHead, AuditEvent
from governance.request_context import current_request_id


def audit_record(
    *,
    actor: AbstractBaseUser | None,
    action: str,
    obj: Any = None,
    object_type: str = "",
    object_id: str | int = "",
    dataset_id: int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str = "",
    actor_username: str = "",
) -> AuditEvent:
    """Append one event to the chain, inside the caller's transaction.

    Precondition: the caller holds a transaction (the event must commit or roll
    back with the change it records), so this refuses to run in autocommit.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record must run inside the transaction of the change it records.")
    if obj is not None:
        object_type = object_type or obj._meta.model_name
        object_id = object_id or obj.pk
    # Lock the head row: concurrent writers queue here, so seq has no gaps or forks.
    head, _ = AuditChainHead.objects.select_for_update().get_or_create(singleton=True)
    event = AuditEvent(
        seq=head.seq + 1,
        created_at=timezone.now(),
        actor=actor if actor is not None and actor.is_authenticated else None,
        actor_username=(actor.get_username() if actor is not None and actor.is_authenticated else actor_username),
        action=action,
        object_type=object_type,
        object_id=str(object_id) if object_id != "" else "",
        dataset_id=dataset_id,
        before=to_json_value(before),
        after=to_json_value(after),
        reason=reason,
        request_id=current_request_id(),
        prev_hash=head.hash,
    )
    # Round-trip the timestamp as the database will store it (microseconds, UTC).
    event.hash = chain_hash(event.prev_hash, event_fields(event))
    event.save()
    head.seq = event.seq
    head.hash = event.hash
    head.save(update_fields=["seq", "hash"])
    return event


def data_access_record(*, user: AbstractBaseUser, item: Any, purpose: str) -> None:
    """Log that `user` was shown `item`'s data (21 CFR Part 11 / EU AI Act: who read what)."""
    from governance.models import DataAccess

    DataAccess.objects.create(
        user=user, item_id=item.pk, dataset_id=item.dataset_id, purpose=purpose, request_id=current_request_id()
    )
