"""The stop switch (human oversight, EU AI Act Art. 14(4)(e); issue 10, point 6).

A model admin can switch the model's output off for a dataset, at once and
with a recorded reason: reviewers then see no prediction, no confidence and no
explanation on any card or API answer, and the queue no longer ranks items by
the model but serves them in uniform random order (the audit slice's own
order, `item_audit_slice`), so the work goes on without the model steering it.
Answers are recorded as blind (nothing shown) and are never followed by a
reveal. Switching it back on is the same act, audited the same way.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from annotations.models import Dataset
from governance.audit import audit_record


def dataset_model_output_switch(*, dataset_id: int, user: AbstractBaseUser, off: bool, reason: str) -> Dataset:
    """Switch the model's output off (reason required) or back on. Precondition: `user` is a model admin of
    the dataset. ValidationError, changing nothing, without a reason or when it is already in that state."""
    reason = reason.strip()[:2000]
    if not reason:
        raise ValidationError({"reason": "Say why the model's output is switched " + ("off." if off else "back on.")})
    with transaction.atomic():
        dataset = Dataset.objects.select_for_update(no_key=True).get(pk=dataset_id)
        if dataset.model_output_off == off:
            raise ValidationError(f"The model's output is already {'off' if off else 'on'} for {dataset.name}.")
        before = {"model_output_off_since": dataset.model_output_off_since, "reason": dataset.model_output_off_reason}
        dataset.model_output_off_since = timezone.now() if off else None
        dataset.model_output_off_reason = reason if off else ""
        dataset.save(update_fields=["model_output_off_since", "model_output_off_reason"])
        audit_record(
            actor=user,
            action="dataset.model_output_switched_off" if off else "dataset.model_output_switched_on",
            obj=dataset,
            dataset_id=dataset.pk,
            before=before,
            after={"model_output_off_since": dataset.model_output_off_since},
            reason=reason,
        )
    return dataset
