"""The auditor's event list checks every signature an event records against its record as it is now (issue 10,
point 3: the signature is shown wherever the signed record is shown, and a changed record fails visibly)."""

from __future__ import annotations

from django.urls import reverse

from governance.models import AuditEvent, PromotionRequest
from models_app.models import Evaluation
from tests.conftest import login


def _page(auditor) -> str:  # type: ignore[no-untyped-def]
    return login(auditor).get(reverse("governance:audit_list"), {"action": "promotion.approved"}).content.decode()


def test_a_decision_event_shows_its_signature_verified_and_then_failing_once_the_record_changes(
    trained_dataset, auditor
):
    promotion = PromotionRequest.objects.filter(model_version__dataset=trained_dataset, status="approved").first()
    event = AuditEvent.objects.get(action="promotion.approved", object_id=str(promotion.pk))
    assert event.after["signature"]["id"] == promotion.signature_id

    assert 'data-signature-status="verified"' in _page(auditor)

    Evaluation.objects.filter(training_run=promotion.model_version.training_run).update(holdout_size=1)
    changed = _page(auditor)
    assert 'data-signature-status="record_changed"' in changed and 'role="alert"' in changed
    assert "record changed since signing" in changed


def test_the_batch_hashers_agree_with_the_one_record_hashers(trained_dataset):
    from governance.signing import _BATCH_HASHERS, _HASHERS

    for record_type in ("model_version", "promotion_request"):
        model = {"model_version": "models_app.ModelVersion", "promotion_request": "governance.PromotionRequest"}
        from django.apps import apps

        ids = [str(pk) for pk in apps.get_model(model[record_type]).objects.values_list("pk", flat=True)]
        assert ids
        assert _BATCH_HASHERS[record_type](ids + ["999999"]) == {i: _HASHERS[record_type](i) for i in ids}


def test_a_signature_row_cannot_be_rewritten_to_match_a_changed_record(trained_dataset):
    # Were it writable, setting record_hash to a changed record's new hash would make the change verify again.
    import pytest
    from django.db import DatabaseError, connection, transaction

    from governance.models import Signature

    signature = Signature.objects.filter(record_type="model_version").first()
    with pytest.raises(ValueError, match="append-only"):
        signature.save()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE governance_signature SET record_hash = %s WHERE id = %s", ["0" * 64, signature.pk])
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM governance_signature WHERE id = %s", [signature.pk])
