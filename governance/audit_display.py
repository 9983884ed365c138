"""An audit event's before/after as a person reads it: a compact diff (issue 6, defect 14).

Each event stores the state before and after a change as JSON. Printed whole,
a page of 50 events was 11,000 px of JSON in a narrow column, and what had
changed was left to the reader to find. Shown here instead:

- only what differs: a key whose value changed (`status: queued → running`), a
  key the event adds (`label: benign`), a key only the before-state has
  (`gold_label` was `malignant`); keys equal on both sides are left out;
- nested objects flattened to dotted keys (`signature.meaning`), so a change
  deep inside one is a single line rather than two JSON blobs;
- the first few changes inline (record ids such as `review_id` after the rest), the
  others counted and kept behind a disclosure;
- a long value (a sha256, a file name) cut to a short prefix, its full text kept
  for a disclosure, so nothing recorded is out of reach.

The stored record is never altered (the chain hashes it), and the API still
returns the whole before and after. Pure Python: no Django, no database.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

# How many changes a row shows before "N more"; how long a value may be before it is cut.
INLINE_CHANGES = 3
VALUE_MAX = 24

_ABSENT = object()


@dataclass(frozen=True)
class ShownValue:
    """One recorded value as text: the whole of it, and what a compact row shows."""

    full: str
    short: str

    @property
    def truncated(self) -> bool:
        return self.short != self.full


@dataclass(frozen=True)
class Change:
    key: str
    kind: Literal["changed", "added", "removed"]
    old: ShownValue | None = None
    new: ShownValue | None = None


@dataclass(frozen=True)
class AuditDiff:
    """What a row shows (`shown`), what it keeps behind "N more" (`more`)."""

    shown: list[Change] = field(default_factory=list)
    more: list[Change] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.shown)

    def __len__(self) -> int:
        return len(self.shown) + len(self.more)


def value_text(value: Any) -> str:
    """A recorded JSON value as a reader sees it: strings bare (an empty one as ""), the rest as JSON."""
    if isinstance(value, str):
        return value if value else '""'
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def shown_value(value: Any, *, limit: int = VALUE_MAX) -> ShownValue:
    full = value_text(value)
    # One line in the row: a value with line breaks is cut at the first, like a long one.
    first_line = " ".join(full.split()) if "\n" in full or "\r" in full else full
    short = first_line if len(first_line) <= limit else first_line[: limit - 1].rstrip() + "…"
    return ShownValue(full=full, short=short)


def _flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, leaf value) pairs; an empty object is a leaf, lists are leaves."""
    if isinstance(value, Mapping) and value:
        for key, inner in value.items():
            yield from _flatten(inner, f"{prefix}{key}.")
    elif prefix:
        yield prefix[:-1], value


def audit_diff(
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    *,
    inline: int = INLINE_CHANGES,
    limit: int = VALUE_MAX,
) -> AuditDiff:
    """The changes from `before` to `after`: true changes first, then additions, then removals.

    Within each kind the record's own key order is kept, except that keys naming a
    record id (`review_id`, `shown_prediction_id`) come last. A side that is not an
    object (None, or a bare value in an old record) counts as empty, except that
    a bare value is shown under the key "value".
    """
    old = dict(_flatten(_as_object(before)))
    new = dict(_flatten(_as_object(after)))
    changed, added, removed = [], [], []
    for key, new_value in new.items():
        old_value = old.get(key, _ABSENT)
        if old_value is _ABSENT:
            added.append(Change(key, "added", new=shown_value(new_value, limit=limit)))
        elif old_value != new_value or type(old_value) is not type(new_value):
            changed.append(
                Change(key, "changed", old=shown_value(old_value, limit=limit), new=shown_value(new_value, limit=limit))
            )
    for key, old_value in old.items():
        if key not in new:
            removed.append(Change(key, "removed", old=shown_value(old_value, limit=limit)))
    # Within each kind, record ids (`review_id`) after the words a reader scans for (`label`).
    changes = [c for group in (changed, added, removed) for c in sorted(group, key=_is_an_id)]
    return AuditDiff(shown=changes[:inline], more=changes[inline:])


def _is_an_id(change: Change) -> bool:
    leaf = change.key.rsplit(".", 1)[-1]
    return leaf == "id" or leaf.endswith("_id")


def _as_object(side: Any) -> Mapping[str, Any]:
    if side is None:
        return {}
    if isinstance(side, Mapping):
        return side
    return {"value": side}
