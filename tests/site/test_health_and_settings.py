"""The health check, the settings' refusals of unsafe configuration, and the browser-facing protections."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

from django.test import Client
from django.urls import reverse

from models_app.models import RetrainingPolicy
from tests.conftest import PASSWORD, login

ROOT = Path(__file__).resolve().parents[2]


# --- /health/ -----------------------------------------------------------------------


def test_health_reports_database_and_broker_ok_as_json(db):
    response = Client().get(reverse("health"))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True
    assert body["database"]["vendor"] in ("sqlite", "postgresql")
    assert body["broker"]["ok"] is True
    assert body["broker"]["transport"]
    assert isinstance(body["database"]["ms"], float) and isinstance(body["broker"]["ms"], float)


def test_health_is_reachable_without_logging_in_and_is_never_cached(db):
    response = Client().get("/health/")

    assert response.status_code == 200  # not a redirect to the login page
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


def test_health_says_degraded_but_answers_200_when_the_broker_is_down(db):
    from workflow_site.celery import app

    # The broker is the outside world: point it at a port nothing listens on.
    original = (app.conf.broker_url, app.conf.broker_write_url)
    app.conf.broker_url = app.conf.broker_write_url = "amqp://guest:guest@127.0.0.1:1//"
    try:
        response = Client().get("/health/")
    finally:
        app.conf.broker_url, app.conf.broker_write_url = original

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["database"]["ok"] is True
    assert body["broker"]["ok"] is False
    assert body["broker"]["error"]


def test_health_does_not_tell_anonymous_callers_why_the_database_failed(db):
    with mock.patch(
        "workflow_site.health.connection.cursor", side_effect=RuntimeError("role loupe_svc does not exist")
    ):
        response = Client().get("/health/")
    assert response.status_code == 503
    assert "loupe_svc" not in response.content.decode()
    assert response.json()["database"] == {"ok": False, "error": "unreachable (see the server log)"}


# --- settings refuse unsafe configuration -----------------------------------------


def _django_setup_in_subprocess(
    code: str = "print('configured')", **overrides: str | None
) -> subprocess.CompletedProcess[str]:
    """Start Django in a fresh interpreter with these environment changes (None removes a variable)."""
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = "workflow_site.settings"
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_settings_refuse_to_start_without_a_secret_key_outside_debug():
    result = _django_setup_in_subprocess(DEBUG=None, SECRET_KEY="")

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY is not set" in result.stderr
    assert "configured" not in result.stdout


def test_settings_allow_a_missing_secret_key_only_in_debug():
    result = _django_setup_in_subprocess(DEBUG="true", SECRET_KEY="")

    assert result.returncode == 0, result.stderr
    assert "configured" in result.stdout


def test_settings_refuse_a_wildcard_allowed_hosts():
    result = _django_setup_in_subprocess(ALLOWED_HOSTS="loupe.example.org,*", SECRET_KEY="x" * 50)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "ALLOWED_HOSTS must not contain '*'" in result.stderr


def test_settings_refuse_an_unparseable_debug_flag():
    result = _django_setup_in_subprocess(DEBUG="maybe", SECRET_KEY="x" * 50)

    assert result.returncode != 0
    assert "DEBUG='maybe' is not a boolean" in result.stderr


def test_debug_is_off_and_hosts_are_local_by_default():
    result = _django_setup_in_subprocess(
        "from django.conf import settings; print(settings.DEBUG, sorted(settings.ALLOWED_HOSTS))",
        DEBUG=None,
        ALLOWED_HOSTS=None,
        SECRET_KEY="x" * 50,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False ['127.0.0.1', '[::1]', 'localhost']"


# --- browser protections -------------------------------------------------------------


def test_pages_refuse_to_be_framed(db):
    response = Client().get(reverse("login"))

    assert response.status_code == 200
    assert response["X-Frame-Options"] == "DENY"


def test_signed_in_pages_refuse_to_be_framed_too(reviewer):
    response = login(reviewer).get(reverse("home"))

    assert response.status_code == 200
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_a_login_post_without_a_csrf_token_is_refused(reviewer):
    response = Client(enforce_csrf_checks=True).post(reverse("login"), {"username": "reviewer", "password": PASSWORD})

    assert response.status_code == 403
    assert "_auth_user_id" not in response.wsgi_request.session


def test_a_login_post_with_the_csrf_token_works(reviewer):
    client = Client(enforce_csrf_checks=True)
    client.get(reverse("login"))
    token = client.cookies["csrftoken"].value

    response = client.post(
        reverse("login"), {"username": "reviewer", "password": PASSWORD, "csrfmiddlewaretoken": token}
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("home")


def test_a_signed_in_form_post_without_a_csrf_token_is_refused_and_changes_nothing(dataset, model_admin):
    client = Client(enforce_csrf_checks=True)
    client.force_login(model_admin)

    response = client.post(reverse("models_app:policy", args=[dataset.pk]), {"enabled": "on", "new_gold_labels": "99"})

    assert response.status_code == 403
    assert RetrainingPolicy.objects.get(dataset=dataset).new_gold_labels == 5


def test_a_session_authenticated_api_post_without_a_csrf_token_is_refused(dataset, model_admin):
    from models_app.models import TrainingRun

    client = Client(enforce_csrf_checks=True)
    client.force_login(model_admin)

    response = client.post(
        f"/api/datasets/{dataset.pk}/training-runs/", {"reason": "csrf"}, content_type="application/json"
    )

    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert not TrainingRun.objects.filter(dataset=dataset).exists()


def test_every_response_carries_its_own_request_id(db):
    first = Client().get(reverse("login"))
    second = Client().get(reverse("login"))

    assert len(first["X-Request-ID"]) == 32
    assert first["X-Request-ID"] != second["X-Request-ID"]
