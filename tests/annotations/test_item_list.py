"""The item list (annotations/item_search.py, the items page and the items API): filters, sorts, keyset pages, roles."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from unittest import mock

import pytest
from django.urls import reverse

from annotations import item_search
from annotations.item_search import SORTS, ItemFilters, ItemSearchInvalid, items_search_for_user
from annotations.models import Dataset, GoldLabel, ImportBatch, Item, LabelClass, Review
from governance.models import DataAccess
from tests.helpers import login, make_user
from workflow_site.access import Role

STATES = ["open", "open", "done", "holdout", "adjudicate", "done"]
# Repeated values, so ties are broken by id; None, so the no-value range is walked after the others.
CONFIDENCES = [0.5, 0.9, None, 0.5, 0.61, 0.72, 0.5, None, 0.99, 0.61]
START = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)


@dataclass
class World:
    dataset: Dataset
    items: list[Item]
    malignant: LabelClass
    benign: LabelClass


@pytest.fixture
def world(dataset, reviewer, reviewer2, adjudicator, model_admin) -> World:
    """36 items in every state, some without a prediction or an observation time; gold labels on the done
    and holdout ones; reviewer answers every third item, reviewer2 every fourth (audit slice, some flagged),
    one review a day; the adjudicator decided item 8."""
    malignant = LabelClass.objects.get(dataset=dataset, name="malignant")
    benign = LabelClass.objects.get(dataset=dataset, name="benign")
    batch = ImportBatch.objects.create(
        dataset=dataset,
        uploaded_by=model_admin,
        file_name="t.csv",
        file_sha256="0" * 64,
        file_size=1,
        status="imported",
    )
    items = []
    for i in range(36):
        confidence = CONFIDENCES[i % len(CONFIDENCES)]
        items.append(
            Item.objects.create(
                dataset=dataset,
                batch=batch,
                external_id=f"x{i}",
                values={"radius": i},
                source_file="t.csv",
                source_row=i + 2,
                content_hash="0" * 64,
                queue_state=STATES[i % len(STATES)],
                observed_at=None if i % 7 == 3 else START + dt.timedelta(days=i % 5),
                predicted_label=None if confidence is None else (malignant if i % 2 else benign),
                predicted_confidence=confidence,
            )
        )
    for i, item in enumerate(items):
        if item.queue_state in ("done", "holdout"):
            label = benign if i % 3 else malignant
            GoldLabel.objects.create(item=item, dataset=dataset, label=label, origin="review", updated_at=START)
    day = 0

    def review(item: Item, user, **fields) -> None:  # type: ignore[no-untyped-def]
        nonlocal day
        day += 1
        fields.setdefault("decision", "accept")
        fields.setdefault("label", benign)
        fields.setdefault("selection_strategy", "least_confidence")
        with mock.patch("django.utils.timezone.now", return_value=START + dt.timedelta(days=day)):
            Review.objects.create(item=item, reviewer=user, guideline_version="1", **fields)

    for i, item in enumerate(items):
        if i % 3 == 0:
            review(item, reviewer, flagged=i == 9)
        if i % 4 == 0:
            review(item, reviewer2, selection_strategy="audit_slice", flagged=i % 8 == 0)
    review(items[8], adjudicator, decision="adjudicate", selection_strategy="adjudication")
    return World(dataset=dataset, items=items, malignant=malignant, benign=benign)


def _all(user, world: World, filters: ItemFilters | None = None, sort: str = "id") -> list[int]:  # type: ignore[no-untyped-def]
    page = items_search_for_user(
        user=user, dataset_id=world.dataset.pk, filters=filters or ItemFilters(), sort=sort, limit=500
    )
    assert page.next_after is None
    return [item.pk for item in page.items]


def _reviews(**conditions) -> set[int]:  # type: ignore[no-untyped-def]
    return set(Review.objects.filter(**conditions).values_list("item_id", flat=True))


def _expected(world: World, keep) -> list[int]:  # type: ignore[no-untyped-def]
    return [item.pk for item in world.items if keep(item)]


def test_each_filter_lists_exactly_the_matching_items(world, model_admin, reviewer, reviewer2):
    w, days = world, lambda n: (START + dt.timedelta(days=n)).date()
    gold = {g.item_id: g.label_id for g in GoldLabel.objects.all()}
    cases = {
        "state": (ItemFilters(state="holdout"), lambda i: i.queue_state == "holdout"),
        "gold label": (ItemFilters(gold_label="malignant"), lambda i: gold.get(i.pk) == w.malignant.pk),
        "predicted label": (ItemFilters(predicted_label="benign"), lambda i: i.predicted_label_id == w.benign.pk),
        "confidence range": (
            ItemFilters(min_confidence=0.5, max_confidence=0.61),
            lambda i: i.predicted_confidence is not None and 0.5 <= i.predicted_confidence <= 0.61,
        ),
        "strategy": (ItemFilters(strategy="audit_slice"), lambda i: i.pk in _reviews(selection_strategy="audit_slice")),
        "reviewer": (ItemFilters(reviewer_id=reviewer2.pk), lambda i: i.pk in _reviews(reviewer=reviewer2)),
        "disagreement": (
            ItemFilters(disagreement=True),
            lambda i: i.queue_state == "adjudicate" or i.pk in _reviews(decision="adjudicate"),
        ),
        "flagged": (ItemFilters(flagged=True), lambda i: i.pk in _reviews(flagged=True)),
        "observed dates": (
            ItemFilters(observed_from=days(1), observed_to=days(2)),
            lambda i: i.observed_at is not None and days(1) <= i.observed_at.date() <= days(2),
        ),
        "reviewed dates": (
            ItemFilters(reviewed_from=days(3), reviewed_to=days(6)),
            lambda i: i.pk in _reviews(created_at__date__range=(days(3), days(6))),
        ),
        "one review is all of them": (
            ItemFilters(reviewer_id=reviewer.pk, flagged=True),
            lambda i: i.pk in _reviews(reviewer=reviewer, flagged=True),
        ),
        "item and review filters together": (
            ItemFilters(state="done", strategy="audit_slice"),
            lambda i: i.queue_state == "done" and i.pk in _reviews(selection_strategy="audit_slice"),
        ),
    }
    for name, (filters, keep) in cases.items():
        expected = _expected(world, keep)
        assert expected, f"{name}: the fixture should have some"
        assert _all(model_admin, world, filters) == expected, name
    assert _all(model_admin, world, ItemFilters(strategy="label_issue")) == []


def _sort_key(sort: str):  # type: ignore[no-untyped-def]
    """The documented order: by the value, ties by id, the items without a value last (by id), either way."""
    field, descending = SORTS[sort]
    sign = -1 if descending else 1

    def key(item: Item):  # type: ignore[no-untyped-def]
        if field is None:
            return (0, 0, sign * item.pk)
        value = getattr(item, field)
        if value is None:
            return (1, 0, sign * item.pk)
        number = value.timestamp() if isinstance(value, dt.datetime) else value
        return (0, sign * number, sign * item.pk)

    return key


@pytest.mark.parametrize("sort", list(SORTS))
def test_each_sort_orders_by_its_value_with_the_items_without_one_last(world, auditor, sort):
    expected = [item.pk for item in sorted(world.items, key=_sort_key(sort))]
    assert _all(auditor, world, sort=sort) == expected


@pytest.mark.parametrize("sort", list(SORTS))
@pytest.mark.parametrize("limit", [1, 4, 7])
def test_pages_by_key_forward_and_back_have_no_gaps_or_repeats(world, model_admin, sort, limit):
    filters = ItemFilters(state="open") if limit == 4 else ItemFilters()
    full = _all(model_admin, world, filters, sort)

    def page(**cursor):  # type: ignore[no-untyped-def]
        return items_search_for_user(
            user=model_admin, dataset_id=world.dataset.pk, filters=filters, sort=sort, limit=limit, **cursor
        )

    pages, current = [], page()
    assert not current.paged and current.previous_before is None
    while True:
        pages.append([item.pk for item in current.items])
        if current.next_after is None:
            break
        current = page(after=current.next_after)
        assert current.paged
    assert [pk for p in pages for pk in p] == full
    # Back again from the last page by `before`: the same pages, in reverse.
    back = [pages[-1]]
    while current.previous_before is not None:
        current = page(before=current.previous_before)
        back.append([item.pk for item in current.items])
    assert back == pages[::-1]


@pytest.mark.parametrize(
    ("few", "far"),
    [(0, 10**9), (20_000, 10**9), (0, -1)],
    ids=["walked by id", "all read from the observed index", "sorted by the database"],
)
@pytest.mark.parametrize("sort", ["id", "-id"])
def test_an_observed_range_pages_by_id_alike_whether_it_is_read_by_its_index_or_walked(
    world, model_admin, monkeypatch, few, far, sort
):
    # Few items in the range: their ids are read from the observed index and the page picked from them;
    # more, far along the walk: the database sorts the range's ids; more and near: the walk of the id
    # index, as before. All three must page the same way.
    monkeypatch.setattr(item_search, "FEW_OBSERVED", few)
    monkeypatch.setattr(item_search, "FAR_IN_IDS", far)
    days = lambda n: (START + dt.timedelta(days=n)).date()  # noqa: E731
    filters = ItemFilters(observed_from=days(1), observed_to=days(3), state="open")
    expected = [
        item.pk
        for item in world.items
        if item.queue_state == "open" and item.observed_at and days(1) <= item.observed_at.date() <= days(3)
    ]
    expected.sort(reverse=sort == "-id")

    def page(**cursor):  # type: ignore[no-untyped-def]
        return items_search_for_user(
            user=model_admin, dataset_id=world.dataset.pk, filters=filters, sort=sort, limit=2, **cursor
        )

    pages, current = [], page()
    while True:
        pages.append([item.pk for item in current.items])
        if current.next_after is None:
            break
        current = page(after=current.next_after)
    assert [pk for p in pages for pk in p] == expected and len(pages) > 1
    back = [pages[-1]]
    while current.previous_before is not None:
        current = page(before=current.previous_before)
        back.append([item.pk for item in current.items])
    assert back == pages[::-1]


@pytest.mark.parametrize(
    ("few", "far", "queries"),
    [(0, 10**9, 3), (20_000, 10**9, 3), (0, -1, 4)],
    ids=["walked by id", "all read from the observed index", "sorted by the database"],
)
def test_an_observed_range_in_id_order_takes_a_fixed_number_of_queries(
    world, model_admin, monkeypatch, django_assert_num_queries, few, far, queries
):
    # The user's roles, the dataset and its labels, then: the range measured; the dataset's first id (to
    # judge how far the walk would go; not when the range is small); the page's ids sorted (not when
    # walked); the page. Not one more: a queryset's truth value once read a whole page of items here.
    monkeypatch.setattr(item_search, "FEW_OBSERVED", few)
    monkeypatch.setattr(item_search, "FAR_IN_IDS", far)
    filters = ItemFilters(observed_from=(START + dt.timedelta(days=1)).date())
    with django_assert_num_queries(3 + queries):
        page = items_search_for_user(user=model_admin, dataset_id=world.dataset.pk, filters=filters, limit=2)
    assert len(page.items) == 2


def test_a_cursor_from_another_sort_or_a_made_up_one_is_refused_by_name(world, model_admin):
    made_up = [("confidence", "12"), ("id", "0.5_12"), ("observed", "yesterday_3"), ("confidence", "nan_1")]
    made_up += [("id", "²"), ("id", "9" * 20)]  # a digit to str.isdigit() but not to int(); beyond the id column
    for sort, cursor in made_up:
        with pytest.raises(ItemSearchInvalid) as refused:
            items_search_for_user(
                user=model_admin, dataset_id=world.dataset.pk, filters=ItemFilters(), sort=sort, after=cursor
            )
        assert "after" in refused.value.errors


def test_reviewers_see_only_the_items_they_answered(world, reviewer, reviewer2):
    assert _all(reviewer, world) == sorted(_reviews(reviewer=reviewer))
    # A filter about reviews is about their own reviews: reviewer2's audit-slice answers are not theirs.
    assert _all(reviewer, world, ItemFilters(strategy="audit_slice")) == []
    assert _all(reviewer, world, ItemFilters(reviewer_id=reviewer.pk)) == sorted(_reviews(reviewer=reviewer))
    with pytest.raises(ItemSearchInvalid) as refused:  # a bad value (as the page's form says), named
        _all(reviewer, world, ItemFilters(reviewer_id=reviewer2.pk))
    assert "reviewer" in refused.value.errors


def test_adjudicators_and_auditors_see_every_item(world, adjudicator, auditor):
    every = sorted(item.pk for item in world.items)
    assert _all(adjudicator, world) == every
    assert _all(auditor, world) == every


def test_outsiders_and_reviewers_of_other_datasets_are_refused(world, outsider, non_member_reviewer):
    url = reverse("annotations:item_list", args=[world.dataset.pk])
    assert login(outsider).get(url).status_code == 403
    assert login(non_member_reviewer).get(url).status_code == 403
    api = f"/api/datasets/{world.dataset.pk}/items/"
    assert login(outsider).get(api).status_code == 403
    assert login(non_member_reviewer).get(api).status_code == 403
    # The role comes before the parameters: a bad one tells an outsider nothing either.
    assert login(outsider).get(api, {"sort": "price"}).status_code == 403
    assert not DataAccess.objects.exists()


def test_the_page_lists_filters_and_logs_what_it_showed(world, auditor):
    client = login(auditor)
    url = reverse("annotations:item_list", args=[world.dataset.pk])
    response = client.get(url, {"state": "holdout", "sort": "-confidence"})
    assert response.status_code == 200
    holdout = [item for item in world.items if item.queue_state == "holdout"]
    body = response.content.decode()
    for item in holdout:
        assert reverse("governance:item_history", args=[item.pk]) in body
    assert "<caption" in body and 'scope="col"' in body and 'aria-sort="descending"' in body
    assert "style=" not in body and "<script>" not in body
    logged = DataAccess.objects.filter(user=auditor, purpose="item_list")
    assert sorted(logged.values_list("item_id", flat=True)) == sorted(item.pk for item in holdout)


def test_the_page_walks_pages_by_its_links(world, model_admin):
    client = login(model_admin)
    url = reverse("annotations:item_list", args=[world.dataset.pk])
    first = client.get(url, {"sort": "confidence", "limit": 25})
    assert first.context["page"].next_after
    assert 'rel="next"' in first.content.decode() and 'rel="prev"' not in first.content.decode()
    second = client.get(url, {"sort": "confidence", "limit": 25, "after": first.context["page"].next_after})
    assert 'rel="prev"' in second.content.decode() and "First page" in second.content.decode()
    shown = [i.pk for i in first.context["page"].items] + [i.pk for i in second.context["page"].items]
    assert shown == _all(model_admin, world, sort="confidence")


def test_the_page_for_htmx_is_the_results_alone(world, model_admin):
    response = login(model_admin).get(
        reverse("annotations:item_list", args=[world.dataset.pk]), {"state": "done"}, HTTP_HX_REQUEST="true"
    )
    body = response.content.decode()
    assert response.status_code == 200 and 'id="item-results"' in body and "<form" not in body


def test_an_empty_result_says_so(world, model_admin):
    response = login(model_admin).get(
        reverse("annotations:item_list", args=[world.dataset.pk]), {"strategy": "label_issue"}
    )
    assert response.status_code == 200
    assert "No items match these filters" in response.content.decode()


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"min_confidence": "2"}, "Confidence from"),
        ({"min_confidence": "0.8", "max_confidence": "0.2"}, "Confidence to"),
        ({"gold_label": "nonsense"}, "Gold label"),
        ({"state": "lost"}, "State"),
        ({"observed_from": "2025-03-09", "observed_to": "2025-03-01"}, "Observed to"),
        ({"reviewed_from": "March"}, "Reviewed from"),
        ({"sort": "confidence", "after": "garbage"}, "Page after"),
        ({"sort": "price"}, "Sort by"),
        ({"limit": "100000"}, "Rows"),
    ],
)
def test_a_bad_parameter_is_a_400_naming_the_field_and_lists_nothing(world, model_admin, params, named):
    response = login(model_admin).get(reverse("annotations:item_list", args=[world.dataset.pk]), params)
    assert response.status_code == 400
    assert any(error.startswith(named) for error in response.context["errors"]), response.context["errors"]
    assert response.context["page"] is None
    assert not DataAccess.objects.exists()


def test_the_page_takes_the_same_queries_whatever_the_page_size(world, model_admin, django_assert_num_queries):
    client = login(model_admin)
    url = reverse("annotations:item_list", args=[world.dataset.pk])
    client.get(url)  # the session and the user's groups, as on any later request
    counts = []
    for limit in (25, 50, 100):
        with django_assert_num_queries(7) as captured:
            response = client.get(url, {"limit": limit, "state": "done", "sort": "-id"})
        counts.append(len(captured))
        assert response.status_code == 200
    assert len(set(counts)) == 1


def test_the_api_filters_sorts_and_pages_through_the_same_selector(world, model_admin, reviewer2):
    client = login(model_admin)
    api = f"/api/datasets/{world.dataset.pk}/items/"
    seen, after = [], None
    while True:
        params = {"sort": "-observed", "reviewer": reviewer2.pk, "limit": 3, **({"after": after} if after else {})}
        page = client.get(api, params).json()
        seen += [item["id"] for item in page["items"]]
        after = page["next_after"]
        if after is None:
            break
    assert seen == _all(model_admin, world, ItemFilters(reviewer_id=reviewer2.pk), "-observed")
    by_id = client.get(api, {"limit": 5}).json()
    assert isinstance(by_id["next_after"], int)  # as before sorts existed
    assert DataAccess.objects.filter(user=model_admin, purpose="api").count() == len(seen) + 5


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"sort": "price"}, "sort"),
        ({"sort": "confidence", "after": "x"}, "after"),
        ({"gold_label": "nonsense"}, "gold_label"),
        ({"min_confidence": "0.9", "max_confidence": "0.1"}, "max_confidence"),
        ({"after": "1", "before": "2"}, "before"),
        ({"strategy": "vibes"}, "strategy"),
    ],
)
def test_the_api_names_a_bad_parameter(world, model_admin, params, named):
    response = login(model_admin).get(f"/api/datasets/{world.dataset.pk}/items/", params)
    assert response.status_code == 400
    assert named in response.json()


def test_the_api_lists_a_reviewers_own_answers_as_the_page_does(world, adjudicator, reviewer, reviewer2):
    api = f"/api/datasets/{world.dataset.pk}/items/"
    assert login(adjudicator).get(api).status_code == 200
    client = login(reviewer)
    mine = sorted(_reviews(reviewer=reviewer))
    page = client.get(reverse("annotations:item_list", args=[world.dataset.pk]), {"limit": 200})
    listed = client.get(api, {"limit": 500}).json()
    assert [item["id"] for item in listed["items"]] == [row.pk for row in page.context["page"].items] == mine
    assert client.get(api, {"reviewer": reviewer.pk}).json()["items"] == listed["items"]
    # Asking for someone else's answers is refused by name, as the page's form refuses it, and lists nothing.
    logged = DataAccess.objects.count()
    widened = client.get(api, {"reviewer": reviewer2.pk})
    assert widened.status_code == 400 and "reviewer" in widened.json()
    on_the_page = client.get(reverse("annotations:item_list", args=[world.dataset.pk]), {"reviewer": reviewer2.pk})
    assert on_the_page.status_code == 400 and on_the_page.context["errors"][0].startswith("Reviewer")
    assert DataAccess.objects.count() == logged


def test_the_api_rows_say_what_the_page_rows_say(world, model_admin, reviewer):
    Item.objects.filter(pk__in=[w.pk for w in world.items[::5]]).update(answers_count=2)
    columns = ("queue_state", "gold_label", "gold_origin", "answers_count", "last_reviewed_at")
    for user in (model_admin, reviewer):  # a reviewer's "last reviewed" is their own last answer
        client = login(user)
        rows = client.get(reverse("annotations:item_list", args=[world.dataset.pk]), {"limit": 200})
        expected = {row.pk: {name: getattr(row, name) for name in columns} for row in rows.context["page"].items}
        api = client.get(f"/api/datasets/{world.dataset.pk}/items/", {"limit": 500}).json()["items"]
        for item in api:
            item["last_reviewed_at"] = item["last_reviewed_at"] and dt.datetime.fromisoformat(item["last_reviewed_at"])
        assert {item["id"]: {name: item[name] for name in columns} for item in api} == expected
    assert {e["gold_origin"] for e in expected.values()} == {"review", None}
    assert {e["answers_count"] for e in expected.values()} == {0, 2}
    first = next(item for item in api if item["id"] == world.items[0].pk)
    assert first["last_reviewed_at"] == START + dt.timedelta(days=1)  # their own answer, not reviewer2's a day later


def test_the_api_takes_the_same_queries_whatever_the_page_size(world, model_admin, django_assert_num_queries):
    client = login(model_admin)
    api = f"/api/datasets/{world.dataset.pk}/items/"
    client.get(api)  # the session and the user's groups, as on any later request
    for limit in (5, 10, 20):  # within the items with a confidence: walking on into the others is one more
        # Session, user with roles, dataset, its labels, the page (gold label and last review in it), read log.
        with django_assert_num_queries(6):
            response = client.get(api, {"limit": limit, "sort": "-confidence"})
        assert len(response.json()["items"]) == limit


def test_a_reviewer_of_two_datasets_sees_only_this_ones_items(world, reviewer):
    other = Dataset.objects.create(name="Other", slug="other")
    make_user("someone", Role.REVIEWER, dataset=other)
    assert set(_all(reviewer, world)) <= {item.pk for item in world.items}
