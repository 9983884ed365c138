"""The datasheet's Labelling section (issue 10, point 8): how a snapshot's gold labels were made, how many came from
the random audit slice and how many the model chose, and the agreement behind each part, with n.

Most tests build a snapshot row by row (items, reviews with their selection reasons, gold labels, the freeze), so
every figure is known in advance; one goes through the queue, the review service and a training run."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from annotations.agreement_metrics import fleiss_kappa, krippendorff_alpha
from annotations.models import Dataset, GoldLabel, Item, LabelClass, Review
from governance.datasheet_labelling import DATASHEET_BOOTSTRAP, datasheet_labelling
from models_app.models import DatasetSnapshot, SnapshotLabel
from tests.conftest import login, synthetic_rows
from tests.helpers import candidate_train, make_user, review_next
from workflow_site.access import Role

AUDIT, MODEL, UNSCORED = "audit_slice", "least_confidence", "unscored"


@dataclass
class Built:
    """A snapshot built row by row, and what its reviews were, for the expected figures."""

    snapshot: DatasetSnapshot
    # group -> (item id, reviewer id, category) of the answers in force at the freeze
    ratings: dict[str, list[tuple[int, int, str]]] = field(default_factory=dict)


def _reviewers(dataset: Dataset, n: int) -> list[User]:
    return [make_user(f"labeller{i}", Role.REVIEWER, dataset=dataset) for i in range(n)]


def _review(
    item: Item, reviewer: User, label: LabelClass | None, strategy: str, *, decision: str = "", version: str = "1"
) -> Review:
    """A review row as the service writes it: a label, or "uncertain" without one (or the decision given)."""
    return Review.objects.create(
        item=item,
        reviewer=reviewer,
        decision=decision or ("label" if label is not None else "uncertain"),
        label=label,
        selection_strategy=strategy,
        guideline_version=version,
    )


def _gold(item: Item, label: LabelClass, origin: str, review: Review | None) -> GoldLabel:
    return GoldLabel.objects.create(
        item=item, dataset_id=item.dataset_id, label=label, origin=origin, review=review, updated_at=timezone.now()
    )


def _freeze(dataset: Dataset, golds: list[GoldLabel]) -> DatasetSnapshot:
    snapshot = DatasetSnapshot.objects.create(dataset=dataset, label_count=len(golds), content_hash="0" * 64)
    SnapshotLabel.objects.bulk_create(
        SnapshotLabel(snapshot=snapshot, item_id=g.item_id, label_id=g.label_id, gold_label=g, review_id=g.review_id)
        for g in golds
    )
    return snapshot


def _build(dataset: Dataset, import_rows, *, agreeing_pairs: int = 2) -> Built:  # type: ignore[no-untyped-def]
    """Overlap 2. Audit slice: `agreeing_pairs` agreeing pairs and one disagreement (adjudicated); the model's
    strategy: one agreeing pair, one disagreement and one "uncertain" (both adjudicated); one single review in
    arrival order; two labels imported with the data and never reviewed."""
    import_rows(synthetic_rows(agreeing_pairs + 8, labelled=False))
    import_rows(synthetic_rows(2, start=1000, labelled=True, prefix="imp"), name="labelled.csv")
    items = list(Item.objects.filter(dataset=dataset, batch__file_name="rows.csv").order_by("pk"))
    malignant, benign = LabelClass.objects.filter(dataset=dataset).order_by("position")
    r1, r2, judge = _reviewers(dataset, 3)
    built = Built(snapshot=None)  # type: ignore[arg-type]
    golds: list[GoldLabel] = []

    def pair(item: Item, strategy: str, a: LabelClass | None, b: LabelClass | None, group: str) -> None:
        first = _review(item, r1, a, strategy)
        _review(item, r2, b, strategy, version="2")
        cat = {None: "uncertain", malignant: str(malignant.pk), benign: str(benign.pk)}
        built.ratings.setdefault(group, []).extend([(item.pk, r1.pk, cat[a]), (item.pk, r2.pk, cat[b])])
        if a == b:
            golds.append(_gold(item, a, GoldLabel.Origin.CONSENSUS, first))
        else:
            decided = _review(item, judge, malignant, "adjudication", decision="adjudicate")
            golds.append(_gold(item, malignant, GoldLabel.Origin.ADJUDICATION, decided))

    it = iter(items)
    for _ in range(agreeing_pairs):
        pair(next(it), AUDIT, benign, benign, "audit_slice")
    pair(next(it), AUDIT, benign, malignant, "audit_slice")
    pair(next(it), MODEL, malignant, malignant, "model_chosen")
    pair(next(it), MODEL, malignant, benign, "model_chosen")
    pair(next(it), MODEL, None, benign, "model_chosen")
    single = next(it)
    golds.append(_gold(single, benign, GoldLabel.Origin.REVIEW, _review(single, r1, benign, UNSCORED)))
    skipped_first = next(it)  # first served by the slice and skipped, then answered when the model chose it
    _review(skipped_first, r2, None, AUDIT, decision="skip")
    golds.append(_gold(skipped_first, benign, GoldLabel.Origin.REVIEW, _review(skipped_first, r1, benign, MODEL)))
    built.ratings["audit_slice"].append((skipped_first.pk, r1.pk, str(benign.pk)))
    for item in Item.objects.filter(dataset=dataset, batch__file_name="labelled.csv"):
        golds.append(GoldLabel.objects.get(item=item))
    built.snapshot = _freeze(dataset, golds)
    return built


@pytest.fixture
def overlap_two(dataset) -> Dataset:
    Dataset.objects.filter(pk=dataset.pk).update(overlap=2)
    return Dataset.objects.get(pk=dataset.pk)


def test_the_labelling_section_splits_labels_and_agreement_between_the_audit_slice_and_the_models_choice(
    overlap_two, import_rows
):
    built = _build(overlap_two, import_rows)

    labelling = datasheet_labelling(built.snapshot)

    assert labelling["label_count"] == 10
    made = {row["origin"]: row for row in labelling["how_labels_were_made"]}
    assert (made["consensus"]["labels"], made["consensus"]["audit_slice"], made["consensus"]["model_chosen"]) == (
        3,
        2,
        1,
    )
    assert (made["adjudication"]["audit_slice"], made["adjudication"]["model_chosen"]) == (1, 2)
    # An item first served by the slice (then skipped) stays a slice item, whoever answered it and why.
    assert (made["review"]["labels"], made["review"]["other"], made["review"]["audit_slice"]) == (2, 1, 1)
    assert (made["import"]["labels"], made["import"]["not_reviewed"]) == (2, 2)
    assert labelling["labels_by_group"] == {"audit_slice": 4, "model_chosen": 3, "other": 1, "not_reviewed": 2}
    assert labelling["picked_by_strategy"] == {AUDIT: 4, MODEL: 3, UNSCORED: 1, "not_reviewed": 2}
    assert (labelling["reviewers"], labelling["adjudicators"], labelling["guideline_versions"]) == (2, 1, ["1", "2"])

    audit, model = labelling["agreement"]["audit_slice"], labelling["agreement"]["model_chosen"]
    assert (audit["items_with_two_or_more_answers"], audit["items_all_agreed"]) == (3, 2)
    assert audit["share_all_agreed"] == pytest.approx(2 / 3)
    assert (model["items_with_two_or_more_answers"], model["items_all_agreed"]) == (3, 1)
    assert (audit["items_answered"], model["items_answered"]) == (4, 3)
    # The figures are annotations' own, over exactly the answers in force of each group.
    for group, figures in (("audit_slice", audit), ("model_chosen", model)):
        expected = fleiss_kappa(sorted(built.ratings[group]), bootstrap=DATASHEET_BOOTSTRAP).kappa
        assert (figures["fleiss_kappa"]["value"], figures["fleiss_kappa"]["n"]) == (expected.value, expected.n_items)
        alpha = krippendorff_alpha(sorted(built.ratings[group]), bootstrap=DATASHEET_BOOTSTRAP)
        assert figures["krippendorff_alpha"]["value"] == pytest.approx(alpha.value)
        assert figures["krippendorff_alpha"]["n"] == 3
    assert model["fleiss_kappa"]["answers_per_item"] == 2
    other = labelling["agreement"]["other"]
    assert other["share_all_agreed"] is None and other["fleiss_kappa"]["value"] is None
    assert other["fleiss_kappa"]["reason"] == "no item has two or more ratings"


def test_only_what_stood_at_the_freeze_counts(overlap_two, import_rows):
    built = _build(overlap_two, import_rows)
    before = datasheet_labelling(built.snapshot)
    later = timezone.now() + timedelta(seconds=1)
    consensus = SnapshotLabel.objects.filter(
        snapshot=built.snapshot, gold_label__origin="consensus", review__selection_strategy=MODEL
    ).get()
    latecomer = make_user("latecomer", Role.REVIEWER, dataset=overlap_two)
    benign = LabelClass.objects.get(dataset=overlap_two, name="benign")
    # After the freeze: a third answer that disagrees, and the gold label re-derived from it.
    late = _review(consensus.item, latecomer, benign, AUDIT)  # created_at: now, after the freeze
    GoldLabel.objects.filter(pk=consensus.gold_label_id).update(
        review=late, origin=GoldLabel.Origin.REVIEW, label=benign, updated_at=later
    )

    after = datasheet_labelling(built.snapshot)

    assert after["how_labels_were_made"] == before["how_labels_were_made"]  # still a consensus, as frozen
    assert after["agreement"] == before["agreement"] and after["reviewers"] == 2


def test_the_datasheet_page_and_json_have_the_labelling_section(overlap_two, import_rows, model_admin):
    built = _build(overlap_two, import_rows)
    url = reverse("governance:datasheet", args=[built.snapshot.pk])
    client = login(model_admin)

    sheet = client.get(url + "?format=json").json()
    page = client.get(url).content.decode()

    assert sheet["labelling"]["labels_by_group"]["audit_slice"] == 4
    assert sheet["labelling"]["agreement"]["audit_slice"]["items_with_two_or_more_answers"] == 3
    assert '<h2 id="labelling-title">Labelling</h2>' in page
    assert page.index("Collection</h2>") < page.index("labelling-title") < page.index("Uses</h2>")
    assert "Agreement behind the labels: audit-slice items and model-chosen items apart" in page
    assert '<td class="num" data-group="audit_slice">4</td>' in page
    assert '<strong>0.667</strong> <span class="muted">2 of n = 3</span>' in page
    assert "2 reviewers and 1 adjudicator, under guideline versions 1, 2." in page


def test_the_print_stylesheet_lets_the_labelling_tables_wrap_on_paper():
    css = (Path(settings.BASE_DIR) / "static" / "css" / "loupe.css").read_text()
    print_rules = css[css.index("@media print") :]
    assert ".document .table-scroll { overflow: visible; }" in print_rules and ".document .labelling" in print_rules


def _queries(client, url: str) -> int:  # type: ignore[no-untyped-def]
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_datasheet_costs_the_same_queries_however_many_labels(
    overlap_two, import_rows, model_admin, django_assert_num_queries
):
    small = _build(overlap_two, import_rows, agreeing_pairs=2)
    client = login(model_admin)
    url = reverse("governance:datasheet", args=[small.snapshot.pk]) + "?format=json"
    client.get(url)  # the session and the user's groups are cached after the first request
    expected = _queries(client, url)

    bigger = _build_more(overlap_two, import_rows, extra=30)

    with django_assert_num_queries(expected):
        response = client.get(reverse("governance:datasheet", args=[bigger.pk]) + "?format=json")
    assert response.json()["labelling"]["labels_by_group"]["audit_slice"] == 34
    assert response.json()["labelling"]["agreement"]["audit_slice"]["items_with_two_or_more_answers"] == 33


def _build_more(dataset: Dataset, import_rows, *, extra: int) -> DatasetSnapshot:  # type: ignore[no-untyped-def]
    """A second, bigger snapshot: the first one's labels and `extra` more agreeing audit-slice pairs."""
    batch = import_rows(synthetic_rows(extra, start=2000, labelled=False, prefix="more"), name="more.csv")
    benign = LabelClass.objects.get(dataset=dataset, name="benign")
    a, b = User.objects.get(username="labeller0"), User.objects.get(username="labeller1")
    golds = list(GoldLabel.objects.filter(dataset_id=dataset.pk))
    for item in Item.objects.filter(batch=batch):
        first = _review(item, a, benign, AUDIT)
        _review(item, b, benign, AUDIT)
        golds.append(_gold(item, benign, GoldLabel.Origin.CONSENSUS, first))
    return _freeze(dataset, golds)


def test_a_real_review_through_the_queue_is_counted_by_what_picked_it(
    trained_dataset, reviewer, model_admin, queue_draws
):
    Dataset.objects.filter(pk=trained_dataset.pk).update(blind_percent=0)
    dataset = Dataset.objects.get(pk=trained_dataset.pk)
    review_next(dataset, reviewer)  # the model's choice (the slice's draw does not fire)
    queue_draws.return_value = 0.0  # the slice serves
    review_next(dataset, reviewer)

    version = candidate_train(dataset, requested_by=model_admin, reason="after two reviews")
    labelling = (
        login(model_admin)
        .get(reverse("governance:datasheet", args=[version.snapshot_id]) + "?format=json")
        .json()["labelling"]
    )

    assert labelling["labels_by_group"]["audit_slice"] == 1 and labelling["labels_by_group"]["model_chosen"] == 1
    assert labelling["picked_by_strategy"] == {dataset.queue_strategy: 1, "audit_slice": 1, "not_reviewed": 20}
    assert sum(row["labels"] for row in labelling["how_labels_were_made"]) == labelling["label_count"]
    assert labelling["reviewers"] == 1 and labelling["agreement"]["audit_slice"]["items_answered"] == 1
