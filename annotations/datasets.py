"""Creating a dataset with its schema (features and label classes) in one step (issue 7, point 5)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from annotations.models import Dataset, DatasetMembership, Feature, LabelClass
from governance.audit import audit_record

RESERVED_COLUMNS = {"external_id", "label", "observed_at"}


@dataclass(frozen=True)
class FeatureInput:
    name: str
    dtype: str = Feature.Dtype.FLOAT
    unit: str = ""
    normal_min: float | None = None
    normal_max: float | None = None
    categories: list[str] = field(default_factory=list)
    is_sensitive: bool = False
    description: str = ""


@dataclass(frozen=True)
class LabelInput:
    name: str
    display_name: str = ""


def _validated(model: Any, where: str, exclude: list[str]) -> None:
    """full_clean, with every message prefixed by where it is (`features[2].normal_max: …`)."""
    try:
        model.full_clean(exclude=exclude, validate_unique=False, validate_constraints=True)
    except ValidationError as exc:
        raise ValidationError({f"{where}.{key}": messages for key, messages in exc.message_dict.items()}) from None


def dataset_create(
    *,
    user: AbstractBaseUser,
    name: str,
    slug: str,
    features: list[FeatureInput],
    labels: list[LabelInput],
    description: str = "",
    guideline_version: str = "",
    reason_codes: list[dict[str, str]] | None = None,
) -> Dataset:
    """Create the dataset, its features and label classes, make `user` a member, and audit it.

    Precondition: the caller checked that `user` is a model admin. Raises
    ValidationError naming the field (`features[1].categories`) and changes
    nothing when any part is wrong: a name or slug in use, no features, fewer
    than two labels, a duplicate or reserved column name, a bad normal range.
    """
    errors: dict[str, list[str]] = {}
    if not features:
        errors["features"] = ["Give at least one feature."]
    if len(labels) < 2:
        errors["labels"] = ["Give at least two label classes."]
    seen: set[str] = set()
    for index, feature in enumerate(features):
        if feature.name in RESERVED_COLUMNS:
            errors[f"features[{index}].name"] = [f"{feature.name!r} is a reserved import column; choose another name."]
        elif feature.name in seen:
            errors[f"features[{index}].name"] = [f"{feature.name!r} appears twice."]
        seen.add(feature.name)
    label_names = [label.name for label in labels]
    for index, label in enumerate(labels):
        if label_names.index(label.name) != index:
            errors[f"labels[{index}].name"] = [f"{label.name!r} appears twice."]
    if errors:
        raise ValidationError(errors)
    try:
        return _dataset_write(
            user=user,
            name=name,
            slug=slug,
            description=description,
            guideline_version=guideline_version,
            reason_codes=reason_codes or [],
            features=features,
            labels=labels,
        )
    except IntegrityError:
        # Two requests with the same name or slug at once: full_clean passed for both.
        raise ValidationError(
            {"name": "A dataset with this name or slug was created a moment ago; choose another."}
        ) from None


def _dataset_write(
    *,
    user: AbstractBaseUser,
    name: str,
    slug: str,
    description: str,
    guideline_version: str,
    reason_codes: list[dict[str, str]],
    features: list[FeatureInput],
    labels: list[LabelInput],
) -> Dataset:
    label_names = [label.name for label in labels]
    with transaction.atomic():
        dataset = Dataset(name=name, slug=slug, description=description, reason_codes=reason_codes)
        if guideline_version:
            dataset.guideline_version = guideline_version
        try:
            dataset.full_clean()
        except ValidationError as exc:
            raise ValidationError(exc.message_dict) from None
        dataset.save()
        for index, spec in enumerate(features):
            feature = Feature(dataset=dataset, position=index, **spec.__dict__)
            _validated(feature, f"features[{index}]", exclude=["dataset"])
            feature.save()
        for index, spec in enumerate(labels):
            label = LabelClass(dataset=dataset, position=index, name=spec.name, display_name=spec.display_name)
            _validated(label, f"labels[{index}]", exclude=["dataset"])
            label.save()
        DatasetMembership.objects.create(dataset=dataset, user=user)
        audit_record(
            actor=user,
            action="dataset.created",
            obj=dataset,
            object_type="dataset",
            dataset_id=dataset.pk,
            after={
                "name": dataset.name,
                "slug": dataset.slug,
                "guideline_version": dataset.guideline_version,
                "reason_codes": dataset.reason_codes,
                "features": [spec.__dict__ for spec in features],
                "labels": label_names,
            },
        )
    return dataset
