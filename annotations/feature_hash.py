"""The feature hash: sha256 of an item's feature values alone, the key of the leakage checks at import.

Not the id, the label or the time: a holdout row re-imported under a new id (or
with another label, or observed "later") has the same feature hash, so it cannot
slip into the review pool and become a trainable gold label (issue 9, point 6).

Canonical form: the JSON array of the values in the schema's feature order
(Feature.position), each written as json.dumps writes the typed value stored
in Item.values (float.__repr__ for floats, digits for integers, true/false,
ASCII-escaped strings), no spaces: `[5.1,3,true,"left"]`. The column order
of the file and its format (CSV, JSON Lines, Parquet) do not enter it, since
every format is typed by the schema before it is hashed. The import computes
it column-wise (annotations/import_staging.py::encode_values); this function
is the same thing for one row, for the data migration and for tests.

Pure Python with no model imports, so a migration can use it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any


def _typed(value: Any, dtype: str) -> Any:
    # What the import stores for each type; a value read back from PostgreSQL's jsonb can come back as
    # an int where a float was written (1e16 is stored as 10000000000000000), so floats are re-typed.
    if value is None:
        return None
    if dtype == "float":
        return float(value)
    if dtype == "integer":
        return int(value)
    return value


def feature_hash_of(values: Mapping[str, Any], features: Sequence[tuple[str, str]]) -> str:
    """The feature hash of one row: `values` as stored in Item.values, `features` as (name, dtype) by position."""
    payload = json.dumps([_typed(values.get(name), dtype) for name, dtype in features], separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()
