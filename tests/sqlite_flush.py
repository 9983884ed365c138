"""pytest plugin (-p tests.sqlite_flush): Django's test flush gets through SQLite's append-only triggers.

After each transactional test Django empties every table with ``flush``. On
PostgreSQL that is a TRUNCATE, which the row triggers on reviews, audit events
and data-access records never see; on SQLite it is a DELETE, which they refuse.
This plugin wraps the SQLite backend's ``execute_sql_flush`` (the one call
through which ``flush`` runs its DELETEs) in ``sqlite_guards.flush_bypass()``,
so only those statements, on that thread and for that call, pass. Any other
UPDATE or DELETE in a test is refused as it would be in production.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

_original_execute_sql_flush: Callable[..., Any] | None = None


def _execute_sql_flush_through_the_triggers(self: Any, sql_list: list[str]) -> Any:
    from workflow_site.sqlite_guards import flush_bypass

    assert _original_execute_sql_flush is not None
    with flush_bypass():
        return _original_execute_sql_flush(self, sql_list)


def pytest_configure(config: pytest.Config) -> None:
    global _original_execute_sql_flush
    # Imported here, not at the top: the plugin loads before Django is set up, and
    # importing the operations module on its own trips the backend's circular import.
    from django.db.backends.sqlite3.base import DatabaseWrapper

    operations = DatabaseWrapper.ops_class
    _original_execute_sql_flush = operations.execute_sql_flush
    operations.execute_sql_flush = _execute_sql_flush_through_the_triggers


def pytest_unconfigure(config: pytest.Config) -> None:
    from django.db.backends.sqlite3.base import DatabaseWrapper

    if _original_execute_sql_flush is not None:
        DatabaseWrapper.ops_class.execute_sql_flush = _original_execute_sql_flush
