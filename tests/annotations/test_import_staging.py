"""The staged rows' JSON and content hash, built column-wise with pyarrow, are json.dumps's to the byte.

A different float spelling would change every content hash (item_content_hash,
which anyone can recompute from a stored row), so the tokens are compared with
Python's own on values of every magnitude, where pyarrow's spelling differs
(exponents, whole numbers, tiny and huge numbers) included.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta, timezone

from annotations.import_staging import float_tokens, staged_rows, values_json
from annotations.import_validation import CheckedChunk, FeatureRule
from annotations.imports import item_content_hash


def _awkward_floats(seed: int) -> list[float]:
    rng = random.Random(seed)
    edges = [0.0, -0.0, 1e-4, 9.999999999999999e-05, 1e16, 9999999999999998.0, 1e15, 5e-324, 1e10, 12345678901.0]
    edges += [-1e-4, 0.1, 1 / 3, 1.7976931348623157e308, 123456789012.5, 2.0**53, 100.0, -7.0]
    spread = [rng.uniform(-1, 1) * 10.0 ** rng.randint(-320, 307) for _ in range(5_000)]
    whole = [float(rng.randint(-(10**17), 10**17)) for _ in range(2_000)]
    rounded = [round(rng.random() * 1000, rng.randint(0, 6)) for _ in range(2_000)]
    return edges + spread + whole + rounded


def test_float_tokens_are_pythons_repr_at_every_magnitude():
    for seed in range(5):
        values = _awkward_floats(seed)
        assert float_tokens(values).to_pylist() == list(map(float.__repr__, values)), f"seed {seed}"


def test_values_json_and_content_hash_are_what_json_dumps_gives():
    features = [
        FeatureRule("weight", "float"),
        FeatureRule("count", "integer"),
        FeatureRule("ok", "boolean"),
        FeatureRule("colour", "category", ("red", "blue")),
        FeatureRule("note", "text"),
        FeatureRule('"quoted" %s', "float"),
    ]
    rows = 300
    rng = random.Random(7)
    columns = {
        "weight": _awkward_floats(1)[:rows],
        "count": [rng.randint(-(2**70), 2**70) if i % 50 == 0 else rng.randint(-5, 5) for i in range(rows)],
        "ok": [i % 3 == 0 for i in range(rows)],
        "colour": ["red" if i % 2 else "blue" for i in range(rows)],
        "note": [f'line {i}\nwith "quotes", é and \u202e{i}' for i in range(rows)],
        '"quoted" %s': [float(i) for i in range(rows)],
    }
    moments = [None if i % 4 else datetime(2024, 5, 1, 8, 30, tzinfo=timezone(timedelta(hours=2))) for i in range(rows)]
    chunk = CheckedChunk(
        lines=list(range(2, rows + 2)),
        ids=[f"id-{i}-é" for i in range(rows)],
        columns=columns,
        labels=["yes" if i % 3 else None for i in range(rows)],
        observed=moments,
    )

    written = values_json(chunk, features)
    staged = staged_rows(
        chunk,
        batch_id=1,
        features=features,
        label_ids={"yes": 10},
        holdout=False,
        line_in_source=lambda line: line,
        prepare_moment=lambda moment: moment,
    )

    for i in range(rows):
        values = {name: column[i] for name, column in columns.items()}
        assert written[i] == json.dumps(values, sort_keys=True, separators=(",", ":"))
        assert staged[i][3] == written[i]
        label = chunk.labels[i]
        assert staged[i][7] == item_content_hash(
            external_id=chunk.ids[i], values=values, observed_at=moments[i], label=label
        )
        assert staged[i][5:7] == ([10, "done"] if label else [None, "open"])
    assert moments[0] is not None and moments[0].astimezone(UTC).hour == 6
