"""A dataset whose next candidate fails a subgroup gate for a real reason (issue 10's governance browser test).

Built only through the services that users' clicks reach (dataset_create, import_batch_create, the queue and
review_submit, training_run_request/execute, the four-eyes promotion), seeded throughout:

* admin1 creates "Clinics": radius and texture, and the clinic's ``site`` (A or B), marked sensitive, so every
  holdout evaluation reports each site as a subgroup with a bootstrap interval (models_app/ml/evaluation.py).
  A site is judged by the subgroup gate only with at least 30 holdout rows; the holdout has 60 from A, 40 from B.
* The seed's labels: site A's were exported from a legacy rule ("malignant only above 17 mm", which misses
  most smaller malignant tumours), site B's come from pathology (right). v1, trained on them, is right on B
  and poor on A; admin1 requests its promotion and admin2 signs it.
* Site A then sends pathology-confirmed labels for new cases (an import), while site B's reviewer works through
  a pool of B's cases from the queue, still applying the legacy rule: their reviews "correct" most malignant
  items to benign, and become those items' gold labels.
* v2, trained on all of it, is better than v1 overall and on A, and clearly worse on B: only the gate
  "subgroup site = B" fails (the paired 95% interval of v2's accuracy minus v1's on B's holdout rows lies wholly
  below −5 points, the tolerance), the overall gates pass. That is what subgroup gates are for: the overall figure
  hides the regression.
* A later unlabelled batch from both sites stays open: v1 predicts it, and whichever version becomes champion
  predicts it again (where the lineage of an item that v2 predicted starts).

Both versions are gradient-boosted trees (the dataset's retraining policy), which can learn a rule per site as
the reviewers taught it; a linear model would blur the two sites instead. On seeds 1 to 6 and the default the
same gates fail and pass; the default leaves the upper end of B's interval some 15 points below the line.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.contrib.auth.models import User

from annotations.models import Dataset, ImportBatch
from tests.helpers import MODEL_ADMIN, MODEL_ADMIN2, PASSWORD, csv_bytes, make_user
from workflow_site.access import Role

SLUG = "clinics"
SITE_FEATURE = "site"
FAILING_SUBGROUP = "B"
ALGORITHM = "hist_gradient_boosting"
SEED = 20261128
LEGACY_THRESHOLD_MM = 17.0  # the old rule: "malignant only above 17 mm"; the current guideline has no such rule
N_SEED_A, N_SEED_B, N_HOLD_A, N_HOLD_B, N_NEW_A, N_POOL_B = 40, 40, 60, 40, 60, 80


@dataclass(frozen=True)
class GovernanceWorld:
    dataset: Dataset
    admin: User  # admin1: imports, trains, requests
    signer: User  # admin2: signed v1's promotion; decides v2's
    reviewer: User  # site B's reviewer, still on the legacy rule: wrong
    v1_id: int  # the champion
    v2_id: int  # the candidate that fails the gate "subgroup site = B"
    open_item_ids: list[int]  # the later batch, still open: predicted by whichever version is champion

    @property
    def failing_gate(self) -> str:
        return f"subgroup {SITE_FEATURE} = {FAILING_SUBGROUP}"


def _rows(rng: np.random.Generator, *, site: str, n: int, prefix: str, labels: str | None) -> list[dict]:
    """Half malignant, half benign by radius (most malignant radii lie below the legacy threshold); texture is
    noise. `labels`: "truth", "legacy" (what the old rule says) or None (unlabelled)."""
    rows = []
    for i in range(n):
        malignant = i % 2 == 0
        radius = round(float(rng.normal(15.5 if malignant else 10.0, 1.5)), 2)
        row = {"external_id": f"{prefix}{i:03d}", "radius": radius, "texture": round(float(rng.normal(15, 3)), 2)}
        row[SITE_FEATURE] = site
        if labels is not None:
            row["label"] = _label(malignant=malignant, radius=radius, rule=labels)
        rows.append(row)
    return rows


def _label(*, malignant: bool, radius: float, rule: str) -> str:
    if rule == "legacy":
        malignant = radius > LEGACY_THRESHOLD_MM
    return "malignant" if malignant else "benign"


def governance_world_build(*, seed: int = SEED) -> GovernanceWorld:
    """Build the world above (about 300 rows, 80 reviews, two trainings); committed unless the caller's transaction
    is rolled back, so it serves a live-server test and a shared world layer alike."""
    from annotations.datasets import FeatureInput, LabelInput, dataset_create
    from annotations.imports import import_batch_create
    from annotations.models import LabelClass
    from annotations.queue import queue_next_item
    from annotations.services import ReviewAnswer, review_submit
    from governance.promotions import promotion_decide, promotion_request_create
    from models_app.models import ModelVersion, TrainingRun
    from models_app.prediction import open_item_ids, predictions_create
    from models_app.services import PolicyChoice, retraining_policy_update, training_run_request
    from models_app.training import training_run_execute

    rng = np.random.default_rng(seed)
    admin = make_user(MODEL_ADMIN, Role.MODEL_ADMIN)
    dataset = dataset_create(
        user=admin,
        name="Clinics",
        slug=SLUG,
        description="Two clinics' measurements; the site is a sensitive attribute.",
        features=[
            FeatureInput("radius", unit="mm"),
            FeatureInput("texture", unit="grey levels"),
            FeatureInput(
                SITE_FEATURE,
                dtype="category",
                categories=["A", "B"],
                is_sensitive=True,
                description="The clinic that took the measurement.",
            ),
        ],
        labels=[LabelInput("malignant", "Malignant"), LabelInput("benign", "Benign")],
    )
    signer = make_user(MODEL_ADMIN2, Role.MODEL_ADMIN, dataset=dataset)
    reviewer = make_user("reviewer_b", Role.REVIEWER, dataset=dataset)
    # Training is started by hand here, never by the reviews' count.
    retraining_policy_update(
        dataset=dataset,
        user=admin,
        choice=PolicyChoice(enabled=False, new_gold_labels=20, algorithm=ALGORITHM),
    )

    def imported(name: str, rows: list[dict], purpose: str = ImportBatch.Purpose.REVIEW) -> ImportBatch:
        return import_batch_create(dataset=dataset, user=admin, file_name=name, data=csv_bytes(rows), purpose=purpose)

    # Site A's historical labels were exported from the legacy rule; site B's come from pathology.
    seed_rows = _rows(rng, site="A", n=N_SEED_A, prefix="seed-a", labels="legacy")
    seed_rows += _rows(rng, site="B", n=N_SEED_B, prefix="seed-b", labels="truth")
    imported("seed.csv", seed_rows)
    holdout = _rows(rng, site="A", n=N_HOLD_A, prefix="hold-a", labels="truth")
    holdout += _rows(rng, site="B", n=N_HOLD_B, prefix="hold-b", labels="truth")
    imported("holdout.csv", holdout, ImportBatch.Purpose.HOLDOUT)

    def trained(reason: str, run_seed: int) -> ModelVersion:
        run = training_run_request(
            dataset=dataset,
            trigger=TrainingRun.Trigger.MANUAL,
            requested_by=admin,
            reason=reason,
            dispatch=False,
            seed=run_seed,
        )
        version = training_run_execute(run_id=run.pk)
        assert version is not None, TrainingRun.objects.get(pk=run.pk).error
        return version

    v1 = trained("first model", seed)
    request = promotion_request_create(password=PASSWORD, model_version=v1, user=admin, reason="first model")
    promotion_decide(request_id=request.pk, user=signer, approve=True, password=PASSWORD, reason="ok")

    labels = {label.name: label for label in LabelClass.objects.filter(dataset=dataset)}

    # Site A's pathology-confirmed new cases: right.
    imported("site-a-pathology.csv", _rows(rng, site="A", n=N_NEW_A, prefix="path-a", labels="truth"))
    # Site B's pool, reviewed from the queue by the legacy rule: wrong.
    rows = _rows(rng, site="B", n=N_POOL_B, prefix="pool-b", labels="legacy")
    answers = {row["external_id"]: row.pop("label") for row in rows}
    pool = imported("pool-b.csv", rows)
    # The champion predicts new open items once the import commits; asked here too, for a builder run inside a
    # transaction that never commits (a shared world layer). Idempotent: nothing is predicted twice.
    predictions_create(model_version=v1, item_ids=open_item_ids(dataset.pk, batch_id=pool.pk), update_items=True)
    while (queued := queue_next_item(dataset=dataset, reviewer=reviewer)) is not None:
        item = queued.item
        answer = ReviewAnswer(
            label=labels[answers[item.external_id]],
            shown_prediction_id=item.prediction_id,
            reason="by the 17 mm rule",
        )
        review_submit(item_id=item.pk, reviewer=reviewer, answer=answer)

    v2 = trained("site A's pathology labels and site B's reviews", seed + 1)
    later = imported(
        "later.csv",
        _rows(rng, site="A", n=5, prefix="later-a", labels=None)
        + _rows(rng, site="B", n=5, prefix="later-b", labels=None),
    )
    open_ids = open_item_ids(dataset.pk, batch_id=later.pk)
    predictions_create(model_version=v1, item_ids=open_ids, update_items=True)
    return GovernanceWorld(dataset, admin, signer, reviewer, v1.pk, v2.pk, open_ids)
