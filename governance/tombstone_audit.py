"""Every tombstone must be accounted for by a retention run (review finding on issue 10, point 10).

The database lets the application empty an event's payload (the one UPDATE retention needs), and the
chain still verifies after it: that is the point of hash scheme 2. So the chain alone cannot tell a
tombstone retention made from one made by someone who wanted an approval's override reason gone.
Retention records every batch in the chain (`retention.applied`: the dataset, the cutoff, the seq
range and how many events it tombstoned). A tombstone is accounted for when such a later event of
the same dataset covers its seq and its action is not one retention keeps. (A run's range holds only
events it tombstoned, or ones it keeps, or scheme-1 events the database will not let lose their
payload: so one more tombstone inside a range is one of those, and is named too.)

Runs after the chain walk (only when it met a tombstone), over rows whose headers the walk has just
verified, so the SQL reads trustworthy values: one query (the runs covering each tombstone found by
an indexed EXISTS). Names the first SHOWN problems.

A run event could itself be written by whoever holds the application's database role, so each run is
also replayed against the trail before it (`retention_run_problems`): no legal hold of its dataset in
force, a period no shorter than the dataset's period then (set by `dataset.retention_changed`, which
records the site default in force too), a cutoff no later than the run's own time minus that period,
and every event it tombstoned recorded before that cutoff. A forged run then has to forge a policy
change or a hold lift as well, in the open, in the same chain.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import BigIntegerField, Exists, OuterRef, Q
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.utils.dateparse import parse_datetime

from governance.models import AuditEvent
from governance.retention import APPLIED_ACTION, KEPT_ACTIONS

POLICY_CHANGED = "dataset.retention_changed"
HOLD_PLACED, HOLD_LIFTED = "dataset.legal_hold_placed", "dataset.legal_hold_lifted"

SHOWN = 5  # problems named at most (the first ones, by seq)


def _seq_key(name: str) -> Cast:
    return Cast(KeyTextTransform(name, "after"), BigIntegerField())


def tombstone_problems(*, up_to_seq: int) -> list[str]:
    """Tombstones among events 1..up_to_seq that no retention run accounts for (the first SHOWN, by seq)."""
    runs = AuditEvent.objects.filter(action=APPLIED_ACTION, seq__lte=up_to_seq).annotate(
        first=_seq_key("first_seq"), last=_seq_key("last_seq")
    )
    covering = runs.filter(
        dataset_id=OuterRef("dataset_id"),
        seq__gt=OuterRef("seq"),
        first__lte=OuterRef("seq"),
        last__gte=OuterRef("seq"),
    )
    tombstones = AuditEvent.objects.filter(seq__lte=up_to_seq, tombstoned_at__isnull=False)
    problems = [
        f"event #{seq} ({action}) had its payload removed, but no retention run records it"
        + (": retention never removes that action's payload" if action in KEPT_ACTIONS or dataset is None else "")
        for seq, action, dataset in tombstones.filter(
            ~Exists(covering) | Q(action__in=KEPT_ACTIONS) | Q(dataset_id__isnull=True)
        )
        .order_by("seq")
        .values_list("seq", "action", "dataset_id")[:SHOWN]
    ]
    return problems


def retention_run_problems(*, up_to_seq: int) -> list[str]:
    """Retention runs among events 1..up_to_seq that the trail before them does not justify (the first SHOWN).

    One query for the runs and the policy and hold events of their datasets (few, on the action index),
    then one per run that tombstoned events, for the first of them recorded after its cutoff.
    """
    events = (
        AuditEvent.objects.filter(
            seq__lte=up_to_seq, action__in=(APPLIED_ACTION, POLICY_CHANGED, HOLD_PLACED, HOLD_LIFTED)
        )
        .order_by("seq")
        .values_list("seq", "action", "dataset_id", "created_at", "after")
    )
    problems: list[str] = []
    period: dict[int, tuple[int | None, int]] = {}  # dataset → (days in force or None: unknown, event that set it)
    hold: dict[int, int] = {}  # dataset → seq of the hold in force
    for seq, action, dataset_id, created_at, after in events.iterator(chunk_size=2000):
        after = after if isinstance(after, dict) else {}
        if action == POLICY_CHANGED:
            days = after.get("retention_days") or after.get("site_default_days")
            period[dataset_id] = (days if isinstance(days, int) else None, seq)
        elif action == HOLD_PLACED:
            hold[dataset_id] = seq
        elif action == HOLD_LIFTED:
            hold.pop(dataset_id, None)
        else:
            problems += _run_problems(seq, dataset_id, created_at, after, hold.get(dataset_id), period.get(dataset_id))
        if len(problems) >= SHOWN:
            break
    return problems[:SHOWN]


def _run_problems(
    seq: int, dataset_id: int, created_at: datetime, after: dict[str, Any], hold: int | None, period: Any
) -> list[str]:
    run = f"retention run (event #{seq}, dataset {dataset_id})"
    if hold is not None:
        return [f"{run} removed data while the legal hold placed by event #{hold} was in force"]
    days, cutoff = after.get("retention_days"), parse_datetime(str(after.get("cutoff") or ""))
    if not isinstance(days, int) or cutoff is None:
        return [f"{run} does not record its period and cutoff"]
    out = []
    if period is not None and period[0] is not None and days < period[0]:
        out.append(f"{run} used a period of {days} days, but the dataset's was {period[0]} (event #{period[1]})")
    if cutoff > created_at - timedelta(days=days):
        out.append(f"{run} has a cutoff ({cutoff.isoformat()}) later than its own time less its {days} days")
    first, last = after.get("first_seq"), after.get("last_seq")
    if after.get("events_tombstoned") and isinstance(first, int) and isinstance(last, int):
        young = (
            AuditEvent.objects.filter(
                seq__gte=first, seq__lte=last, tombstoned_at__isnull=False, created_at__gte=cutoff
            )
            .order_by("seq")
            .values_list("seq", flat=True)
            .first()
        )
        if young is not None:
            out.append(f"{run} removed the payload of event #{young}, recorded after its cutoff")
    return out
