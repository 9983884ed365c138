"""Governance's public door: the only governance module annotations and models_app may import.

- `audit_record(...)`: append a state change to the hash-chained audit trail,
  inside the caller's transaction.
- `data_access_record(...)` (and `data_accesses_record` for a page of items) with a
  `ReadPurpose`: log that a user was shown an
  item's data (the read log, kept off the chain).

The import-linter contract in `.importlinter` holds this: the other apps reach
governance through this module and nothing else.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from governance.audit_chain import chain_hash, event_fields, to_json_value
from governance.models import AuditChainHead, AuditEvent, DataAccess
from workflow_site.request_id import current_request_id


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


# Why an item's data was shown (review card, item history, API).
ReadPurpose = DataAccess.Purpose


def data_access_record(*, user: AbstractBaseUser, item: Any, purpose: ReadPurpose) -> None:
    """Log that `user` was shown `item`'s data (21 CFR Part 11 / EU AI Act: who read what)."""
    DataAccess.objects.create(
        user=user, item_id=item.pk, dataset_id=item.dataset_id, purpose=purpose, request_id=current_request_id()
    )


def data_accesses_record(*, user: AbstractBaseUser, items: list[Any], purpose: ReadPurpose) -> None:
    """Log that `user` was shown the data of each of `items` (a list page): one bulk insert."""
    request_id = current_request_id()
    DataAccess.objects.bulk_create(
        [
            DataAccess(user=user, item_id=item.pk, dataset_id=item.dataset_id, purpose=purpose, request_id=request_id)
            for item in items
        ]
    )
