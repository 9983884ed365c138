"""Shadow mode (issue 9, point 10): a candidate predicts beside the champion, unseen, and is scored afterwards.

A model admin puts one candidate per dataset in shadow. From then on it predicts
the open items and every new import (after the champion, in the same refresh
task), its predictions are stored as `Prediction` rows of its own version and
are never copied onto the item, so no card, page or API shows them to a
reviewer. For each open item the champion and the shadow both predicted, the
disagreement score is their total variation distance,
½ Σ |p_champion − p_shadow| in [0, 1] (0: same probabilities; 1: each is sure
of a different class), which is what the workbench's disagreement strategy
orders the queue by.

The report scores both against what reviewers decided: over the items that
have a reviewed gold label (review, consensus or adjudication, never an
imported label) and a shadow prediction, how often the shadow's label differs
from the champion's label the reviewer was shown, and on those items who was
right.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from annotations.models import Dataset, GoldLabel, Item, QueueStrategy
from governance.audit import audit_record
from models_app.models import ModelVersion, Prediction

logger = logging.getLogger(__name__)
CHUNK = 5000


def shadow_start(*, model_version: ModelVersion, user: AbstractBaseUser, reason: str) -> ModelVersion:
    """Put a candidate in shadow (the dataset's previous shadow, if any, stops). Precondition: `user` is a model
    admin of the dataset. ValidationError, changing nothing, for the champion, a retired version or no reason."""
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": "Say why this version should run in shadow."})
    with transaction.atomic():
        Dataset.objects.select_for_update(no_key=True).get(pk=model_version.dataset_id)  # lock order: dataset first
        version = ModelVersion.objects.select_for_update(no_key=True).get(pk=model_version.pk)
        if version.stage != ModelVersion.Stage.CANDIDATE:
            raise ValidationError(f"Only a candidate runs in shadow; v{version.version} is {version.stage}.")
        if version.shadow_since is not None:
            raise ValidationError(f"v{version.version} is already in shadow.")
        for previous in ModelVersion.objects.filter(dataset_id=version.dataset_id, shadow_since__isnull=False):
            _shadow_end(previous, user, f"v{version.version} takes its place in shadow")
        version.shadow_since = timezone.now()
        version.save(update_fields=["shadow_since"])
        audit_record(
            actor=user,
            action="model_version.shadow_started",
            obj=version,
            object_type="model_version",
            dataset_id=version.dataset_id,
            after={"version": version.version, "shadow_since": version.shadow_since},
            reason=reason,
        )
        dataset_id, version_id = version.dataset_id, version.pk
        transaction.on_commit(lambda: shadow_predictions_dispatch(dataset_id=dataset_id, model_version_id=version_id))
    return version


def shadow_stop(*, model_version: ModelVersion, user: AbstractBaseUser, reason: str) -> ModelVersion:
    with transaction.atomic():
        Dataset.objects.select_for_update(no_key=True).get(pk=model_version.dataset_id)
        version = ModelVersion.objects.select_for_update(no_key=True).get(pk=model_version.pk)
        if version.shadow_since is None:
            raise ValidationError(f"v{version.version} is not in shadow.")
        _shadow_end(version, user, reason.strip() or "stopped by hand")
    return version


def _shadow_end(version: ModelVersion, user: AbstractBaseUser | None, reason: str) -> None:
    """In the caller's transaction. The disagreement scores it wrote stay until a new shadow rewrites them."""
    since = version.shadow_since
    ModelVersion.objects.filter(pk=version.pk).update(shadow_since=None)
    version.shadow_since = None
    audit_record(
        actor=user,
        action="model_version.shadow_stopped",
        obj=version,
        object_type="model_version",
        dataset_id=version.dataset_id,
        before={"shadow_since": since},
        after={"version": version.version},
        reason=reason,
    )


def shadow_predictions_dispatch(*, dataset_id: int, model_version_id: int) -> bool:
    from models_app import tasks

    try:
        tasks.shadow_predictions_refresh.delay(dataset_id, model_version_id)
    except Exception:  # the broker is down: the next champion refresh (or the sweep) predicts for the shadow
        logger.warning("Broker unreachable; shadow predictions for dataset %s wait.", dataset_id, exc_info=True)
        return False
    return True


def shadow_predictions_refresh(*, dataset_id: int, item_ids: list[int] | None = None) -> int:
    """The dataset's shadow (if any) predicts the given open items (default: all open ones) that it has not
    predicted yet, and every such item's disagreement score is written. Returns how many it predicted."""
    from models_app.prediction import open_item_ids, predictions_create

    shadow = ModelVersion.objects.filter(dataset_id=dataset_id, shadow_since__isnull=False).first()
    if shadow is None:
        return 0
    ids = sorted(item_ids) if item_ids is not None else open_item_ids(dataset_id)
    done = set(Prediction.objects.filter(model_version=shadow, item_id__in=ids).values_list("item_id", flat=True))
    written = predictions_create(model_version=shadow, item_ids=[i for i in ids if i not in done], update_items=False)
    for start in range(0, len(ids), CHUNK):
        disagreement_write(shadow=shadow, item_ids=ids[start : start + CHUNK])
    return written


def disagreement_write(*, shadow: ModelVersion, item_ids: list[int]) -> int:
    """Write champion-vs-shadow disagreement (and, under the disagreement strategy, the queue priority) onto the
    open items among `item_ids` that both have predicted. Returns how many items were scored."""
    shown = dict(
        Item.objects.filter(pk__in=item_ids, queue_state=Item.QueueState.OPEN, prediction_id__isnull=False).values_list(
            "pk", "predicted_probabilities"
        )
    )
    theirs = dict(
        Prediction.objects.filter(model_version=shadow, item_id__in=list(shown)).values_list("item_id", "probabilities")
    )
    ids = sorted(set(shown) & set(theirs))
    if not ids:
        return 0
    classes = list(shadow.class_names)
    champion = np.asarray([[float((shown[i] or {}).get(c, 0.0)) for c in classes] for i in ids])
    candidate = np.asarray([[float(theirs[i].get(c, 0.0)) for c in classes] for i in ids])
    scores = np.round(0.5 * np.abs(champion - candidate).sum(axis=1), 6).clip(0.0, 1.0).tolist()
    strategy = Dataset.objects.filter(pk=shadow.dataset_id).values_list("queue_strategy", flat=True).get()
    by_disagreement = strategy == QueueStrategy.DISAGREEMENT
    table = Item._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        priority = "1.0 - s.score" if by_disagreement else "item.queue_priority"
        strategy_sql = "%s" if by_disagreement else "item.priority_strategy"
        if connection.vendor == "postgresql":
            source, item_id, score = "unnest(%s::bigint[], %s::float8[]) AS s(item_id, score)", "s.item_id", "s.score"
            params: list[object] = [ids, scores]
        else:
            source = (
                "(SELECT json_extract(value, '$[0]') AS item_id, json_extract(value, '$[1]') AS score"
                " FROM json_each(%s)) AS s"
            )
            item_id, score = "s.item_id", "s.score"
            params = [json.dumps([[i, v] for i, v in zip(ids, scores, strict=True)])]
        cursor.execute(
            f"UPDATE {table} AS item SET disagreement_score = {score}, queue_priority = {priority},"
            f" priority_strategy = {strategy_sql} FROM {source}"
            f" WHERE item.id = {item_id} AND item.queue_state = %s",
            [*([strategy] if by_disagreement else []), *params, Item.QueueState.OPEN],
        )
    return len(ids)


@dataclass(frozen=True)
class ShadowReport:
    version: ModelVersion
    compared: int  # reviewed items with a shadow prediction
    differ: int  # of those, where the shadow's label differs from the champion's shown label
    champion_right: int  # overall, against the reviewed gold label
    shadow_right: int
    differ_champion_right: int  # on the items where they differ
    differ_shadow_right: int
    differ_neither: int

    @property
    def differ_rate(self) -> float | None:
        return self.differ / self.compared if self.compared else None

    @property
    def champion_accuracy(self) -> float | None:
        return self.champion_right / self.compared if self.compared else None

    @property
    def shadow_accuracy(self) -> float | None:
        return self.shadow_right / self.compared if self.compared else None


def shadow_report(*, model_version: ModelVersion) -> ShadowReport:
    """Shadow and champion against what reviewers decided (module docstring). Counts in the database."""
    reviewed = GoldLabel.objects.filter(
        dataset_id=model_version.dataset_id,
        origin__in=[GoldLabel.Origin.REVIEW, GoldLabel.Origin.CONSENSUS, GoldLabel.Origin.ADJUDICATION],
        item__predicted_label__isnull=False,
    )
    rows = list(
        Prediction.objects.filter(model_version=model_version, item__gold_label__in=reviewed).values_list(
            "label_id", "item__predicted_label_id", "item__gold_label__label_id"
        )
    )
    shadow = np.asarray([r[0] for r in rows], dtype=np.int64)
    champion = np.asarray([r[1] for r in rows], dtype=np.int64)
    gold = np.asarray([r[2] for r in rows], dtype=np.int64)
    differ = shadow != champion
    return ShadowReport(
        version=model_version,
        compared=len(rows),
        differ=int(differ.sum()),
        champion_right=int((champion == gold).sum()),
        shadow_right=int((shadow == gold).sum()),
        differ_champion_right=int((differ & (champion == gold)).sum()),
        differ_shadow_right=int((differ & (shadow == gold)).sum()),
        differ_neither=int((differ & (champion != gold) & (shadow != gold)).sum()),
    )
