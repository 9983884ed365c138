import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from django.core.checks import Warning
from django.db import connection
from django.db.backends.signals import connection_created
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from workflow_site import checks


def test_unwritable_artifact_root_is_an_error(tmp_path):
    locked = tmp_path / "file-not-folder"
    locked.write_text("x")
    with override_settings(ARTIFACT_ROOT=locked / "artifacts"):
        errors = checks.artifact_root_writable()
    assert [e.id for e in errors] == ["loupe.E001"]


def test_writable_artifact_root_passes(tmp_path):
    with override_settings(ARTIFACT_ROOT=tmp_path / "artifacts"):
        assert checks.artifact_root_writable() == []


def test_plain_http_on_a_public_host_is_warned():
    with override_settings(DEBUG=False, HTTPS=False, ALLOWED_HOSTS=["loupe.example.org"]):
        assert [w.id for w in checks.cookies_over_plain_http()] == ["loupe.W001"]
    with override_settings(DEBUG=False, HTTPS=False, ALLOWED_HOSTS=["localhost"]):
        assert checks.cookies_over_plain_http() == []


def test_postgres_with_the_filesystem_broker_is_warned():
    with mock.patch("workflow_site.checks._database_engine", return_value="django.db.backends.postgresql"):
        with override_settings(CELERY_BROKER_URL="filesystem://localhost//"):
            assert [w.id for w in checks.filesystem_broker_with_shared_database()] == ["loupe.W002"]
        with override_settings(CELERY_BROKER_URL="redis://127.0.0.1:6379/0"):
            assert checks.filesystem_broker_with_shared_database() == []


# --- the database checks at a serving process's first connection (loupe.W004, W005) ----------------------------


@pytest.fixture
def at_first_connection() -> Iterator[None]:
    """The receiver a serving process connects at start-up, removed again whatever the test did."""
    checks.database_checks_at_first_connection()
    yield
    connection_created.disconnect(dispatch_uid=checks._AT_FIRST_CONNECTION)


def _connected() -> None:
    """What connection_created hands the receiver when the default connection opens (only this receiver)."""
    checks._check_at_first_connection(sender=type(connection), connection=connection)


def _registered() -> bool:
    return any(entry[0][0] == checks._AT_FIRST_CONNECTION for entry in connection_created.receivers)


def test_a_serving_process_logs_the_database_checks_once_at_its_first_connection(at_first_connection, caplog):
    found = [Warning("The app connects as a superuser.", hint="Use the app role.", id="loupe.W004")]
    with mock.patch("workflow_site.checks.run_checks", return_value=found) as run, caplog.at_level(logging.WARNING):
        _connected()
        _connected()  # a later connection (the next request) checks nothing

    run.assert_called_once_with(tags=["database"], databases=["default"])
    assert [r.getMessage() for r in caplog.records if r.name == "workflow_site.checks"] == [
        "loupe.W004: The app connects as a superuser. Hint: Use the app role."
    ]
    assert not _registered()


def test_a_silenced_check_stays_silent_and_another_database_does_not_count(at_first_connection, caplog, settings):
    settings.SILENCED_SYSTEM_CHECKS = ["loupe.W005"]
    found = [Warning("The app owns the audit table.", id="loupe.W005")]
    with mock.patch("workflow_site.checks.run_checks", return_value=found), caplog.at_level(logging.WARNING):
        with mock.patch.object(connection, "alias", "replica"):
            _connected()
        assert _registered()  # not the default database: still waiting for it
        _connected()

    assert not [r for r in caplog.records if r.name == "workflow_site.checks"] and not _registered()


def test_a_check_that_fails_is_logged_never_raised_into_the_request(at_first_connection, caplog):
    with mock.patch("workflow_site.checks.run_checks", side_effect=RuntimeError("boom")):
        _connected()
    assert "The database system checks could not run at start-up." in caplog.text


def test_the_web_entry_points_and_the_celery_signals_connect_it_without_touching_the_database(db):
    import importlib

    from celery.signals import beat_init, worker_init

    from workflow_site import asgi, celery, wsgi

    at_start = celery._database_checks_at_first_connection
    # Called here rather than sent: the other receivers of these signals start a real worker's machinery.
    assert at_start in worker_init._live_receivers(None) and at_start in beat_init._live_receivers(None)
    try:
        for start in (lambda: importlib.reload(wsgi), lambda: importlib.reload(asgi), at_start):
            connection_created.disconnect(dispatch_uid=checks._AT_FIRST_CONNECTION)
            with CaptureQueriesContext(connection) as queries:
                start()
            assert _registered() and len(queries) == 0
    finally:
        connection_created.disconnect(dispatch_uid=checks._AT_FIRST_CONNECTION)


def test_importing_the_wsgi_app_and_makemigrations_need_no_database():
    """The serving entry point imports, and the plain checks pass, with PostgreSQL unreachable."""
    env = {**os.environ, "DATABASE_URL": "postgres://nobody@127.0.0.1:9/unreachable", "DEBUG": "true"}
    env.setdefault("SECRET_KEY", "x")
    root = Path(__file__).resolve().parents[2]
    imported = subprocess.run(
        [sys.executable, "-c", "import workflow_site.wsgi"], cwd=root, env=env, capture_output=True, timeout=120
    )
    assert imported.returncode == 0, imported.stderr.decode()
    checked = subprocess.run(
        [sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"],
        cwd=root,
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stderr.decode()
    assert b"loupe.W004" not in checked.stderr + checked.stdout


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the role check is PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_on_postgresql_a_superuser_connection_is_warned_at_the_first_connection(at_first_connection, caplog):
    connection.close()  # the suite connects as a superuser; the next query opens a new connection
    with caplog.at_level(logging.WARNING):
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")

    assert "loupe.W004: The app connects to PostgreSQL as" in caplog.text and "a superuser" in caplog.text
