"""models_app reads, with permission checks."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.http import Http404

from annotations.selectors import dataset_get_for_user
from governance.roles import Role, require_role
from models_app.models import ModelVersion, TrainingRun

User = AbstractBaseUser | AnonymousUser
READ_ROLES = (Role.MODEL_ADMIN, Role.AUDITOR)


def run_get_for_user(*, user: User, pk: int) -> TrainingRun:
    # Role first, as dataset_get_for_user does: without it a 404 would reveal which ids exist.
    require_role(user, *READ_ROLES)
    try:
        run = TrainingRun.objects.select_related("dataset", "requested_by", "snapshot").get(pk=pk)
    except TrainingRun.DoesNotExist as exc:
        raise Http404("No such training run.") from exc
    dataset_get_for_user(user=user, pk=run.dataset_id, roles=READ_ROLES)
    return run


def model_version_get_for_user(*, user: User, pk: int, roles: tuple[Role, ...] = READ_ROLES) -> ModelVersion:
    require_role(user, *roles)
    try:
        version = ModelVersion.objects.select_related("dataset", "training_run", "snapshot").get(pk=pk)
    except ModelVersion.DoesNotExist as exc:
        raise Http404("No such model version.") from exc
    dataset_get_for_user(user=user, pk=version.dataset_id, roles=roles)
    return version


def comparison_rows(run: TrainingRun) -> list[dict]:
    """Candidate vs champion on the holdout, metric by metric (for the table and the chart)."""
    evaluations = {e.role: e for e in run.evaluations.all()}
    candidate = evaluations.get("candidate")
    champion = evaluations.get("champion")
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
