"""Fine-tuning vs full retraining through the training run (issue 9, point 4): the policy chooses; a torch champion
is warm-started on the new gold labels plus a seeded replay of earlier ones, and both are evaluated the same way."""

from __future__ import annotations

import re

from django.db import transaction

from models_app.models import ModelVersion, RetrainingPolicy, TrainingRun
from models_app.services import champion_set, training_run_request
from models_app.training import training_run_execute
from tests.helpers import review_next


def _train(dataset, user):  # type: ignore[no-untyped-def]
    run = training_run_request(dataset=dataset, trigger="manual", requested_by=user, dispatch=False)
    version = training_run_execute(run_id=run.pk)
    assert version is not None, TrainingRun.objects.get(pk=run.pk).error
    return version


def test_a_torch_champion_is_fine_tuned_on_new_labels_with_replay_and_judged_like_any_candidate(
    trained_dataset, model_admin, reviewer
):
    RetrainingPolicy.objects.filter(dataset=trained_dataset).update(
        algorithm="torch_mlp", hyperparameters={"epochs": 20, "fine_tune_epochs": 3}, min_class_examples=2
    )
    scratch = _train(trained_dataset, model_admin)
    assert scratch.fit_info["trained_on"].endswith("trained from scratch")
    with transaction.atomic():
        champion_set(model_version=scratch, actor=model_admin, reason="torch champion")
    for _ in range(4):
        review_next(trained_dataset, reviewer)
    RetrainingPolicy.objects.filter(dataset=trained_dataset).update(mode="fine_tune", replay_fraction=0.5)

    tuned = _train(trained_dataset, model_admin)

    info = tuned.fit_info
    assert info["warm_started_from"] == scratch.artifact_sha256
    # Half replayed (4), topped up when that uniform draw left a class under the policy's minimum of 2.
    words = rf"fine-tuned from v{scratch.version} on 4 new gold labels and (\d+) replayed"
    replayed = re.match(words, info["trained_on"])
    assert replayed and 4 <= int(replayed.group(1)) <= 6, info["trained_on"]
    assert tuned.metrics["holdout"]["n"] == 20 and "paired" in tuned.metrics["holdout"]


def test_fine_tuning_falls_back_to_a_full_retrain_and_says_why(trained_dataset, model_admin):
    # The champion is a logistic regression: a torch model cannot start from it.
    RetrainingPolicy.objects.filter(dataset=trained_dataset).update(
        algorithm="torch_mlp", hyperparameters={"epochs": 5}, mode="fine_tune", min_class_examples=2
    )
    version = _train(trained_dataset, model_admin)
    champion = ModelVersion.objects.get(dataset=trained_dataset, stage="champion")
    assert "cannot fine-tune" in version.fit_info["trained_on"]
    assert champion.algorithm in version.fit_info["trained_on"]
    assert version.fit_info["warm_started_from"] is None
