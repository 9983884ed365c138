"""The out-of-time set (issue 9, point 9): at the decision, candidate and current champion are also compared on the
corrections reviewers made after both froze their training data, rows neither model has seen."""

from __future__ import annotations

from django.urls import reverse

from annotations.models import GoldLabel
from governance.promotions import promotion_request_create
from models_app.holdout_evaluation import out_of_time_compare
from models_app.models import ModelVersion, SnapshotLabel
from tests.conftest import PASSWORD, login
from tests.helpers import candidate_train, review_next


def test_the_promotion_page_judges_both_models_on_corrections_neither_has_seen(
    trained_dataset, model_admin, model_admin2, reviewer
):
    champion = ModelVersion.objects.get(dataset=trained_dataset, stage="champion")
    candidate = candidate_train(trained_dataset, requested_by=model_admin, reason="out of time")
    request = promotion_request_create(
        password=PASSWORD, model_version=candidate, user=model_admin, reason="try it", acknowledge_regressions=True
    )
    url = reverse("governance:promotion_detail", args=[request.pk])
    assert 'data-out-of-time-rows="0"' in login(model_admin2).get(url).content.decode()

    answered = [review_next(trained_dataset, reviewer, accept=i % 3 != 0) for i in range(6)]

    comparison = out_of_time_compare(version=candidate, champion=champion)
    seen = set(
        SnapshotLabel.objects.filter(snapshot__in=[candidate.snapshot, champion.snapshot]).values_list(
            "item_id", flat=True
        )
    )
    assert not seen & {r.item_id for r in answered}
    assert comparison.rows == 6 == GoldLabel.objects.filter(item_id__in=[r.item_id for r in answered]).count()
    assert comparison.paired["n"] == 6 and comparison.paired["verdict"] in ("better", "worse", "not distinguishable")
    page = login(model_admin2).get(url).content.decode()
    assert 'data-out-of-time-rows="6"' in page and "neither model" in page and "exact McNemar p" in page
