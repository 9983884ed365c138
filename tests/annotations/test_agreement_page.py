"""Agreement from the reviews (issue 8, point 3): the page and the API show agreement_metrics' figures
for each reviewer's answers in force, with a guideline-version filter, to model admins and auditors."""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from drf_spectacular.generators import SchemaGenerator

from annotations.adjudication import adjudication_submit
from annotations.agreement import BOOTSTRAP, NO_OVERLAP
from annotations.agreement_metrics import agreement_report, reference_agreement
from annotations.models import Dataset, GoldLabel, Item, LabelClass, Review
from annotations.queue import adjudication_next_item
from tests.conftest import login, make_user, synthetic_rows
from tests.helpers import other_label, review_next
from workflow_site.access import Role

pytestmark = pytest.mark.django_db


def _items(import_rows, n: int) -> list[Item]:
    """n items with gold labels from the import: even rows malignant, odd rows benign."""
    import_rows(synthetic_rows(n))
    return list(Item.objects.filter(dataset__slug="tumours").order_by("external_id"))


def _answer(item: Item, reviewer: User, label: str | None, version: str = "1") -> Review:
    """A review row as review_submit leaves it (None: a skip); created in call order."""
    return Review.objects.create(
        item=item,
        reviewer=reviewer,
        decision=Review.Decision.SKIP if label is None else Review.Decision.LABEL,
        label=None if label is None else LabelClass.objects.get(dataset_id=item.dataset_id, name=label),
        selection_strategy="test",
        guideline_version=version,
    )


def _adjudicate(item: Item, adjudicator: User, label: str) -> None:
    """What adjudication_submit leaves: an "adjudicate" review whose label becomes the gold label."""
    review = Review.objects.create(
        item=item,
        reviewer=adjudicator,
        decision=Review.Decision.ADJUDICATE,
        label=LabelClass.objects.get(dataset_id=item.dataset_id, name=label),
        reason="settled",
        selection_strategy="adjudication",
        guideline_version="1",
    )
    GoldLabel.objects.filter(item=item).update(label=review.label, origin=GoldLabel.Origin.ADJUDICATION, review=review)


def _api(user: User, dataset: Dataset, **params: str) -> dict:
    response = login(user).get(f"/api/datasets/{dataset.pk}/agreement/", params)
    assert response.status_code == 200, response.content
    return response.json()


def _page(user: User, dataset: Dataset, **params: str) -> str:
    response = login(user).get(reverse("annotations:agreement", args=[dataset.pk]), params)
    assert response.status_code == 200
    return response.content.decode()


def _figure(agreement) -> dict:  # type: ignore[no-untyped-def]
    return {
        "value": agreement.value,
        "n_items": agreement.n_items,
        "low": agreement.low,
        "high": agreement.high,
        "n_resamples": agreement.n_resamples,
        "reason": agreement.reason,
    }


M, B = "malignant", "benign"


@pytest.fixture
def three(dataset, reviewer, reviewer2) -> list[User]:
    return [reviewer, reviewer2, make_user("reviewer3", Role.REVIEWER, dataset=dataset)]


def test_the_api_and_the_page_show_agreement_metrics_figures_for_the_answers_in_force(
    dataset, import_rows, three, model_admin
):
    items = _items(import_rows, 9)
    a, b, c = three
    answers = {  # item index -> (a, b, c) answers in force; None: no answer
        0: (M, M, M),
        1: (B, B, M),
        2: (M, B, M),
        3: (B, B, B),
        4: (M, M, None),
        5: (B, M, B),
        6: (M, M, B),
        7: (B, B, B),
        8: (M, None, None),  # one answer only: in no figure between reviewers
    }
    _answer(items[0], a, B)  # later replaced by a's malignant below
    _answer(items[3], b, None)  # a skip before the answer: not a rating
    for i, row in answers.items():
        for reviewer, label in zip(three, row, strict=True):
            if label is not None:
                _answer(items[i], reviewer, label)
    _answer(items[5], c, None)  # a skip after an answer does not withdraw it

    ratings = sorted(
        (items[i].pk, reviewer.pk, label)
        for i, row in answers.items()
        for reviewer, label in zip(three, row, strict=True)
        if label is not None
    )
    gold = {item.pk: item.gold_label.label.name for item in items}
    expected = agreement_report(ratings, reference=gold, bootstrap=BOOTSTRAP)

    data = _api(model_admin, dataset)

    assert (data["answers"], data["items_rated"], data["items_overlapping"]) == (24, 9, 8)
    assert (data["superseded"], data["skips"], data["no_overlap_reason"]) == (1, 2, "")
    assert data["reviewers"] == [{"id": u.pk, "username": u.username} for u in sorted(three, key=lambda u: u.pk)]
    assert data["categories"] == [B, M]
    assert data["fleiss"] == {
        "kappa": _figure(expected.fleiss.kappa),
        "ratings_per_item": 3,
        "n_items_left_out": 1,  # item 4 has two answers, the others three
    }
    assert data["alpha"] == _figure(expected.alpha)
    assert data["pairs"] == [
        {"reviewer_a": p.rater_a, "reviewer_b": p.rater_b, "kappa": _figure(p.kappa)} for p in expected.pairs
    ]
    assert data["per_class"] == [
        {"category": k.category, "fleiss_kappa": _figure(k.fleiss_kappa), "alpha": _figure(k.alpha)}
        for k in expected.per_class
    ]
    assert data["reference"] == [
        {"reviewer": r.rater, "accuracy": _figure(r.accuracy), "kappa": _figure(r.kappa), "n_agree": r.n_agree}
        for r in expected.reference
    ]
    assert data["reference_origins"] == {"import": 9}
    assert expected.alpha.value is not None and expected.alpha.low is not None  # a real figure, with an interval

    page = _page(model_admin, dataset)
    assert f"<strong>{expected.alpha.value:.3f}</strong>" in page
    assert f"<strong>{expected.fleiss.kappa.value:.3f}</strong>" in page
    assert "over the items with 3 answers each; 1 item with another number of answers left out" in page
    for pair in expected.pairs:
        if pair.kappa.value is not None:
            assert f"<strong>{pair.kappa.value:.3f}</strong>" in page
    assert "9 imported with the data" in page
    assert NO_OVERLAP not in page


def test_a_hand_checked_cohen_kappa_between_two_reviewers(dataset, import_rows, reviewer, reviewer2, auditor):
    # 10 items: both say malignant on 4, both benign on 4, and they differ once each way.
    # p_o = 8/10, p_e = 0.5 * 0.5 + 0.5 * 0.5 = 0.5, so kappa = (0.8 - 0.5) / (1 - 0.5) = 0.6.
    items = _items(import_rows, 10)
    pairs = [(M, M)] * 4 + [(B, B)] * 4 + [(M, B), (B, M)]
    for item, (x, y) in zip(items, pairs, strict=True):
        _answer(item, reviewer, x)
        _answer(item, reviewer2, y)

    data = _api(auditor, dataset)

    (pair,) = data["pairs"]
    assert pair["kappa"]["value"] == pytest.approx(0.6, abs=1e-12)
    assert pair["kappa"]["n_items"] == 10
    assert pair["kappa"]["low"] < 0.6 < pair["kappa"]["high"]
    assert "<strong>0.600</strong>" in _page(auditor, dataset)


def test_a_later_answer_replaces_the_earlier_one_and_a_skip_is_no_answer(
    dataset, import_rows, reviewer, reviewer2, model_admin
):
    first, second = _items(import_rows, 2)
    _answer(first, reviewer, M)
    _answer(first, reviewer2, B)
    _answer(first, reviewer2, M)  # reviewer2 changes their mind: now they agree
    _answer(second, reviewer, B)
    _answer(second, reviewer2, None)  # a skip: the second item has one answer only

    data = _api(model_admin, dataset)

    assert (data["answers"], data["items_overlapping"], data["superseded"], data["skips"]) == (3, 1, 1, 1)
    (pair,) = data["pairs"]
    # Both now say malignant on the one shared item: one category only, so kappa is undefined.
    assert pair["kappa"]["value"] is None and pair["kappa"]["n_items"] == 1
    assert "only one category occurs" in pair["kappa"]["reason"]


def test_the_guideline_version_filter_keeps_the_answers_in_force_made_under_it(
    dataset, import_rows, reviewer, reviewer2, model_admin
):
    items = _items(import_rows, 4)
    _answer(items[0], reviewer, M, version="1")
    _answer(items[0], reviewer2, B, version="1")
    _answer(items[1], reviewer, M, version="2")
    _answer(items[1], reviewer2, M, version="2")
    _answer(items[2], reviewer, B, version="2")
    _answer(items[2], reviewer2, B, version="2")
    _answer(items[3], reviewer, M, version="1")
    _answer(items[3], reviewer, B, version="10")  # revised under version 10: counts there only

    all_versions = _api(model_admin, dataset)
    two = _api(model_admin, dataset, guideline_version="2")
    one = _api(model_admin, dataset, guideline_version="1")

    assert all_versions["guideline_versions"] == ["1", "2", "10"] == two["guideline_versions"]
    assert (all_versions["guideline_version"], two["guideline_version"]) == (None, "2")
    assert (all_versions["answers"], two["answers"], one["answers"]) == (7, 4, 2)
    assert two["pairs"][0]["kappa"]["value"] == pytest.approx(1.0)  # they agree on both items under version 2
    # Under version 1 they share one item and differ on it: p_o = 0 and p_e = 0, so kappa = 0.
    assert (one["pairs"][0]["kappa"]["value"], one["pairs"][0]["kappa"]["n_items"]) == (0.0, 1)
    ratings = [(items[1].pk, reviewer.pk, M), (items[1].pk, reviewer2.pk, M)]
    ratings += [(items[2].pk, reviewer.pk, B), (items[2].pk, reviewer2.pk, B)]
    expected = agreement_report(sorted(ratings), bootstrap=BOOTSTRAP)
    assert two["alpha"] == _figure(expected.alpha)

    page = _page(model_admin, dataset, guideline_version="2")
    assert '<option value="2" selected>version 2</option>' in page
    assert '<option value="10">version 10</option>' in page
    assert "Answers made under guideline version <bdi>2</bdi> only." in page


def test_with_one_answer_per_item_the_page_says_why_there_is_no_agreement_to_show(
    dataset, import_rows, reviewer, reviewer2, model_admin
):
    items = _items(import_rows, 4)
    for item, who, label in zip(items, [reviewer, reviewer2, reviewer, reviewer2], [M, B, B, B], strict=True):
        _answer(item, who, label)

    page = _page(model_admin, dataset)
    data = _api(model_admin, dataset)

    assert "No agreement between reviewers to show yet" in page
    assert f"{NO_OVERLAP}: each of the 4 answered items has one answer" in page
    assert "Cohen's kappa for each pair" not in page and "Per class" not in page  # no wall of dashes
    assert "Each reviewer against the gold label" in page  # that figure needs no overlap
    assert data["no_overlap_reason"] == NO_OVERLAP
    assert data["fleiss"]["kappa"]["value"] is None and data["alpha"]["n_items"] == 0
    assert [r["n_agree"] for r in data["reference"]] == [1, 2]  # gold alternates malignant, benign


def test_a_dataset_without_answers_says_so(dataset, model_admin):
    page = _page(model_admin, dataset)

    assert "No answers yet, so there is nothing to compare." in page
    assert _api(model_admin, dataset)["answers"] == 0


def test_the_gold_label_origin_is_named(dataset, import_rows, reviewer, reviewer2, model_admin):
    items = _items(import_rows, 2)
    review = _answer(items[0], reviewer, M)
    GoldLabel.objects.filter(item=items[0]).update(origin=GoldLabel.Origin.REVIEW, review=review)
    _answer(items[0], reviewer2, M)
    _answer(items[1], reviewer, B)

    data = _api(model_admin, dataset)
    assert data["reference_origins"] == {"import": 1, "review": 1}
    assert data["reference_adjudicated"] == []
    page = _page(model_admin, dataset)
    assert "1 imported with the data, 1 from a review" in page
    assert "None of the answered items has been adjudicated yet." in page
    assert "does not exist yet" not in page


# (reviewer, reviewer2) answers to 12 items whose imported gold alternates malignant, benign.
ANSWERS = [(M, M), (B, M), (M, B), (B, B), (M, M), (B, M), (M, M), (B, B), (M, B), (B, B), (M, M), (B, B)]
# Item index -> the adjudicator's decision: reviewer matches it on 8, 9, 11; reviewer2 on all but 8.
SETTLED = {1: M, 2: B, 5: M, 8: M, 9: B, 11: B}


@pytest.fixture
def half_adjudicated(dataset, import_rows, reviewer, reviewer2, adjudicator) -> list[Item]:
    """The 12 items answered as ANSWERS says; SETTLED's 6 adjudicated, the others keep their imported gold."""
    items = _items(import_rows, 12)
    for item, row in zip(items, ANSWERS, strict=True):
        for who, label in zip((reviewer, reviewer2), row, strict=True):
            _answer(item, who, label)
    for i, label in SETTLED.items():
        _adjudicate(items[i], adjudicator, label)
    return items


def test_agreement_with_adjudicated_gold_is_over_the_adjudicated_items_only(
    dataset, half_adjudicated, reviewer, reviewer2, auditor
):
    items = half_adjudicated
    ratings = sorted(
        (item.pk, who.pk, label)
        for item, row in zip(items, ANSWERS, strict=True)
        for who, label in zip((reviewer, reviewer2), row, strict=True)
    )
    adjudicated = {items[i].pk: label for i, label in SETTLED.items()}
    any_origin = {item.pk: item.gold_label.label.name for item in Item.objects.filter(pk__in=[i.pk for i in items])}
    expected = reference_agreement(ratings, adjudicated, bootstrap=BOOTSTRAP)
    expected_any = reference_agreement(ratings, any_origin, bootstrap=BOOTSTRAP)

    data = _api(auditor, dataset)

    assert data["reference_origins"] == {"import": 6, "adjudication": 6}
    # The adjudicator's decision is the reference, never a rating.
    assert [r["id"] for r in data["reviewers"]] == sorted([reviewer.pk, reviewer2.pk])
    assert data["reference_adjudicated"] == [
        {"reviewer": r.rater, "accuracy": _figure(r.accuracy), "kappa": _figure(r.kappa), "n_agree": r.n_agree}
        for r in expected
    ]
    counts = {r["reviewer"]: (r["accuracy"]["n_items"], r["n_agree"]) for r in data["reference_adjudicated"]}
    assert counts == {reviewer.pk: (6, 3), reviewer2.pk: (6, 5)}
    assert data["reference"] == [
        {"reviewer": r.rater, "accuracy": _figure(r.accuracy), "kappa": _figure(r.kappa), "n_agree": r.n_agree}
        for r in expected_any
    ]
    assert [r["accuracy"]["n_items"] for r in data["reference"]] == [12, 12]
    assert all(r["accuracy"]["low"] is not None for r in data["reference_adjudicated"])  # with an interval

    page = _page(auditor, dataset)
    assert "Each reviewer against adjudicated gold" in page
    assert "answered items whose gold label came from adjudication (6 items)" in page
    assert "6 from an adjudicator&#x27;s decision, 6 imported with the data" in page
    for r in expected:
        assert f"<strong>{r.accuracy.value:.3f}</strong>" in page


def _json_schema(node: Any) -> Any:
    """OpenAPI 3.0's `nullable: true` as JSON Schema's type list, which jsonschema_rs understands."""
    if isinstance(node, list):
        return [_json_schema(each) for each in node]
    if not isinstance(node, dict):
        return node
    out = {key: _json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") and "type" in node:
        out["type"] = [node["type"], "null"]
    return out


def test_the_schema_documents_both_references_and_a_real_answer_matches_it(dataset, half_adjudicated, auditor):
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operation = schema["paths"]["/api/datasets/{dataset_id}/agreement/"]["get"]
    ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    properties = schema["components"]["schemas"][ref.rpartition("/")[2]]["properties"]

    assert "against adjudicated gold only" in properties["reference_adjudicated"]["description"]
    assert "whatever its origin" in properties["reference"]["description"]
    assert "does not exist yet" not in properties["reference_origins"]["description"]
    answer = _api(auditor, dataset)
    assert answer["reference_adjudicated"]  # a real, non-empty answer is what gets validated
    validator = jsonschema_rs.validator_for({"$ref": ref, "components": _json_schema(schema["components"])})
    validator.validate(answer)
    del answer["reference_adjudicated"][0]["accuracy"]["n_items"]
    assert not validator.is_valid(answer)  # the validator does check the figures' fields


def test_an_adjudicators_decision_becomes_the_reference_of_the_adjudicated_figure(
    trained_dataset, reviewer, reviewer2, adjudicator, model_admin
):
    Dataset.objects.filter(pk=trained_dataset.pk).update(overlap=2)
    dataset = Dataset.objects.get(pk=trained_dataset.pk)
    accepted = review_next(dataset, reviewer, accept=True)
    review_next(dataset, reviewer2, accept=False)  # they disagree: the item goes to adjudication
    queued = adjudication_next_item(dataset=dataset, adjudicator=adjudicator)
    assert queued is not None and queued.item.pk == accepted.item_id
    # The adjudicator sides with reviewer2's correction.
    adjudication_submit(item_id=accepted.item_id, adjudicator=adjudicator, label=other_label(queued.item), reason="r")

    data = _api(model_admin, dataset)

    assert data["reference_origins"].get("adjudication") == 1
    by_reviewer = {r["reviewer"]: r for r in data["reference_adjudicated"]}
    assert (by_reviewer[reviewer.pk]["accuracy"]["value"], by_reviewer[reviewer.pk]["n_agree"]) == (0.0, 0)
    assert (by_reviewer[reviewer2.pk]["accuracy"]["value"], by_reviewer[reviewer2.pk]["n_agree"]) == (1.0, 1)
    assert by_reviewer[reviewer2.pk]["accuracy"]["n_items"] == 1
    assert adjudicator.pk not in by_reviewer


@pytest.mark.parametrize("persona", ["reviewer", "adjudicator", "outsider", "non_member_reviewer"])
def test_reviewers_and_outsiders_are_refused_the_page_and_the_api(request, dataset, persona):
    user = request.getfixturevalue(persona)
    client = login(user)

    assert client.get(reverse("annotations:agreement", args=[dataset.pk])).status_code == 403
    assert client.get(f"/api/datasets/{dataset.pk}/agreement/").status_code == 403


def test_a_model_admin_of_another_dataset_is_refused(dataset):
    other = Dataset.objects.create(name="Other", slug="other")
    admin = make_user("admin-other", Role.MODEL_ADMIN, dataset=other)

    assert login(admin).get(reverse("annotations:agreement", args=[dataset.pk])).status_code == 403
    assert login(admin).get(f"/api/datasets/{dataset.pk}/agreement/").status_code == 403


def test_an_overlong_version_filter_is_a_400_on_the_api(dataset, model_admin):
    response = login(model_admin).get(f"/api/datasets/{dataset.pk}/agreement/", {"guideline_version": "9" * 41})

    assert response.status_code == 400
    assert "guideline_version" in response.json()


def test_the_nav_links_the_page_for_model_admins_and_auditors_only(dataset, model_admin, auditor, reviewer):
    url = reverse("annotations:agreement", args=[dataset.pk])
    overview = reverse("annotations:dataset_detail", args=[dataset.pk])

    assert f'href="{url}"' in login(model_admin).get(overview).content.decode()
    assert f'href="{url}"' in login(auditor).get(overview).content.decode()
    assert f'href="{url}"' not in login(reviewer).get(overview).content.decode()


def test_the_page_reads_the_reviews_in_a_constant_number_of_queries(
    dataset, import_rows, three, model_admin, django_assert_num_queries
):
    items = _items(import_rows, 30)
    client = login(model_admin)
    url = reverse("annotations:agreement", args=[dataset.pk])

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    for item in items[:5]:
        for who in three:
            _answer(item, who, M if (item.pk + who.pk) % 2 else B)
    few = queries()
    for item in items[5:]:
        for who in three:
            _answer(item, who, M if (item.pk + who.pk) % 3 else B)
            _answer(item, who, B)  # and a superseding second answer
    many = queries()

    assert Review.objects.count() == 15 + 2 * 75
    assert few == many
    # session, user with their groups, the dataset with the membership, the reviews
    with django_assert_num_queries(4):
        client.get(url)
