"""The audit trail's compact diff (issue 6, defect 14): only what changed, short values, nothing out of reach."""

from __future__ import annotations

from governance.audit_display import INLINE_CHANGES, audit_diff, shown_value


def _lines(before, after, **kwargs) -> list[str]:  # type: ignore[no-untyped-def]
    diff = audit_diff(before, after, **kwargs)
    out = []
    for change in [*diff.shown, *diff.more]:
        if change.kind == "changed":
            out.append(f"{change.key}: {change.old.full} → {change.new.full}")
        elif change.kind == "added":
            out.append(f"{change.key}: {change.new.full}")
        else:
            out.append(f"{change.key}: was {change.old.full}")
    return out


def test_only_changed_keys_are_shown_as_old_arrow_new():
    before = {"enabled": True, "new_gold_labels": 20, "name": "policy"}
    after = {"enabled": True, "new_gold_labels": 50, "name": "policy"}

    assert _lines(before, after) == ["new_gold_labels: 20 → 50"]


def test_a_created_record_shows_its_values_and_a_deleted_one_what_it_was():
    assert _lines(None, {"status": "queued", "trigger": "manual"}) == ["status: queued", "trigger: manual"]
    assert _lines({"name": "radius"}, None) == ["name: was radius"]


def test_true_changes_come_before_additions_and_removals():
    before = {"gold_label": "malignant", "status": "open"}
    after = {"decision": "correct", "status": "done", "label": "benign"}

    assert _lines(before, after) == [
        "status: open → done",
        "decision: correct",
        "label: benign",
        "gold_label: was malignant",
    ]


def test_nested_objects_are_diffed_by_dotted_key():
    before = {"signature": {"meaning": "approval", "printed_name": "Ada Admin"}}
    after = {"signature": {"meaning": "rejection", "printed_name": "Ada Admin"}}

    assert _lines(before, after) == ["signature.meaning: approval → rejection"]


def test_a_type_change_counts_as_a_change_even_when_python_calls_the_values_equal():
    assert _lines({"enabled": 1}, {"enabled": True}) == ["enabled: 1 → true"]
    assert _lines({"v": 1}, {"v": 1}) == []


def test_values_read_as_written_none_as_null_an_empty_string_visibly_empty():
    assert _lines(None, {"a": None, "b": "", "c": [1, 2], "d": 0.5, "e": False}) == [
        "a: null",
        'b: ""',
        "c: [1, 2]",
        "d: 0.5",
        "e: false",
    ]


def test_only_the_first_few_changes_are_inline_the_rest_are_kept_not_dropped():
    after = {f"k{n}": n for n in range(10)}

    diff = audit_diff(None, after)

    assert [c.key for c in diff.shown] == [f"k{n}" for n in range(INLINE_CHANGES)]
    assert [c.key for c in diff.more] == [f"k{n}" for n in range(INLINE_CHANGES, 10)]
    assert len(diff) == 10


def test_a_long_value_is_cut_for_the_row_and_kept_whole():
    sha = "ab" * 32

    value = shown_value(sha, limit=16)

    assert value.truncated
    assert value.short == sha[:15] + "…" and len(value.short) == 16
    assert value.full == sha


def test_a_multi_line_value_is_one_line_in_the_row():
    value = shown_value("first line\nsecond line", limit=80)

    assert value.short == "first line second line"
    assert value.full == "first line\nsecond line"
    assert value.truncated


def test_no_change_at_all_is_an_empty_diff():
    assert not audit_diff(None, None)
    assert not audit_diff({"a": 1}, {"a": 1})


def test_a_bare_value_in_an_old_record_is_still_shown():
    assert _lines(None, "something") == ["value: something"]


def test_record_ids_come_after_the_words_a_reader_scans_for():
    after = {"review_id": 30, "decision": "accept", "label": "benign", "shown_prediction_id": 4, "guideline": "v2"}

    assert [c.key for c in audit_diff(None, after).shown] == ["decision", "label", "guideline"]
