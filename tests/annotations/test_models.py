"""The models' own guards (annotations/models.py). The database's: test_review_immutability_in_database.py."""

from __future__ import annotations

import pytest

from annotations.models import Review
from tests.helpers import review_next


def test_reviews_are_immutable(trained_dataset, reviewer, broker):
    review = review_next(trained_dataset, reviewer)
    review.reason = "changed my mind"
    review.decision = Review.Decision.CORRECT

    with pytest.raises(ValueError, match="immutable"):
        review.save()

    review.refresh_from_db()
    assert review.reason == ""
    assert review.decision == Review.Decision.ACCEPT
