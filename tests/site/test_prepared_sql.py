"""workflow_site/prepared_sql.py: the review loop's fixed statements are prepared on PostgreSQL, logged
like any other statement, and give the same rows as Django's own cursor."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from workflow_site.prepared_sql import prepared_cursor

ON_POSTGRESQL = connection.vendor == "postgresql"
postgresql_only = pytest.mark.skipif(
    not ON_POSTGRESQL, reason="PostgreSQL prepares statements; SQLite has no such step"
)

# Typed parameters of the kinds the review loop sends: an id, a text, a moment, a missing value, a flag.
_SQL = "SELECT %s + 1, upper(%s), %s::timestamptz, %s::text IS NULL, (%s AND true)"
_PARAMS = [41, "loupe", dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC), None, True]


@postgresql_only
@pytest.mark.django_db
def test_rows_are_the_same_as_from_djangos_own_cursor() -> None:
    with connection.cursor() as cursor:
        cursor.execute(_SQL, _PARAMS)
        expected = cursor.fetchone()
    with prepared_cursor() as cursor:
        for _ in range(3):  # before and after the statement is prepared
            cursor.execute(_SQL, _PARAMS)
            row = cursor.fetchone()
            assert row == expected
            assert row[2].utcoffset() == dt.timedelta(0)  # an aware moment, as Django's cursor gives


@pytest.mark.skipif(ON_POSTGRESQL, reason="SQLite's case")
@pytest.mark.django_db
def test_on_sqlite_it_is_djangos_own_cursor() -> None:
    with prepared_cursor() as cursor, connection.cursor() as plain:
        assert type(cursor) is type(plain)
        assert type(cursor.cursor) is type(plain.cursor)


@postgresql_only
@pytest.mark.django_db
def test_a_statement_run_again_on_a_connection_is_prepared_once() -> None:
    marker = "SELECT %s::bigint AS loupe_prepared_sql_test"
    for value in range(4):
        with prepared_cursor() as cursor:
            cursor.execute(marker, [value])
            assert cursor.fetchone() == (value,)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", ["%loupe_prepared_sql%"])
        assert cursor.fetchone() == (1,)


@postgresql_only
@pytest.mark.django_db
def test_djangos_own_cursor_still_prepares_nothing() -> None:
    for value in range(4):
        with connection.cursor() as cursor:
            cursor.execute("SELECT %s::bigint AS loupe_client_side_test", [value])
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", ["%loupe_client_side%"])
        assert cursor.fetchone() == (0,)


@pytest.mark.django_db
def test_the_query_log_holds_each_statement_with_its_parameters_even_once_prepared() -> None:
    with CaptureQueriesContext(connection) as queries:
        for value in (7, 8, 9):
            with prepared_cursor() as cursor:
                cursor.execute("SELECT %s + 0 AS loupe_logged", [value])
    logged = [q["sql"] for q in queries.captured_queries]
    assert len(logged) == 3
    for value, sql in zip((7, 8, 9), logged, strict=True):
        assert "loupe_logged" in sql and str(value) in sql


@postgresql_only
def test_the_prepare_threshold_comes_from_the_environment_and_zero_turns_preparing_off(monkeypatch) -> None:
    import importlib

    import workflow_site.settings as settings_module

    try:
        monkeypatch.setenv("DB_PREPARE_THRESHOLD", "0")
        assert importlib.reload(settings_module).DATABASES["default"]["OPTIONS"]["prepare_threshold"] is None
        monkeypatch.setenv("DB_PREPARE_THRESHOLD", "5")
        assert importlib.reload(settings_module).DATABASES["default"]["OPTIONS"]["prepare_threshold"] == 5
    finally:
        monkeypatch.delenv("DB_PREPARE_THRESHOLD")
        importlib.reload(settings_module)
