"""models_app reads, with permission checks."""

from __future__ import annotations

from dataclasses import dataclass

from annotations.models import Dataset
from annotations.selectors import dataset_get_for_user
from models_app.comparison import MetricComparison, Verdict, compare_metrics, regressions
from models_app.models import DatasetSnapshot, Evaluation, ModelVersion, RetrainingPolicy, TrainingRun
from workflow_site.access import (
    MODEL_READ_ROLES,
    AnyUser,
    Role,
    missing_record,
    require_dataset_access,
    require_role,
)


def run_get_for_user(*, user: AnyUser, pk: int, roles: tuple[Role, ...] = MODEL_READ_ROLES) -> TrainingRun:
    # Role first, as dataset_get_for_user does: without it a 404 would reveal which ids exist.
    require_role(user, *roles)
    try:
        run = TrainingRun.objects.select_related("dataset", "requested_by", "snapshot").get(pk=pk)
    except TrainingRun.DoesNotExist as exc:
        raise missing_record(user, roles, "training run") from exc
    require_dataset_access(user, run.dataset, roles)
    return run


def snapshot_get_for_user(*, user: AnyUser, pk: int, roles: tuple[Role, ...] = MODEL_READ_ROLES) -> DatasetSnapshot:
    require_role(user, *roles)
    try:
        snapshot = DatasetSnapshot.objects.select_related("dataset").get(pk=pk)
    except DatasetSnapshot.DoesNotExist as exc:
        raise missing_record(user, roles, "snapshot") from exc
    require_dataset_access(user, snapshot.dataset, roles)
    return snapshot


def model_version_get_for_user(*, user: AnyUser, pk: int, roles: tuple[Role, ...] = MODEL_READ_ROLES) -> ModelVersion:
    require_role(user, *roles)
    try:
        version = ModelVersion.objects.select_related("dataset", "training_run", "snapshot").get(pk=pk)
    except ModelVersion.DoesNotExist as exc:
        raise missing_record(user, roles, "model version") from exc
    require_dataset_access(user, version.dataset, roles)
    return version


@dataclass(frozen=True)
class ModelsOverview:
    """What the models page shows for one dataset: its versions, recent runs and policy."""

    dataset: Dataset
    versions: list[ModelVersion]
    runs: list[TrainingRun]
    policy: RetrainingPolicy | None
    champion: ModelVersion | None
    comparisons: dict[int, ChampionComparison]

    def versions_compared(self) -> list[tuple[ModelVersion, ChampionComparison]]:
        return [(v, self.comparisons[v.pk]) for v in self.versions]

    @property
    def active_run(self) -> TrainingRun | None:
        return next((run for run in self.runs if run.is_active), None)

    @property
    def shadow(self) -> ModelVersion | None:
        return next((v for v in self.versions if v.shadow_since is not None), None)


def models_overview_get_for_user(*, user: AnyUser, dataset_id: int, recent_runs: int = 25) -> ModelsOverview:
    dataset = dataset_get_for_user(user=user, pk=dataset_id, roles=MODEL_READ_ROLES)
    versions = list(dataset.model_versions.select_related("training_run", "snapshot"))
    champion = next((v for v in versions if v.is_champion), None)
    return ModelsOverview(
        dataset=dataset,
        versions=versions,
        champion=champion,
        comparisons=champion_comparisons(versions=versions, champion=champion),
        runs=list(
            TrainingRun.objects.filter(dataset=dataset).select_related("requested_by", "model_version")[:recent_runs]
        ),
        policy=RetrainingPolicy.objects.filter(dataset=dataset).first(),
    )


NOT_COMPARABLE = "not comparable: evaluated on different holdouts"


@dataclass(frozen=True)
class ChampionComparison:
    """One version against the *current* champion, on the same sequestered holdout.

    `rows` always lists the version's own holdout metrics; they carry a
    reference value and a verdict only when the champion was measured on the
    very same holdout (same content hash). Otherwise `not_compared` says why in
    words, and nothing is compared.
    """

    version: ModelVersion
    champion: ModelVersion | None
    rows: list[MetricComparison]
    holdout_size: int | None
    not_compared: str = ""

    @property
    def is_champion(self) -> bool:
        return self.champion is not None and self.champion.pk == self.version.pk

    @property
    def compared(self) -> bool:
        return self.champion is not None and not self.is_champion and not self.not_compared

    @property
    def regressions(self) -> list[MetricComparison]:
        return regressions(self.rows) if self.compared else []

    @property
    def summary_symbol(self) -> str:
        if not self.compared:
            return ""
        if self.regressions:
            return "▼"
        return "▲" if any(row.verdict is Verdict.BETTER for row in self.rows) else "="

    @property
    def summary_words(self) -> str:
        """The verdict in one phrase, for a table cell: worse first, as that is what a promoter must see."""
        if self.is_champion:
            return "the current champion"
        if not self.compared:
            return self.not_compared
        worse = self.regressions
        better = [row for row in self.rows if row.verdict is Verdict.BETTER]
        if worse:
            words = "worse on " + ", ".join(row.label.lower() for row in worse)
            return words + ("; better on " + ", ".join(row.label.lower() for row in better) if better else "")
        if better:
            return "better on " + ", ".join(row.label.lower() for row in better)
        return "same as the champion within tolerance"

    @property
    def is_retired(self) -> bool:
        return self.version.stage == ModelVersion.Stage.RETIRED

    def warnings(self, *, retired_is_a_warning: bool = True) -> list[str]:
        """What someone promoting this version must have seen: retired, or worse than the champion.
        A rollback puts a retired version back on purpose: it passes retired_is_a_warning=False."""
        name = f"v{self.version.version}"
        found = []
        if self.is_retired and retired_is_a_warning:
            found.append(f"{name} is retired: it was the champion before and was replaced.")
        if self.champion is not None:
            champion = f"the current champion v{self.champion.version}"
            found.extend(row.sentence(candidate_name=name, reference_name=champion) for row in self.regressions)
        return found


def champion_comparisons(
    *, versions: list[ModelVersion], champion: ModelVersion | None
) -> dict[int, ChampionComparison]:
    """Each version against `champion` (the dataset's current one), in one query for all evaluations."""
    wanted = {v.pk for v in versions} | ({champion.pk} if champion else set())
    own: dict[int, Evaluation] = {}
    measured: dict[tuple[int, str], dict] = {}
    for evaluation in Evaluation.objects.filter(model_version__in=wanted):
        measured.setdefault((evaluation.model_version_id, evaluation.holdout_hash), evaluation.metrics)
        if evaluation.role == Evaluation.Role.CANDIDATE:
            own[evaluation.model_version_id] = evaluation
    result = {}
    for version in versions:
        evaluation = own.get(version.pk)
        metrics = evaluation.metrics if evaluation else (version.metrics.get("holdout") or {})
        size = evaluation.holdout_size if evaluation else metrics.get("n")
        reference, why = None, ""
        if not size:
            why = "not evaluated on a holdout"
        elif champion is None:
            why = "there is no champion to compare with"
        elif champion.pk != version.pk:
            # The champion's metrics on this version's holdout: from its own run, or
            # measured as the champion during this version's run.
            reference = measured.get((champion.pk, evaluation.holdout_hash)) if evaluation else None
            if reference is None:
                why = NOT_COMPARABLE
        result[version.pk] = ChampionComparison(
            version=version,
            champion=champion,
            rows=compare_metrics(metrics, reference),
            holdout_size=size,
            not_compared=why,
        )
    return result


def champion_comparison(version: ModelVersion) -> ChampionComparison:
    """`version` against its dataset's current champion (read now, not at training time)."""
    champion = ModelVersion.objects.filter(dataset_id=version.dataset_id, stage=ModelVersion.Stage.CHAMPION).first()
    return champion_comparisons(versions=[version], champion=champion)[version.pk]
