"""The candidate's report (issue 9, point 9): every candidate is evaluated against the current champion on the same
holdout with the paired test, subgroups of sensitive features, calibration; the run page says it in words."""

from __future__ import annotations

from django.urls import reverse

from annotations.models import Feature
from models_app.models import Evaluation
from tests.conftest import login
from tests.helpers import candidate_train


def test_the_candidate_is_judged_by_a_paired_test_and_the_page_says_so_in_words(trained_dataset, model_admin):
    Feature.objects.filter(dataset=trained_dataset, name="lobes").update(is_sensitive=True)
    version = candidate_train(trained_dataset, requested_by=model_admin, reason="report")

    stored = Evaluation.objects.get(training_run=version.training_run, role="candidate").metrics
    paired = stored["paired"]
    assert paired["n"] == stored["n"] == 20
    assert paired["verdict"] in ("better", "worse", "not distinguishable")
    assert 0 <= paired["mcnemar_p"] <= 1 and paired["minimum_detectable_effect"] > 0
    low, high = paired["accuracy_difference_ci"]
    assert low <= paired["accuracy_difference"] <= high
    champion = Evaluation.objects.get(training_run=version.training_run, role="champion").metrics
    assert paired["accuracy_champion"] == champion["accuracy"] and paired["accuracy_candidate"] == stored["accuracy"]
    # 20 holdout rows split by a sensitive feature: every group is under the minimum size and is not judged.
    groups = stored["subgroups"]["lobes"]
    assert groups and all(g["accuracy"] is None and g["reason"].startswith("fewer than") for g in groups.values())
    assert len(stored["reliability"]) == stored["ece_bins"] == 10

    page = login(model_admin).get(reverse("models_app:run_detail", args=[version.training_run_id])).content.decode()
    assert f'data-verdict="{paired["verdict"]}"' in page and "exact McNemar p" in page
    assert "Smallest difference this holdout can detect" in page
    assert 'class="chart reliability"' in page and "curve-candidate" in page and "curve-champion" in page
    assert "Confusion matrix" in page and "Subgroups of the sensitive features" in page and "fewer than" in page
    assert "How it was fitted" in page and version.fit_info["label"] in page


def test_a_tiny_difference_on_a_small_holdout_reads_as_not_distinguishable(trained_dataset, model_admin):
    version = candidate_train(trained_dataset, requested_by=model_admin, reason="same data again")
    paired = Evaluation.objects.get(training_run=version.training_run, role="candidate").metrics["paired"]
    # Same labels, a different seed: at most a row or two apart on 20 rows, never "better".
    assert abs(paired["net_rows"]) <= 2
    assert paired["verdict"] == "not distinguishable" and "could detect" in paired["verdict_words"]
