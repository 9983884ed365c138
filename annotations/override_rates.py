"""Override rates per reviewer and per class over time (issue 10, point 6: human oversight).

How often do reviewers overrule the model they are shown? A week-by-week rate per reviewer and per
predicted class, with the counts behind every rate, for a dataset's model admins and its auditors.
A rate falling towards zero is what automation bias looks like from outside; a class whose rate
climbs is where the model is failing people.

Which reviews count. An *answer* here is a reviewer's standing answer to a card that showed the
model's prediction: mode "open", a prediction label shown (shown_label_id set), decision accept,
correct or uncertain, and not superseded by a later review of theirs (a revision replaces it, an
undo withdraws it; the undone card's re-answer is a fresh answer and counts). So each card a
reviewer answered with the prediction in view counts once, with their final word on it.
  - override = "correct" (the reviewer's label differs from the shown prediction's);
  - accept = "accept"; the override rate is overrides / (accepts + overrides);
  - uncertain is counted apart: a refusal to decide is neither agreeing nor overruling.
Left out: blind answers (the prediction was hidden when they answered, and answers given while the
stop switch hides the model are blind too), revisions made after a blind answer's reveal (a
reviewer answers again only when they change their mind, so counting these would count every
change and none of the kept answers), skips, undos, answers to items with no prediction, and
adjudicators' decisions.

Classes are the *predicted* class the reviewer was shown (shown_label): "when the model says
malignant, how often is it overruled?". Weeks run Monday to Sunday in the site's time zone
(settings.TIME_ZONE); an answer falls in the week it was given (for a revision, the revision's).

Cost. The period is bounded (default the last 12 weeks, at most MAX_WEEKS) and whole weeks. One
statement: a GROUP BY over the period's answers by week (truncated in the database: TruncWeek,
date_trunc on PostgreSQL), reviewer and shown class, returning a row per (week, reviewer, class),
which Python adds up per reviewer and per class; no review becomes a Python object. The reviews
are found by the review_created_item index (created_at, item): a range scan over the period, each
one's dataset read from the item index by its primary key; whether a later review supersedes an
answer is an anti-join on the supersedes_id index. The page costs 6 statements in all (session,
user, roles, dataset, membership, the grouping), the same at any size. Its time grows with the
answers in the period, not with the table. Measured with bench/override_rates.py on the shared
2-core dev machine under load (PostgreSQL; 1.09M reviews of 500,000 items by 16 reviewers, 2023 to
2025): 12 weeks holding 71,500 answers, 0.26 s for the selector (bitmap scan of review_created_item
over the period, nested loops on the item and supersedes indexes; two groupings took 0.9 s); 104
weeks holding 664,000 answers, 2.3 s (there the planner reads the whole table, as it should for 60%
of it). Well past that, the page wants a weekly summary kept by the review services.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.core.exceptions import ValidationError
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.db.models.functions import TruncWeek
from django.utils import timezone

from annotations.models import Dataset, Review
from annotations.selectors import dataset_get_for_user
from workflow_site.access import MODEL_READ_ROLES, AnyUser

DEFAULT_WEEKS = 12
MAX_WEEKS = 104  # two years of weekly buckets: the table stays readable and the scan bounded
CHART_SERIES = 8  # lines drawn per chart (those with the most answers); the table lists every one

ACCEPT, CORRECT, UNCERTAIN = Review.Decision.ACCEPT, Review.Decision.CORRECT, Review.Decision.UNCERTAIN


@dataclass(frozen=True)
class Tally:
    """The answers behind one rate: accepts, overrides (corrections) and uncertain answers."""

    accepts: int = 0
    overrides: int = 0
    uncertain: int = 0

    @property
    def decided(self) -> int:
        """Answers that took a side: the rate's denominator."""
        return self.accepts + self.overrides

    @property
    def answers(self) -> int:
        return self.decided + self.uncertain

    @property
    def rate(self) -> float | None:
        """overrides / (accepts + overrides); None when there is nothing to divide by."""
        return self.overrides / self.decided if self.decided else None

    @property
    def percent(self) -> float | None:
        return None if self.rate is None else round(100 * self.rate, 1)

    def __add__(self, other: Tally) -> Tally:
        return Tally(self.accepts + other.accepts, self.overrides + other.overrides, self.uncertain + other.uncertain)


@dataclass(frozen=True)
class WeekTally:
    week: date  # the Monday
    tally: Tally


@dataclass(frozen=True)
class Series:
    """One reviewer's or one class's weeks, every week of the period (empty weeks as zeros)."""

    id: int
    name: str
    weeks: tuple[WeekTally, ...]

    @property
    def total(self) -> Tally:
        return sum((w.tally for w in self.weeks), Tally())


@dataclass(frozen=True)
class Period:
    """Whole weeks: from a Monday to a Sunday, both included."""

    start: date
    end: date

    @property
    def weeks(self) -> tuple[date, ...]:
        count = (self.end - self.start).days // 7 + 1
        return tuple(self.start + timedelta(weeks=n) for n in range(count))

    def bounds(self) -> tuple[datetime, datetime]:
        """[start, end + 1 day) as aware datetimes at local midnight (the week buckets' time zone)."""
        zone = timezone.get_current_timezone()
        first = datetime.combine(self.start, time.min, tzinfo=zone)
        after = datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=zone)
        return first, after


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _parse(value: str | date | None, field: str) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value.strip())
    except ValueError as exc:
        raise ValidationError({field: f"{value[:40]!r} is not a date: give it as YYYY-MM-DD."}) from exc


def override_period(*, start: str | date | None, end: str | date | None, today: date | None = None) -> Period:
    """The period asked for, widened to whole weeks (start back to its Monday, end on to its Sunday).

    Without an end: this week. Without a start: DEFAULT_WEEKS weeks up to the end. ValidationError
    naming the field for a date that does not parse, a start after the end, or more than MAX_WEEKS weeks.
    """
    today = today or timezone.localdate()
    first, last = _parse(start, "start"), _parse(end, "end")
    last_monday = _monday(last or today)
    first_monday = _monday(first) if first else last_monday - timedelta(weeks=DEFAULT_WEEKS - 1)
    if first_monday > last_monday:
        raise ValidationError({"start": f"The start ({first}) is after the end ({last or today})."})
    period = Period(start=first_monday, end=last_monday + timedelta(days=6))
    if len(period.weeks) > MAX_WEEKS:
        raise ValidationError(
            {"start": f"That is {len(period.weeks)} weeks; ask for at most {MAX_WEEKS} weeks at a time."}
        )
    return period


@dataclass(frozen=True)
class ChartLine:
    """One series drawn: polylines (a week without answers breaks the line) and a dot per week with one."""

    series: Series
    style: int  # which of the stylesheet's series styles (colour and dash)
    segments: tuple[str, ...]  # SVG points attributes
    dots: tuple[tuple[float, float, date, Tally], ...]  # x, y, week, tally


@dataclass(frozen=True)
class Chart:
    lines: tuple[ChartLine, ...]
    x_ticks: tuple[tuple[float, date], ...]
    left_out: int  # series not drawn (fewer answers than those drawn); they are in the table


# The drawing box in SVG user units: x = the weeks, y = the override rate, 0% at the bottom.
CHART_WIDTH, CHART_HEIGHT = 200.0, 100.0


def override_chart(series: Iterable[Series], weeks: tuple[date, ...]) -> Chart:
    """The line chart's geometry (pure): the CHART_SERIES series with the most answers, by name."""
    ranked = sorted((s for s in series if s.total.decided), key=lambda s: (-s.total.decided, s.name))
    drawn = sorted(ranked[:CHART_SERIES], key=lambda s: (s.name, s.id))
    step = CHART_WIDTH / (len(weeks) - 1) if len(weeks) > 1 else 0.0

    def x(n: int) -> float:
        return round(n * step if len(weeks) > 1 else CHART_WIDTH / 2, 2)

    lines = []
    for style, s in enumerate(drawn):
        segments: list[list[str]] = [[]]
        dots = []
        for n, w in enumerate(s.weeks):
            if w.tally.rate is None:
                if segments[-1]:
                    segments.append([])
                continue
            y = round(CHART_HEIGHT * (1 - w.tally.rate), 2)
            segments[-1].append(f"{x(n)},{y}")
            dots.append((x(n), y, w.week, w.tally))
        lines.append(ChartLine(s, style, tuple(" ".join(p) for p in segments if len(p) > 1), tuple(dots)))
    every = max(1, -(-len(weeks) // 6))  # about six date labels, whatever the period
    ticks = tuple((x(n), week) for n, week in enumerate(weeks) if n % every == 0)
    return Chart(lines=tuple(lines), x_ticks=ticks, left_out=len(ranked) - len(drawn))


@dataclass(frozen=True)
class OverrideRates:
    dataset: Dataset
    period: Period
    reviewers: tuple[Series, ...]
    classes: tuple[Series, ...]

    @property
    def total(self) -> Tally:
        return sum((s.total for s in self.reviewers), Tally())

    @property
    def reviewer_chart(self) -> Chart:
        return override_chart(self.reviewers, self.period.weeks)

    @property
    def class_chart(self) -> Chart:
        return override_chart(self.classes, self.period.weeks)


def _answers(dataset_id: int, period: Period) -> QuerySet[Review]:
    """The standing answers given with a prediction shown, in the dataset and the period (module docstring)."""
    first, after = period.bounds()
    superseded = Review.objects.filter(supersedes_id=OuterRef("pk"))
    return (
        Review.objects.filter(
            item__dataset_id=dataset_id,
            created_at__gte=first,
            created_at__lt=after,
            mode=Review.Mode.OPEN,
            decision__in=(ACCEPT, CORRECT, UNCERTAIN),
            shown_label_id__isnull=False,
        )
        .filter(~Exists(superseded))
        .annotate(week=TruncWeek("created_at"))
        .order_by()
    )


def _grouped(answers: QuerySet[Review]) -> list[dict]:
    """One statement: the counts per (week, reviewer, shown class), with the names joined in.

    One grouping, not two (by reviewer, by class): the answers are read once, and the rows it returns
    are bounded by weeks x reviewers x classes, which Python adds up both ways (_series).
    """
    return list(
        answers.values("week", "reviewer_id", "reviewer__username", "shown_label_id", "shown_label__name").annotate(
            accepts=Count("pk", filter=Q(decision=ACCEPT)),
            overrides=Count("pk", filter=Q(decision=CORRECT)),
            uncertain=Count("pk", filter=Q(decision=UNCERTAIN)),
        )
    )


def _week_of(value: datetime | date) -> date:
    """The bucket's Monday as a date (TruncWeek gives an aware datetime at local midnight)."""
    return timezone.localtime(value).date() if isinstance(value, datetime) else value


def _series(rows: list[dict], key: str, name: str, weeks: tuple[date, ...]) -> tuple[Series, ...]:
    """The rows summed per `key` (reviewer or class) and week, every week of the period listed."""
    names: dict[int, str] = {}
    tallies: dict[tuple[int, date], Tally] = {}
    for row in rows:
        names[row[key]] = row[name]
        cell = (row[key], _week_of(row["week"]))
        tallies[cell] = tallies.get(cell, Tally()) + Tally(row["accepts"], row["overrides"], row["uncertain"])
    series = [
        Series(id=pk, name=label, weeks=tuple(WeekTally(w, tallies.get((pk, w), Tally())) for w in weeks))
        for pk, label in names.items()
    ]
    return tuple(sorted(series, key=lambda s: (s.name, s.id)))


def dataset_override_rates_for_user(
    *, user: AnyUser, dataset_id: int, start: str | date | None = None, end: str | date | None = None
) -> OverrideRates:
    """Weekly override rates per reviewer and per shown class, for the dataset's model admins and auditors.

    The role check comes first (dataset_get_for_user), so a forbidden dataset is a 403 whatever the
    query asks; then the period (override_period: ValidationError naming the field); then one
    grouped statement (module docstring). Reviewers and classes with no answer in the period are
    not listed.
    """
    dataset = dataset_get_for_user(user=user, pk=dataset_id, roles=MODEL_READ_ROLES)
    period = override_period(start=start, end=end)
    rows = _grouped(_answers(dataset.pk, period))
    return OverrideRates(
        dataset=dataset,
        period=period,
        reviewers=_series(rows, "reviewer_id", "reviewer__username", period.weeks),
        classes=_series(rows, "shown_label_id", "shown_label__name", period.weeks),
    )
