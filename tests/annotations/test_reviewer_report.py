"""The reviewer report (issue 8, point 4): automation bias per reviewer, its pure figures, selector, page and API."""

from __future__ import annotations

import random
import statistics
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from annotations.models import Dataset, Item, LabelClass, Review
from annotations.queue import queue_next_item
from annotations.reviewer_report import (
    LIKELY,
    NO_SIGN,
    NOT_ENOUGH,
    ReviewerTallies,
    RubberStampRule,
    dataset_reviewer_report_for_user,
    reviewer_figures,
)
from annotations.services import ReviewAnswer, review_revise, review_submit
from tests.helpers import login, make_user, other_label
from workflow_site.access import Role

# --- The pure figures -----------------------------------------------------------------------------

# Enough of everything for a verdict under the default rule (20 shown, 10 timed accepts, 10 timed blind).
JUDGEABLE = {
    "blind_labelled": 10,
    "blind_compared": 10,
    "blind_agreed": 6,
    "shown_accept": 19,
    "shown_correct": 1,
    "blind_timed": 10,
    "blind_median_ms": 4000.0,
    "accept_timed": 19,
    "accept_median_ms": 1000.0,
}


def _tallies(**counts: object) -> ReviewerTallies:
    return ReviewerTallies(reviewer_id=1, username="ann", **counts)  # type: ignore[arg-type]


def test_blind_and_shown_agreement_are_set_side_by_side_with_their_counts():
    figures = reviewer_figures(_tallies(**JUDGEABLE))

    blind, shown = figures.blind_agreement, figures.shown_agreement
    assert (blind.count, blind.total, blind.percent) == (6, 10, 60)
    assert (shown.count, shown.total, shown.value) == (19, 20, 0.95)
    assert figures.agreement_gap == 35.0


def test_an_uncertain_lowers_the_accept_rate_but_not_the_shown_agreement():
    figures = reviewer_figures(_tallies(shown_accept=9, shown_correct=0, shown_uncertain=1))

    assert figures.shown_agreement.value == 1.0
    assert (figures.accept_rate.count, figures.accept_rate.total) == (9, 10)


def test_fast_frequent_accepts_are_flagged_as_likely_rubber_stamping_in_words():
    figures = reviewer_figures(_tallies(**JUDGEABLE))

    assert figures.flag.status == LIKELY
    assert figures.flag.words.startswith("Likely rubber-stamping: accepts 95%")
    assert "1.0 s against 4.0 s blind" in figures.flag.words
    assert figures.time_ratio == 0.25


def test_the_flag_needs_the_accept_rate_at_or_above_the_threshold_and_accepts_strictly_faster():
    at_threshold = reviewer_figures(_tallies(**{**JUDGEABLE, "shown_accept": 18, "shown_correct": 2}))
    below = reviewer_figures(_tallies(**{**JUDGEABLE, "shown_accept": 17, "shown_correct": 3}))
    exactly_half = reviewer_figures(_tallies(**{**JUDGEABLE, "accept_median_ms": 2000.0}))

    assert at_threshold.flag.status == LIKELY  # 18 / 20 = 90%
    assert below.flag.status == NO_SIGN and "accept rate under the threshold" in below.flag.words
    assert exactly_half.flag.status == NO_SIGN and "not fast enough" in exactly_half.flag.words


@pytest.mark.parametrize(
    ("change", "missing"),
    [
        ({"blind_timed": 9}, "9 of 10 timed blind answers"),
        ({"accept_timed": 9}, "9 of 10 timed accepts"),
        ({"shown_accept": 18}, "19 of 20 shown answers"),
        ({"blind_timed": 0, "blind_median_ms": None}, "0 of 10 timed blind answers"),
    ],
)
def test_below_any_minimum_the_flag_says_not_enough_answers_and_which(change, missing):
    figures = reviewer_figures(_tallies(**{**JUDGEABLE, **change}))

    assert figures.flag.status == NOT_ENOUGH
    assert figures.flag.words.startswith("Not enough answers to judge")
    assert missing in figures.flag.words


def test_the_rule_is_configurable():
    lenient = RubberStampRule(min_accept_rate=0.5, max_time_ratio=0.9, min_shown_answers=2, min_blind_answers=1)
    strict = RubberStampRule(min_accept_rate=0.99)
    counts = {**JUDGEABLE, "shown_accept": 3, "shown_correct": 1, "accept_timed": 10, "blind_timed": 1}

    assert reviewer_figures(_tallies(**counts), lenient).flag.status == LIKELY
    assert reviewer_figures(_tallies(**JUDGEABLE), strict).flag.status == NO_SIGN
    assert "at least 99%" in strict.words


def test_a_revision_after_the_reveal_counts_as_a_revision_and_the_blind_answer_stays():
    figures = reviewer_figures(
        _tallies(
            blind_labelled=8,
            blind_uncertain=2,
            blind_compared=8,
            blind_agreed=4,
            revised_after_reveal=3,
            revised_to_model=2,
        )  # fmt: skip
    )

    assert (figures.blind_agreement.count, figures.blind_agreement.total) == (4, 8)
    assert (figures.revision_rate.count, figures.revision_rate.total) == (3, 10)  # over blind answers, uncertain too
    assert (figures.revised_to_model.count, figures.revised_to_model.total) == (2, 3)


def test_blind_labels_whose_prediction_changed_are_counted_apart_and_left_out_of_the_figure():
    tallies = _tallies(blind_labelled=10, blind_no_prediction=1, blind_compared=6, blind_agreed=6)
    figures = reviewer_figures(tallies)

    assert tallies.blind_changed == 3
    assert (figures.blind_agreement.count, figures.blind_agreement.total) == (6, 6)


def test_a_reviewer_with_no_answers_has_no_figures_rather_than_zeros():
    figures = reviewer_figures(_tallies(skips=2))

    assert figures.blind_agreement.value is None and figures.shown_agreement.percent is None
    assert figures.accept_rate.value is None and figures.agreement_gap is None and figures.time_ratio is None
    assert figures.flag.status == NOT_ENOUGH


# --- The selector, on reviews made through the services --------------------------------------------

# Judge on a handful of answers, so a test can reach a verdict with the Tumours pool's 30 items.
SMALL = RubberStampRule(min_accept_rate=0.7, min_shown_answers=3, min_timed_accepts=3, min_blind_answers=3)


def _serve(dataset: Dataset, reviewer: User, *, blind: bool, queue_draws, ms: int) -> Item:  # type: ignore[no-untyped-def]
    """Lease the next item to `reviewer`, blind or not, as if it had been on screen for `ms`."""
    Dataset.objects.filter(pk=dataset.pk).update(blind_percent=100 if blind else 0)
    queue_draws.return_value = 0.0  # every draw fires: blind when the share is 100%, never at 0%
    queued = queue_next_item(dataset=Dataset.objects.get(pk=dataset.pk), reviewer=reviewer)
    assert queued is not None and queued.blind is blind
    Item.objects.filter(pk=queued.item.pk).update(lease_started_at=timezone.now() - timedelta(milliseconds=ms))
    return Item.objects.select_related("predicted_label").get(pk=queued.item.pk)


def _answer(
    dataset: Dataset,
    reviewer: User,
    queue_draws,  # type: ignore[no-untyped-def]
    *,
    blind: bool,
    agree: bool = True,
    ms: int = 1000,
    uncertain: bool = False,
) -> Review:
    item = _serve(dataset, reviewer, blind=blind, queue_draws=queue_draws, ms=ms)
    label = None if uncertain else (item.predicted_label if agree else other_label(item))
    answer = ReviewAnswer(label=label, shown_prediction_id=item.prediction_id, uncertain=uncertain)
    return review_submit(item_id=item.pk, reviewer=reviewer, answer=answer)


def _row(report, reviewer: User):  # type: ignore[no-untyped-def]
    return next(r for r in report.reviewers if r.tallies.reviewer_id == reviewer.pk)


def test_the_report_sets_blind_against_shown_answers_for_each_reviewer(
    trained_dataset, reviewer, reviewer2, model_admin, queue_draws
):
    for agree, ms in ((True, 4000), (True, 6000), (False, 5000)):
        _answer(trained_dataset, reviewer, queue_draws, blind=True, agree=agree, ms=ms)
    _answer(trained_dataset, reviewer, queue_draws, blind=True, uncertain=True, ms=3000)
    for agree, ms in ((True, 1000), (True, 1500), (True, 2000), (True, 800), (False, 7000)):
        _answer(trained_dataset, reviewer, queue_draws, blind=False, agree=agree, ms=ms)
    _answer(trained_dataset, reviewer2, queue_draws, blind=False, agree=False, ms=3000)

    report = dataset_reviewer_report_for_user(user=model_admin, dataset_id=trained_dataset.pk, rule=SMALL)

    ann = _row(report, reviewer)
    t = ann.tallies
    assert (t.blind_labelled, t.blind_uncertain, t.blind_compared, t.blind_changed) == (3, 1, 3, 0)
    assert (ann.blind_agreement.count, ann.blind_agreement.total) == (2, 3)
    assert (ann.shown_agreement.count, ann.shown_agreement.total) == (4, 5)
    assert (ann.accept_rate.count, ann.accept_rate.total) == (4, 5)
    assert (t.blind_timed, t.accept_timed) == (4, 4)  # blind: the three labels and the uncertain
    assert t.blind_median_ms == pytest.approx(4500, abs=150)  # 3000, 4000, 5000, 6000 (+ a few ms of test)
    assert t.accept_median_ms == pytest.approx(1250, abs=150)  # 800, 1000, 1500, 2000: the corrections are not in it
    assert ann.flag.status == LIKELY  # 80% accepted, 1.25 s against 4.5 s
    other = _row(report, reviewer2)
    assert (other.shown_agreement.count, other.shown_agreement.total, other.flag.status) == (0, 1, NOT_ENOUGH)
    assert [r.tallies.username for r in report.reviewers] == sorted([reviewer.username, reviewer2.username])


def test_a_revision_after_the_reveal_keeps_the_blind_answer_in_the_blind_figure(
    trained_dataset, reviewer, auditor, queue_draws
):
    blind = _answer(trained_dataset, reviewer, queue_draws, blind=True, agree=False)
    item = Item.objects.select_related("predicted_label").get(pk=blind.item_id)
    review_revise(
        review_id=blind.pk,
        reviewer=reviewer,
        answer=ReviewAnswer(label=item.predicted_label, shown_prediction_id=item.prediction_id),
    )
    undone = _answer(trained_dataset, reviewer, queue_draws, blind=False)
    review_revise(review_id=undone.pk, reviewer=reviewer, answer=None)  # an undo is not a revision

    ann = _row(dataset_reviewer_report_for_user(user=auditor, dataset_id=trained_dataset.pk), reviewer)

    assert (ann.blind_agreement.count, ann.blind_agreement.total) == (0, 1)
    assert (ann.revision_rate.count, ann.revision_rate.total) == (1, 1)
    assert (ann.revised_to_model.count, ann.revised_to_model.total) == (1, 1)
    assert (ann.tallies.withdrawn, ann.tallies.revised_shown) == (1, 0)
    assert (ann.shown_agreement.count, ann.shown_agreement.total) == (1, 1)  # the undone answer was still given


def test_a_blind_answer_whose_prediction_changed_is_not_compared_unless_a_revision_recorded_its_label(
    trained_dataset, reviewer, auditor, queue_draws
):
    lone = _answer(trained_dataset, reviewer, queue_draws, blind=True, agree=True)
    revised = _answer(trained_dataset, reviewer, queue_draws, blind=True, agree=True)
    item = Item.objects.select_related("predicted_label").get(pk=revised.item_id)
    review_revise(
        review_id=revised.pk,
        reviewer=reviewer,
        answer=ReviewAnswer(label=other_label(item), shown_prediction_id=item.prediction_id),
    )
    # A later model re-predicts both items (as models_app writes it: a new prediction id and label).
    for review in (lone, revised):
        moved = Item.objects.get(pk=review.item_id)
        flipped = LabelClass.objects.filter(dataset=trained_dataset).exclude(pk=moved.predicted_label_id).get()
        Item.objects.filter(pk=moved.pk).update(prediction_id=moved.prediction_id + 10**9, predicted_label=flipped)

    ann = _row(dataset_reviewer_report_for_user(user=auditor, dataset_id=trained_dataset.pk), reviewer)

    assert (ann.tallies.blind_labelled, ann.tallies.blind_changed) == (2, 1)
    # The revised one is compared with the label its revision recorded, not with the new prediction.
    assert (ann.blind_agreement.count, ann.blind_agreement.total) == (1, 1)
    assert (ann.revision_rate.count, ann.revised_to_model.count) == (1, 0)  # revised away from the model


def test_medians_computed_in_the_database_equal_statistics_median(trained_dataset, reviewer, reviewer2, auditor):
    """Odd and even counts, ties, one value: the SQL median against Python's, on reviews written in bulk."""
    rng = random.Random(7)
    items = list(Item.objects.filter(dataset=trained_dataset)[:40])
    third = make_user("third", Role.REVIEWER, dataset=trained_dataset)
    times = {
        reviewer: ([rng.randrange(100, 9000) for _ in range(37)], [rng.choice([500, 700, 900]) for _ in range(24)]),
        reviewer2: ([4242], [rng.randrange(10, 90) for _ in range(2)]),
        third: ([rng.randrange(0, 10**6) for _ in range(18)], []),
    }
    label = LabelClass.objects.filter(dataset=trained_dataset).first()
    rows = []
    for who, (blind_times, accept_times) in times.items():
        for n, ms in enumerate(blind_times):
            rows.append(Review(item=items[n % 40], reviewer=who, decision="label", label=label, mode="blind",
                               time_on_item_ms=ms, selection_strategy="t", guideline_version="1"))  # fmt: skip
        for n, ms in enumerate(accept_times):
            rows.append(Review(item=items[n % 40], reviewer=who, decision="accept", label=label, mode="open",
                               time_on_item_ms=ms, selection_strategy="t", guideline_version="1"))  # fmt: skip
    Review.objects.bulk_create(rows)

    report = dataset_reviewer_report_for_user(user=auditor, dataset_id=trained_dataset.pk)

    for who, (blind_times, accept_times) in times.items():
        t = _row(report, who).tallies
        assert (t.blind_timed, t.blind_median_ms) == (len(blind_times), statistics.median(blind_times))
        expected = statistics.median(accept_times) if accept_times else None
        assert (t.accept_timed, t.accept_median_ms) == (len(accept_times), expected)


# --- The page and the API ------------------------------------------------------------------------


def test_reviewers_cannot_open_the_report_page_or_api(trained_dataset, reviewer):
    client = login(reviewer)

    assert client.get(reverse("annotations:reviewer_report", args=[trained_dataset.pk])).status_code == 403
    assert client.get(reverse("api_reviewer_report", args=[trained_dataset.pk])).status_code == 403


def test_auditors_and_model_admins_open_it_and_a_missing_dataset_is_a_404_for_auditors(
    trained_dataset, auditor, model_admin
):
    for user in (auditor, model_admin):
        client = login(user)
        assert client.get(reverse("annotations:reviewer_report", args=[trained_dataset.pk])).status_code == 200
        assert client.get(reverse("api_reviewer_report", args=[trained_dataset.pk])).status_code == 200
    assert login(auditor).get(reverse("api_reviewer_report", args=[10**8])).status_code == 404


def test_a_model_admin_of_another_dataset_is_refused(trained_dataset):
    stranger = make_user("stranger_admin", Role.MODEL_ADMIN)

    assert login(stranger).get(reverse("api_reviewer_report", args=[trained_dataset.pk])).status_code == 403


def test_the_page_escapes_reviewer_names_and_says_the_flag_in_words(trained_dataset, auditor, queue_draws):
    hostile = make_user('<img src=x onerror="alert(1)">', Role.REVIEWER, dataset=trained_dataset)
    _answer(trained_dataset, hostile, queue_draws, blind=True)
    _answer(trained_dataset, hostile, queue_draws, blind=False)

    html = login(auditor).get(reverse("annotations:reviewer_report", args=[trained_dataset.pk])).content.decode()

    assert "<img src=x" not in html and "&lt;img src=x" in html
    assert "Not enough answers to judge" in html
    assert "<caption" in html and 'scope="row"' in html and 'scope="col"' in html
    assert "style=" not in html.split("<main", 1)[-1] and "<script>" not in html.split("<main", 1)[-1]
    assert html.count('<svg class="bar') == 2  # one blind and one shown bar for the reviewer


def test_the_api_gives_the_figures_with_their_counts_and_the_rule(trained_dataset, reviewer, auditor, queue_draws):
    _answer(trained_dataset, reviewer, queue_draws, blind=True, agree=False, ms=3000)
    _answer(trained_dataset, reviewer, queue_draws, blind=False, ms=1000)

    data = login(auditor).get(reverse("api_reviewer_report", args=[trained_dataset.pk])).json()

    assert data["rule"]["min_accept_rate"] == 0.9 and data["flagged"] == 0
    (row,) = data["reviewers"]
    assert (row["id"], row["username"]) == (reviewer.pk, reviewer.username)
    assert row["blind_agreement"] == {"value": 0.0, "count": 0, "total": 1}
    assert row["shown_agreement"] == {"value": 1.0, "count": 1, "total": 1}
    assert row["counts"]["blind_labelled"] == 1 and row["counts"]["shown_accept"] == 1
    assert row["flag"]["status"] == NOT_ENOUGH


def test_the_page_costs_the_same_statements_whatever_the_reviews(
    trained_dataset, reviewer, reviewer2, model_admin, queue_draws, django_assert_num_queries
):
    client = login(model_admin)
    url = reverse("annotations:reviewer_report", args=[trained_dataset.pk])

    def statements() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    _answer(trained_dataset, reviewer, queue_draws, blind=True)
    few = statements()
    for who in (reviewer, reviewer2):
        for blind in (True, False, True, False):
            _answer(trained_dataset, who, queue_draws, blind=blind)

    assert statements() == few
    # session, user with their roles, the dataset with the membership, the counts, the medians
    with django_assert_num_queries(5):
        client.get(url)
