from unittest import mock

from django.test import override_settings

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
