"""Two signings of one narrative at the same moment (a double click, two tabs): exactly one signature.

PostgreSQL only (SQLite takes one database-wide write lock, so writers cannot interleave), with
committed data so each thread's own connection sees it."""

from __future__ import annotations

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections

from governance.models import DocumentNarrativeSignature, Signature
from governance.narratives import narrative_sign, narrative_write
from models_app.models import ModelVersion
from tests.helpers import PASSWORD

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks that let writers interleave"),
    pytest.mark.django_db(transaction=True),
]


def test_two_reviewers_clicks_at_once_give_one_signature(trained_dataset, model_admin, model_admin2):
    champion = ModelVersion.objects.get(dataset=trained_dataset, stage="champion")
    narrative = narrative_write(
        user=model_admin,
        document="model_card",
        subject=champion,
        sections={"intended_use": "Second reader."},
        sign=True,
        password=PASSWORD,
    )
    barrier, outcomes = threading.Barrier(2), []

    def sign() -> None:
        try:
            barrier.wait(timeout=10)
            narrative_sign(user=model_admin2, narrative=narrative, meaning="reviewed", password=PASSWORD)
            outcomes.append("signed")
        except ValidationError as exc:
            outcomes.append(" ".join(exc.messages))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sign) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(outcomes) == ["You have reviewed this version already.", "signed"]
    reviewed = DocumentNarrativeSignature.objects.filter(narrative=narrative, signature__meaning="reviewed")
    assert reviewed.count() == 1 and Signature.objects.filter(signer=model_admin2, meaning="reviewed").count() == 1
