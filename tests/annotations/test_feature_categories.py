"""A category feature needs its allowed values: without them every imported row would be refused."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from annotations.models import Feature
from governance.models import AuditEvent
from tests.helpers import PASSWORD, login

NO_CATEGORIES = "A category feature needs at least one allowed value"


def _feature(dataset, **fields) -> Feature:  # type: ignore[no-untyped-def]
    return Feature(dataset=dataset, position=9, name="grade", dtype=Feature.Dtype.CATEGORY, **fields)


@pytest.mark.parametrize(
    ("categories", "problem"),
    [
        ([], NO_CATEGORIES),
        ("low,high", "a list of values"),
        (["low", ""], "empty"),
        (["low", 3], "text"),
        (["low", " high"], "spaces"),
        (["low", "low"], "more than once"),
    ],
    ids=["empty", "a-string-not-a-list", "an-empty-value", "a-number", "surrounding-spaces", "a-duplicate"],
)
def test_a_category_feature_with_unusable_categories_is_refused_by_full_clean(dataset, categories, problem):
    with pytest.raises(ValidationError) as refused:
        _feature(dataset, categories=categories).full_clean()

    assert problem in " ".join(refused.value.message_dict["categories"])


def test_a_category_feature_with_categories_is_valid(dataset):
    _feature(dataset, categories=["low", "high"]).full_clean()


def test_a_number_feature_needs_no_categories(dataset):
    Feature(dataset=dataset, position=9, name="age", dtype=Feature.Dtype.INTEGER).full_clean()


def test_the_database_refuses_a_category_feature_with_no_categories(dataset):
    with pytest.raises(IntegrityError), transaction.atomic():
        _feature(dataset, categories=[]).save()

    assert not Feature.objects.filter(name="grade").exists()


def test_the_admin_refuses_a_category_feature_with_no_categories_and_audits_nothing(dataset):
    client = login(User.objects.create_superuser("root-admin", password=PASSWORD))
    features = list(dataset.features.order_by("position"))
    data = {
        "name": dataset.name,
        "slug": dataset.slug,
        "description": dataset.description,
        "guideline_version": dataset.guideline_version,
        "features-TOTAL_FORMS": str(len(features) + 1),
        "features-INITIAL_FORMS": str(len(features)),
        "label_classes-TOTAL_FORMS": "0",
        "label_classes-INITIAL_FORMS": "0",
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
    }
    for i, feature in enumerate(features):
        data.update(
            {
                f"features-{i}-id": feature.pk,
                f"features-{i}-dataset": dataset.pk,
                f"features-{i}-position": feature.position,
                f"features-{i}-name": feature.name,
                f"features-{i}-dtype": feature.dtype,
                f"features-{i}-categories": "[]",
            }
        )
    new = len(features)
    data.update(
        {
            f"features-{new}-dataset": dataset.pk,
            f"features-{new}-position": 9,
            f"features-{new}-name": "grade",
            f"features-{new}-dtype": Feature.Dtype.CATEGORY,
            f"features-{new}-categories": "[]",
        }
    )

    response = client.post(f"/admin/annotations/dataset/{dataset.pk}/change/", data)

    assert response.status_code == 200  # the form comes back with the error
    assert NO_CATEGORIES in response.content.decode()
    assert not Feature.objects.filter(name="grade").exists()
    assert not AuditEvent.objects.filter(action="feature.created").exists()
