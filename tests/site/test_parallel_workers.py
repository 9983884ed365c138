"""PostgreSQL connections start no parallel workers per query unless DB_PARALLEL_WORKERS_PER_QUERY asks for some
(or says "server": the server's own setting, for a pooler that refuses startup options).

Loupe's queries read a page or a chunk through an index; on a small server the workers took longer to
start than such a query takes (bench/item_list.py), and they take cores from the other requests.
"""

from __future__ import annotations

import importlib

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

import workflow_site.settings as settings_module

postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="a PostgreSQL setting")


@postgresql_only
@pytest.mark.django_db
def test_a_connection_plans_no_parallel_workers_by_default() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SHOW max_parallel_workers_per_gather")
        assert cursor.fetchone() == ("0",)


@postgresql_only
def test_the_number_comes_from_the_environment_and_keeps_other_options(monkeypatch) -> None:
    def options_with(**env: str) -> str:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return importlib.reload(settings_module).DATABASES["default"]["OPTIONS"]["options"]

    url = settings_module.DATABASE_URL
    try:
        assert options_with() == "-c max_parallel_workers_per_gather=0"
        assert options_with(DB_PARALLEL_WORKERS_PER_QUERY="") == "-c max_parallel_workers_per_gather=0"
        assert options_with(DB_PARALLEL_WORKERS_PER_QUERY="2") == "-c max_parallel_workers_per_gather=2"
        # An options string given in the URL is kept, the setting added after it.
        joined = "&" if "?" in url else "?"
        given = options_with(DATABASE_URL=f"{url}{joined}options=-c%20statement_timeout%3D5000")
        assert given == "-c statement_timeout=5000 -c max_parallel_workers_per_gather=2"
        # "server": no startup option at all (a pooler may refuse one), whatever the URL gave is left alone.
        monkeypatch.setenv("DB_PARALLEL_WORKERS_PER_QUERY", "server")
        monkeypatch.setenv("DATABASE_URL", url)
        assert "options" not in importlib.reload(settings_module).DATABASES["default"]["OPTIONS"]
        for wrong in ("-1", "two", "1.5"):
            monkeypatch.setenv("DB_PARALLEL_WORKERS_PER_QUERY", wrong)
            with pytest.raises(ImproperlyConfigured, match=f"DB_PARALLEL_WORKERS_PER_QUERY='{wrong}'"):
                importlib.reload(settings_module)
    finally:
        monkeypatch.undo()
        importlib.reload(settings_module)
