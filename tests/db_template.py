"""pytest plugin (-p tests.db_template): xdist workers clone one migrated test database.

Every xdist worker needs its own test database. Made the usual way, each worker
runs all the migrations itself: about 5 s of CPU each, four times over at the
start of a run, on a machine with two cores. Here the first worker to get the
lock migrates a *template* database once; every worker (that one too) then
copies it, which takes PostgreSQL a `CREATE DATABASE … TEMPLATE` and SQLite a
file copy. The copy is exactly what migrating would have made (schema,
triggers, the groups and permissions post_migrate writes), since it is made
from a database that was migrated that way.

- The controller (the process that starts the workers) names the template and
  its lock file and passes them down in the environment, which the workers
  inherit; it drops the template when the run ends.
- Without xdist (`-n 0`) nothing changes: pytest-django's own setup runs.
- The lock is an advisory file lock, so a worker that dies holding it frees it.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

TEMPLATE_ENV = "LOUPE_TEST_DB_TEMPLATE"
LOCK_ENV = "LOUPE_TEST_DB_TEMPLATE_LOCK"


def _is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _runs_xdist_workers(config: pytest.Config) -> bool:
    return not _is_xdist_worker(config) and bool(getattr(config.option, "numprocesses", None))


def pytest_configure(config: pytest.Config) -> None:
    if _runs_xdist_workers(config):
        os.environ[TEMPLATE_ENV] = f"tmpl{os.getpid()}"
        os.environ[LOCK_ENV] = str(Path(tempfile.gettempdir()) / f"loupe-test-db-{os.getpid()}.lock")


def pytest_unconfigure(config: pytest.Config) -> None:
    if not _runs_xdist_workers(config) or TEMPLATE_ENV not in os.environ:
        return
    from django.conf import settings

    name = _template_name(settings.DATABASES["default"])
    if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        _drop_postgresql_database(settings.DATABASES["default"], name)
    else:
        Path(name).unlink(missing_ok=True)
    Path(os.environ[LOCK_ENV]).unlink(missing_ok=True)


def _template_name(database: dict) -> str:
    """The template's name, derived from the worker's own test name so that it lives beside it."""
    test_name = str(database["TEST"]["NAME"])
    tag = os.environ[TEMPLATE_ENV]
    if database["ENGINE"] == "django.db.backends.postgresql":
        return f"test_{database['NAME']}_{tag}"
    return str(Path(test_name).with_name(f"test_loupe_{tag}.sqlite3"))


def _drop_postgresql_database(database: dict, name: str) -> None:
    import psycopg

    with psycopg.connect(
        dbname="postgres",
        host=database.get("HOST") or None,
        port=database.get("PORT") or None,
        user=database.get("USER") or None,
        password=database.get("PASSWORD") or None,
        autocommit=True,
    ) as connection:
        connection.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {}").format(psycopg.sql.Identifier(name)))


@pytest.fixture(scope="session")
def django_db_setup(
    request: pytest.FixtureRequest,
    django_test_environment: None,
    django_db_blocker,  # noqa: ANN001
    django_db_modify_db_settings: None,
) -> Iterator[None]:
    """pytest-django's fixture of that name, but a worker clones the run's template database."""
    from django.test.utils import setup_databases, teardown_databases

    if not _is_xdist_worker(request.config) or TEMPLATE_ENV not in os.environ:
        with django_db_blocker.unblock():
            config = setup_databases(verbosity=0, interactive=False, aliases={"default"})
        yield
        with django_db_blocker.unblock():
            teardown_databases(config, verbosity=0)
        return

    from django.db import connection

    original_name = connection.settings_dict["NAME"]
    with django_db_blocker.unblock():
        _clone_the_template(connection)
    yield
    with django_db_blocker.unblock():
        connection.creation.destroy_test_db(original_name, verbosity=0)


def _clone_the_template(connection) -> None:  # noqa: ANN001
    from django.conf import settings

    template = _template_name(connection.settings_dict)
    with open(os.environ[LOCK_ENV], "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        lock.seek(0)
        if lock.read() != "migrated":
            connection.settings_dict["TEST"] = {**connection.settings_dict["TEST"], "NAME": template}
            connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
            connection.close()  # PostgreSQL copies a template only while no one is connected to it
            lock.seek(0)
            lock.truncate()
            lock.write("migrated")
            lock.flush()
        fcntl.flock(lock, fcntl.LOCK_UN)
    connection.settings_dict["NAME"] = template
    suffix = str(os.getpid())
    connection.creation.clone_test_db(suffix=suffix, verbosity=0)
    clone = connection.creation.get_test_db_clone_settings(suffix)["NAME"]
    connection.close()
    connection.settings_dict["NAME"] = clone
    settings.DATABASES[connection.alias]["NAME"] = clone
