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
"""

from __future__ import annotations

from django.db.models import BigIntegerField, Exists, OuterRef, Q
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast

from governance.models import AuditEvent
from governance.retention import APPLIED_ACTION, KEPT_ACTIONS

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
