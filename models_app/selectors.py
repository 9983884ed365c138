"""models_app reads, with permission checks."""

from __future__ import annotations

from dataclasses import dataclass

from annotations.models import Dataset
from annotations.selectors import dataset_get_for_user
from models_app.models import Evaluation, ModelVersion, RetrainingPolicy, TrainingRun
from workflow_site.access import (
    MODEL_READ_ROLES,
    AnyUser,
    Role,
    missing_record,
    require_dataset_access,
    require_role,
)


def run_get_for_user(*, user: AnyUser, pk: int) -> TrainingRun:
    # Role first, as dataset_get_for_user does: without it a 404 would reveal which ids exist.
    require_role(user, *MODEL_READ_ROLES)
    try:
        run = TrainingRun.objects.select_related("dataset", "requested_by", "snapshot").get(pk=pk)
    except TrainingRun.DoesNotExist as exc:
        raise missing_record(user, MODEL_READ_ROLES, "training run") from exc
    require_dataset_access(user, run.dataset, MODEL_READ_ROLES)
    return run


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

    @property
    def active_run(self) -> TrainingRun | None:
        return next((run for run in self.runs if run.is_active), None)


def models_overview_get_for_user(*, user: AnyUser, dataset_id: int, recent_runs: int = 25) -> ModelsOverview:
    dataset = dataset_get_for_user(user=user, pk=dataset_id, roles=MODEL_READ_ROLES)
    return ModelsOverview(
        dataset=dataset,
        versions=list(dataset.model_versions.select_related("training_run", "snapshot")),
        runs=list(
            TrainingRun.objects.filter(dataset=dataset).select_related("requested_by", "model_version")[:recent_runs]
        ),
        policy=RetrainingPolicy.objects.filter(dataset=dataset).first(),
    )


def comparison_rows(run: TrainingRun) -> list[dict]:
    """Candidate vs champion on the holdout, metric by metric (for the table and the chart)."""
    evaluations = {e.role: e for e in run.evaluations.all()}
    candidate = evaluations.get(Evaluation.Role.CANDIDATE)
    champion = evaluations.get(Evaluation.Role.CHAMPION)
    rows = []
    for key, label in (("accuracy", "Accuracy"), ("balanced_accuracy", "Balanced accuracy"), ("macro_f1", "Macro F1")):
        cand = candidate.metrics.get(key) if candidate else None
        champ = champion.metrics.get(key) if champion else None
        rows.append(
            {
                "label": label,
                "candidate": cand,
                "champion": champ,
                "delta": (cand - champ) if cand is not None and champ is not None else None,
                "candidate_pct": round(cand * 100, 1) if cand is not None else None,
                "champion_pct": round(champ * 100, 1) if champ is not None else None,
            }
        )
    for key, label in (("log_loss", "Log loss (lower is better)"), ("brier", "Brier score (lower is better)")):
        cand = candidate.metrics.get(key) if candidate else None
        champ = champion.metrics.get(key) if champion else None
        rows.append(
            {
                "label": label,
                "candidate": cand,
                "champion": champ,
                "delta": (cand - champ) if cand is not None and champ is not None else None,
            }
        )
    return rows
