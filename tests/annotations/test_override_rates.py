"""Override rates (issue 10, point 6): which answers count, the weekly buckets, the chart, the page and the API."""

from __future__ import annotations

import datetime as dt
from datetime import date, timedelta
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import reverse
from django.utils import timezone

from annotations.models import Dataset, Item, LabelClass, Review
from annotations.override_rates import (
    CHART_SERIES,
    MAX_WEEKS,
    Series,
    Tally,
    WeekTally,
    dataset_override_rates_for_user,
    override_chart,
    override_period,
)
from annotations.queue import queue_next_item
from annotations.services import ReviewAnswer, review_revise, review_submit
from tests.helpers import login, make_user, other_label
from workflow_site.access import Role

# --- The period and the pure parts ------------------------------------------------------------------

WEDNESDAY = date(2026, 3, 18)


def test_the_default_period_is_the_last_twelve_whole_weeks():
    period = override_period(start=None, end=None, today=WEDNESDAY)

    assert (period.start, period.end) == (date(2025, 12, 29), date(2026, 3, 22))  # a Monday to a Sunday
    assert len(period.weeks) == 12 and period.weeks[-1] == date(2026, 3, 16)


def test_a_period_asked_for_is_widened_to_whole_weeks():
    period = override_period(start="2026-02-04", end="2026-02-10", today=WEDNESDAY)

    assert (period.start, period.end, len(period.weeks)) == (date(2026, 2, 2), date(2026, 2, 15), 2)


@pytest.mark.parametrize(
    ("start", "end", "field", "words"),
    [
        ("4 Feb", None, "start", "is not a date: give it as YYYY-MM-DD"),
        (None, "2026-02-30", "end", "is not a date"),
        ("2026-03-01", "2026-02-01", "start", "is after the end"),
        ("2023-01-01", "2026-03-01", "start", f"at most {MAX_WEEKS} weeks"),
    ],
)
def test_a_bad_period_is_refused_naming_the_field(start, end, field, words):
    with pytest.raises(ValidationError) as refused:
        override_period(start=start, end=end, today=WEDNESDAY)

    assert words in refused.value.message_dict[field][0]


def test_the_rate_is_overrides_of_decided_answers_and_uncertain_is_apart():
    tally = Tally(accepts=6, overrides=2, uncertain=3)

    assert (tally.decided, tally.answers, tally.rate, tally.percent) == (8, 11, 0.25, 25.0)
    assert Tally(uncertain=2).rate is None


def _series(pk: int, name: str, rates: list[tuple[int, int] | None], weeks: tuple[date, ...]) -> Series:
    tallies = [Tally() if r is None else Tally(accepts=r[0], overrides=r[1]) for r in rates]
    return Series(pk, name, tuple(WeekTally(w, t) for w, t in zip(weeks, tallies, strict=True)))


def test_the_chart_breaks_a_line_at_a_week_without_answers_and_puts_0_percent_at_the_bottom():
    weeks = override_period(start="2026-01-05", end="2026-02-01", today=WEDNESDAY).weeks  # 4 weeks
    line = override_chart([_series(1, "ann", [(1, 1), (2, 0), None, (0, 3)], weeks)], weeks).lines[0]

    assert line.segments == ("0.0,50.0 66.67,100.0",)  # the lone last week is a dot, not a segment
    assert [(x, y) for x, y, _, _ in line.dots] == [(0.0, 50.0), (66.67, 100.0), (200.0, 0.0)]


def test_the_chart_draws_the_series_with_most_answers_and_says_how_many_are_left_out():
    weeks = (date(2026, 1, 5),)
    many = [_series(n, f"r{n:02d}", [(n, 1)], weeks) for n in range(CHART_SERIES + 3)]
    many.append(_series(99, "silent", [None], weeks))

    chart = override_chart(many, weeks)

    assert len(chart.lines) == CHART_SERIES and chart.left_out == 3
    assert {line.series.name for line in chart.lines} == {f"r{n:02d}" for n in range(3, CHART_SERIES + 3)}
    assert chart.lines[0].dots[0][0] == 100.0  # one week: in the middle


# --- The selector, on reviews made through the services --------------------------------------------


def _serve(dataset: Dataset, reviewer: User, *, blind: bool, queue_draws) -> Item:  # type: ignore[no-untyped-def]
    Dataset.objects.filter(pk=dataset.pk).update(blind_percent=100 if blind else 0)
    queue_draws.return_value = 0.0
    queued = queue_next_item(dataset=Dataset.objects.get(pk=dataset.pk), reviewer=reviewer)
    assert queued is not None and queued.blind is blind
    return Item.objects.select_related("predicted_label").get(pk=queued.item.pk)


def _answer(dataset, reviewer, queue_draws, *, blind=False, agree=True, uncertain=False, skip=False) -> Review:  # type: ignore[no-untyped-def]
    item = _serve(dataset, reviewer, blind=blind, queue_draws=queue_draws)
    label = None if uncertain or skip else (item.predicted_label if agree else other_label(item))
    answer = ReviewAnswer(label=label, shown_prediction_id=item.prediction_id, uncertain=uncertain)
    return review_submit(item_id=item.pk, reviewer=reviewer, answer=answer)


def _revise(review: Review, reviewer: User, *, agree: bool | None) -> Review:
    """Revise to the model's label (agree), to another (not agree), or undo (None)."""
    item = Item.objects.select_related("predicted_label").get(pk=review.item_id)
    answer = None
    if agree is not None:
        label = item.predicted_label if agree else other_label(item)
        answer = ReviewAnswer(label=label, shown_prediction_id=item.prediction_id)
    return review_revise(review_id=review.pk, reviewer=reviewer, answer=answer)


def _row(series: tuple[Series, ...], pk: int) -> Series:
    return next(s for s in series if s.id == pk)


def test_only_standing_answers_given_with_the_prediction_shown_count(
    trained_dataset, reviewer, reviewer2, model_admin, queue_draws
):
    for agree in (True, True, False):
        _answer(trained_dataset, reviewer, queue_draws, agree=agree)
    _answer(trained_dataset, reviewer, queue_draws, uncertain=True)
    _answer(trained_dataset, reviewer, queue_draws, skip=True)  # not an answer
    blind = _answer(trained_dataset, reviewer, queue_draws, blind=True, agree=False)  # prediction hidden
    _revise(blind, reviewer, agree=False)  # a revision after the reveal: left out too
    revised = _answer(trained_dataset, reviewer, queue_draws, agree=True)
    _revise(revised, reviewer, agree=False)  # the standing answer is now an override
    undone = _answer(trained_dataset, reviewer, queue_draws, agree=False)
    _revise(undone, reviewer, agree=None)  # withdrawn: counts for nothing until answered again
    _answer(trained_dataset, reviewer2, queue_draws, agree=False)

    rates = dataset_override_rates_for_user(user=model_admin, dataset_id=trained_dataset.pk)

    ann = _row(rates.reviewers, reviewer.pk).total
    assert (ann.accepts, ann.overrides, ann.uncertain) == (2, 2, 1)
    assert ann.rate == 0.5
    other = _row(rates.reviewers, reviewer2.pk)
    assert (other.total.overrides, other.total.decided, other.name) == (1, 1, reviewer2.username)
    assert other.weeks[-1].tally == other.total  # answered this week, the period's last
    assert (rates.total.overrides, rates.total.decided) == (3, 5)
    # Per class: the class the model predicted, whatever the reviewer answered.
    assert sum(s.total.answers for s in rates.classes) == 6
    # The classes of the counted answers: the skipped and the withdrawn items' classes may be others (which
    # items the queue serves here follows the audit slice's random order, drawn when the world was built).
    superseded = Review.objects.filter(supersedes__isnull=False).values("supersedes_id")
    counted = Review.objects.filter(
        mode="open", shown_label__isnull=False, decision__in=("accept", "correct", "uncertain")
    ).exclude(pk__in=superseded)
    assert counted.count() == 6
    shown = set(counted.values_list("shown_label", flat=True))
    assert {s.id for s in rates.classes} == shown
    assert all(s.name == LabelClass.objects.get(pk=s.id).name for s in rates.classes)


def test_answers_with_no_prediction_and_while_the_stop_switch_is_on_are_left_out(
    trained_dataset, reviewer, auditor, queue_draws
):
    item = _serve(trained_dataset, reviewer, blind=False, queue_draws=queue_draws)
    Item.objects.filter(pk=item.pk).update(prediction_id=None, predicted_label=None, predicted_confidence=None)
    review_submit(
        item_id=item.pk, reviewer=reviewer, answer=ReviewAnswer(label=other_label(item), shown_prediction_id=None)
    )
    Dataset.objects.filter(pk=trained_dataset.pk).update(
        model_output_off_since=timezone.now(), model_output_off_reason="drift"
    )
    queued = queue_next_item(dataset=Dataset.objects.get(pk=trained_dataset.pk), reviewer=reviewer)
    assert queued is not None
    review_submit(
        item_id=queued.item.pk,
        reviewer=reviewer,
        answer=ReviewAnswer(label=other_label(queued.item), shown_prediction_id=queued.item.prediction_id),
    )

    rates = dataset_override_rates_for_user(user=auditor, dataset_id=trained_dataset.pk)

    assert Review.objects.filter(reviewer=reviewer).count() == 2
    assert rates.reviewers == () and rates.classes == ()


def _bulk(items: list[Item], who: User, when: dt.datetime, decisions: list[str]) -> None:
    """Reviews written at `when` (their created_at is set on insert, and reviews cannot be updated)."""
    rows = []
    for n, decision in enumerate(decisions):
        item = items[n % len(items)]
        label = None if decision == "uncertain" else item.predicted_label
        if decision == "correct":
            label = other_label(item)
        rows.append(Review(item=item, reviewer=who, decision=decision, label=label, mode="open",
                           shown_prediction_id=item.prediction_id, shown_label=item.predicted_label,
                           selection_strategy="t", guideline_version="1"))  # fmt: skip
    with mock.patch("django.utils.timezone.now", return_value=when):
        Review.objects.bulk_create(rows)


@override_settings(TIME_ZONE="America/New_York")
def test_answers_fall_in_their_local_week_and_the_period_bounds_are_local_midnights(
    trained_dataset, reviewer, reviewer2, auditor
):
    items = list(
        Item.objects.filter(dataset=trained_dataset, predicted_label__isnull=False).select_related("predicted_label")[
            :10
        ]
    )
    zone = ZoneInfo("America/New_York")
    monday = dt.datetime(2026, 2, 2, tzinfo=zone)
    _bulk(items, reviewer, monday - timedelta(minutes=1), ["correct"])  # Sunday night: the week before
    _bulk(items, reviewer, monday + timedelta(minutes=1), ["accept", "correct", "uncertain"])
    _bulk(items, reviewer, monday + timedelta(days=6, hours=23), ["accept"])  # still that week
    _bulk(items, reviewer2, monday + timedelta(days=7, hours=1), ["correct", "correct", "accept"])
    _bulk(items, reviewer2, monday + timedelta(days=14, hours=1), ["correct"])  # after the period

    rates = dataset_override_rates_for_user(
        user=auditor, dataset_id=trained_dataset.pk, start="2026-02-02", end="2026-02-15"
    )

    assert rates.period.weeks == (date(2026, 2, 2), date(2026, 2, 9))
    ann = _row(rates.reviewers, reviewer.pk)
    assert [w.tally for w in ann.weeks] == [Tally(2, 1, 1), Tally()]
    bob = _row(rates.reviewers, reviewer2.pk)
    assert [w.tally for w in bob.weeks] == [Tally(), Tally(1, 2, 0)]
    assert sum((s.total for s in rates.classes), Tally()) == Tally(3, 3, 1)


# --- The page and the API ------------------------------------------------------------------------


def test_reviewers_and_outsiders_cannot_open_the_page_or_the_api(trained_dataset, reviewer, outsider):
    for user in (reviewer, outsider):
        client = login(user)
        assert client.get(reverse("annotations:override_rates", args=[trained_dataset.pk])).status_code == 403
        assert client.get(reverse("api_override_rates", args=[trained_dataset.pk])).status_code == 403
    # A forbidden dataset is a 403 whatever the query says.
    bad = {"start": "nonsense"}
    assert login(reviewer).get(reverse("api_override_rates", args=[trained_dataset.pk]), bad).status_code == 403


def test_a_model_admin_of_another_dataset_is_refused_and_a_missing_one_is_a_404_for_auditors(trained_dataset, auditor):
    stranger = make_user("stranger_admin", Role.MODEL_ADMIN)

    assert login(stranger).get(reverse("api_override_rates", args=[trained_dataset.pk])).status_code == 403
    assert login(auditor).get(reverse("annotations:override_rates", args=[10**8])).status_code == 404


def test_the_page_shows_chart_and_table_accessibly_and_escapes_names(trained_dataset, auditor, queue_draws):
    hostile = make_user('<img src=x onerror="alert(1)">', Role.REVIEWER, dataset=trained_dataset)
    _answer(trained_dataset, hostile, queue_draws, agree=False)
    _answer(trained_dataset, hostile, queue_draws, agree=True)

    response = login(auditor).get(reverse("annotations:override_rates", args=[trained_dataset.pk]))
    html = response.content.decode()

    assert response.status_code == 200
    assert "<img src=x" not in html and "&lt;img src=x" in html
    assert html.count("<caption") == 2 and 'scope="row"' in html and 'scope="col"' in html
    assert html.count('role="img"') == 2 and "<desc" in html and "50.0% (1 of 2)" in html
    assert "1 of 2" in html
    main = html.split("<main", 1)[-1]
    assert "style=" not in main and "<script" not in main
    assert reverse("annotations:reviewer_report", args=[trained_dataset.pk]) in html
    override_url = reverse("annotations:override_rates", args=[trained_dataset.pk])
    for linked_from in ("annotations:reviewer_report", "annotations:workbench_settings"):
        assert override_url in login(auditor).get(reverse(linked_from, args=[trained_dataset.pk])).content.decode()


def test_a_bad_period_is_a_400_with_the_error_beside_its_field_and_the_default_figures(trained_dataset, model_admin):
    url = reverse("annotations:override_rates", args=[trained_dataset.pk])

    response = login(model_admin).get(url, {"start": "2026-05-01", "end": "2026-01-01"})
    html = response.content.decode()

    assert response.status_code == 400
    assert 'id="period-start-error"' in html and "is after the end" in html and 'aria-invalid="true"' in html
    assert 'value="2026-05-01"' in html  # what they typed stays in the field
    assert "Showing the last 12 weeks" in html


def test_the_api_gives_weekly_tallies_with_rates_and_refuses_a_bad_period(
    trained_dataset, reviewer, model_admin, queue_draws
):
    _answer(trained_dataset, reviewer, queue_draws, agree=False)
    _answer(trained_dataset, reviewer, queue_draws, uncertain=True)
    client = login(model_admin)
    url = reverse("api_override_rates", args=[trained_dataset.pk])

    data = client.get(url).json()

    assert date.fromisoformat(data["start"]).weekday() == 0 and date.fromisoformat(data["end"]).weekday() == 6
    assert data["total"] == {"accepts": 0, "overrides": 1, "uncertain": 1, "rate": 1.0}
    (row,) = data["reviewers"]
    assert (row["id"], row["name"], len(row["weeks"])) == (reviewer.pk, reviewer.username, 12)
    assert row["weeks"][-1] == {"week": row["weeks"][-1]["week"], "accepts": 0, "overrides": 1, "uncertain": 1,
                                "rate": 1.0}  # fmt: skip
    assert row["weeks"][0]["rate"] is None
    refused = client.get(url, {"end": "soon"})
    assert refused.status_code == 400 and "is not a date" in refused.json()["end"][0]


def test_the_page_costs_the_same_statements_whatever_the_reviews(
    trained_dataset, reviewer, reviewer2, model_admin, queue_draws, django_assert_num_queries
):
    client = login(model_admin)
    url = reverse("annotations:override_rates", args=[trained_dataset.pk])

    def statements() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    _answer(trained_dataset, reviewer, queue_draws)
    few = statements()
    for who in (reviewer, reviewer2):
        for agree in (True, False, True):
            _answer(trained_dataset, who, queue_draws, agree=agree)

    assert statements() == few
    # session, user with their roles, the dataset with the membership, the grouping
    with django_assert_num_queries(4):
        client.get(url)
