"""`manage.py seed_demo` (what `make run` loads) leaves a trail an auditor can check from the first minute."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from governance.checkpoint_signing import new_private_key_b64
from governance.checkpoints import audit_trail_verify
from governance.models import AuditCheckpoint

pytestmark = pytest.mark.django_db


def test_the_seed_signs_a_checkpoint_once_where_a_key_is_set_and_the_trail_verifies(settings, tmp_path):
    settings.VAR_DIR = tmp_path  # the demo's credentials file
    settings.LOUPE_AUDIT_SIGNING_KEY, settings.DEBUG = "", False
    unsigned = io.StringIO()
    call_command("seed_demo", stdout=unsigned)  # one seed (it trains the first model): the runs below reuse it
    assert "No audit checkpoint signed: LOUPE_AUDIT_SIGNING_KEY is not set" in unsigned.getvalue()
    assert not AuditCheckpoint.objects.exists()

    settings.LOUPE_AUDIT_SIGNING_KEY = new_private_key_b64()
    signed = io.StringIO()
    call_command("seed_demo", stdout=signed)  # `make run` seeds on every start
    call_command("seed_demo", stdout=signed)  # nothing new to sign the second time

    assert signed.getvalue().count("Audit checkpoint signed over the first") == 1
    assert AuditCheckpoint.objects.count() == 1
    result = audit_trail_verify()
    assert result.ok and result.checkpoints_checked == 1
