"""The datasheet's Labelling section (issue 10, point 8): how a snapshot's gold labels were made, how many came from
the random audit slice and how many the model chose, and the agreement behind each part, with n.

Most tests build a snapshot row by row (items, reviews with their selection reasons, gold labels, the freeze), so
every figure is known in advance; one goes through the queue, the review service and a training run."""

from __future__ import annotations

import re
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
from models_app.models import DatasetSnapshot, ModelVersion, SnapshotLabel, TrainingRun
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
    assert page.index("Collection</h2>") < page.index('<h2 id="labelling-title">') < page.index("Uses</h2>")
    assert "Agreement behind the labels: audit-slice items and model-chosen items apart" in page
    assert '<td class="num" data-group="audit_slice">4</td>' in page
    assert '<strong>0.667</strong> <span class="muted">2 of n = 3</span>' in page
    assert (
        "Labelled by 2 reviewers and 1 adjudicator, under guideline versions 1, 2; "
        "2 labels were imported with the data and never reviewed."
    ) in page
    # In words on the page (the JSON keeps the codes): the strategies, and "n = 0: why" however a figure is empty.
    assert (
        "random audit slice 4, least confident first 3, arrival order (not yet scored by the model) 1, "
        "not reviewed before the freeze 2."
    ) in page
    assert '— <span class="muted">n = 0: no item has two or more answers</span>' in page
    assert "n = 0;" not in page


def _visible_text(page: str) -> str:
    """The page's text as a person reads it: tags (and their attributes) out, JSON links and all."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]*>", " ", page))


RAW_CODES = ("audit_slice", "least_confidence", "not_reviewed", "model_chosen", "label_issue", "unscored")


def _version_on(snapshot: DatasetSnapshot) -> ModelVersion:
    """A version registered on `snapshot`, as the registry's rows (the card reads them; nothing is fitted)."""
    run = TrainingRun.objects.create(
        dataset=snapshot.dataset,
        trigger=TrainingRun.Trigger.MANUAL,
        status=TrainingRun.Status.SUCCEEDED,
        snapshot=snapshot,
    )
    return ModelVersion.objects.create(
        dataset=snapshot.dataset,
        version=1,
        algorithm="logistic_regression",
        training_run=run,
        snapshot=snapshot,
        artifact_path="unused",
        artifact_sha256="a" * 64,
        feature_names=[],
        class_names=[],
    )


def test_the_composition_the_labelling_section_and_the_model_card_count_the_same_way(
    overlap_two, import_rows, model_admin
):
    """One definition: an item counts by what first put it in front of a reviewer. By the review that made each
    label instead, the slice would have 2 (its adjudicated item counted as "adjudication", the item it served
    first and that was skipped counted as the model's), and the adjudicator would count as a third reviewer."""
    built = _build(overlap_two, import_rows)
    version = _version_on(built.snapshot)
    client = login(model_admin)

    sheet = client.get(reverse("governance:datasheet", args=[built.snapshot.pk]) + "?format=json").json()
    card = client.get(reverse("governance:model_card", args=[version.pk]) + "?format=json").json()

    labelling = sheet["labelling"]
    for summary in (sheet["composition"], card["training_data"]):
        assert summary["from_random_audit_slice"] == labelling["labels_by_group"]["audit_slice"] == 4
        assert summary["reviewed_items_picked_by"] == {AUDIT: 4, MODEL: 3, UNSCORED: 1}
        assert summary["reviewed_items_picked_by"] == {
            code: n for code, n in labelling["picked_by_strategy"].items() if code != "not_reviewed"
        }
        assert summary["items_by_group"] == labelling["labels_by_group"]
        assert summary["label_origins"] == labelling["labels_by_origin"]
        assert summary["label_origins"] == {"import": 2, "review": 2, "consensus": 3, "adjudication": 3}
        assert summary["agreement_behind_labels"]["adjudicated_disagreements"] == 3
        assert (summary["reviewers"], summary["adjudicators"]) == (labelling["reviewers"], labelling["adjudicators"])
        assert (summary["reviewers"], summary["adjudicators"]) == (2, 1)
        assert summary["guideline_versions"] == labelling["guideline_versions"] == ["1", "2"]
        assert summary["label_count"] == labelling["label_count"] == 10 and "labels" not in summary
        assert "first review" in summary["definitions"]["reviewed_items_picked_by"]
    assert sum(row["labels"] for row in labelling["how_labels_were_made"]) == labelling["label_count"]

    page = client.get(reverse("governance:datasheet", args=[built.snapshot.pk])).content.decode()
    card_page = client.get(reverse("governance:model_card", args=[version.pk])).content.decode()
    who = (
        "Labelled by 2 reviewers and 1 adjudicator, under guideline versions 1, 2; "
        "2 labels were imported with the data and never reviewed."
    )
    # The datasheet says it once, in its Labelling section; the card's training data says the same.
    assert page.count(who) == 1 and card_page.count(who) == 1
    assert '<td class="num" data-group="audit_slice">4</td>' in page
    assert (
        '<tr data-group="audit_slice"><th scope="row">Items the random audit slice first put in front of a reviewer'
        "</th><td>4 "
    ) in card_page
    assert "How the labels were made, as they stood when the snapshot was frozen" not in page
    assert '<a href="#labelling-title">Labelling</a>, below' in page
    for text in (_visible_text(page), _visible_text(card_page)):
        assert not [code for code in RAW_CODES if code in text]
        assert not re.search(r"\badjudication \d", text)  # the code, with a count after it


def test_a_snapshot_of_imported_labels_reads_naturally(dataset, import_rows, model_admin):
    import_rows(synthetic_rows(3, labelled=True), name="seed.csv")
    snapshot = _freeze(dataset, list(GoldLabel.objects.filter(dataset_id=dataset.pk)))
    version = _version_on(snapshot)
    client = login(model_admin)

    page = client.get(reverse("governance:datasheet", args=[snapshot.pk])).content.decode()
    card_page = client.get(reverse("governance:model_card", args=[version.pk])).content.decode()

    imported = "All 3 labels were imported with the data: none was reviewed before the freeze"
    assert imported in page and imported in card_page
    assert (
        "No item was reviewed before the freeze, so no agreement between reviewers stands behind these labels." in page
    )
    assert "labels-agreement-caption" not in page  # no table of empty figures
    assert "not reviewed before the freeze 3." in page
    for text in (page, card_page):
        assert "0 reviewers" not in text and "guideline versions —" not in text
        assert not [code for code in RAW_CODES if code in _visible_text(text)]


def test_the_printed_datasheet_carries_the_freeze_date_and_the_full_hash(overlap_two, import_rows, model_admin):
    built = _build(overlap_two, import_rows)
    DatasetSnapshot.objects.filter(pk=built.snapshot.pk).update(content_hash="f" * 64)
    frozen = DatasetSnapshot.objects.get(pk=built.snapshot.pk).created_at

    page = login(model_admin).get(reverse("governance:datasheet", args=[built.snapshot.pk])).content.decode()

    line = re.search(r'<p class="([^"]*)">Frozen ([^;]*); sha256 <code class="wrap">([0-9a-f]+)</code>', page)
    assert line is not None, "no freeze line"
    assert "no-print" not in line.group(1).split()  # the paper copy keeps it
    assert line.group(2) == frozen.strftime("%Y-%m-%d %H:%M UTC") and line.group(3) == "f" * 64
    assert '<p class="muted no-print"><a href="?format=json">JSON</a>' in page  # only the links stay off paper
    css = (Path(settings.BASE_DIR) / "static" / "css" / "loupe.css").read_text()
    assert ".document code.wrap { word-break: break-all; }" in css[css.index("@media print") :]  # wraps on paper


def test_the_labelling_tables_captions_sit_outside_their_scrolling_regions(overlap_two, import_rows, model_admin):
    built = _build(overlap_two, import_rows)

    page = login(model_admin).get(reverse("governance:datasheet", args=[built.snapshot.pk])).content.decode()

    section = page[page.index('<section class="labelling"') : page.index("</section>", page.index("labelling-title"))]
    assert "<caption" not in section
    for caption in ("labels-made-caption", "labels-agreement-caption"):
        figcaption = section.index(f'<figcaption id="{caption}">')
        region = section.index(f'<div class="table-scroll" role="region" aria-labelledby="{caption}" tabindex="0">')
        table = section.index(f'aria-labelledby="{caption}">', region + 1)  # the table is named by it too
        assert section.rindex("<figure", 0, figcaption) < figcaption < region < table
    css = (Path(settings.BASE_DIR) / "static" / "css" / "loupe.css").read_text()
    assert ".table-figure > figcaption {" in css


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
