"""pytest plugin (-p tests.sqlite_flush): Django's test flush gets through the append-only triggers.

After each transactional test Django empties every table with ``flush``:

- SQLite has no TRUNCATE, so flush DELETEs, which the row triggers on reviews,
  audit events, read records, checkpoints and the chain head refuse. The
  SQLite backend's ``execute_sql_flush`` (the one call through which ``flush``
  runs its statements) is wrapped in ``sqlite_guards.flush_bypass()``, so only
  those statements, on that thread and for that call, pass.
- PostgreSQL TRUNCATEs, which the statement-level triggers of governance 0017
  refuse on the append-only tables. Its ``execute_sql_flush`` runs the
  statements in one transaction; the wrapper puts ``SET LOCAL
  session_replication_role = replica`` first, under which no ordinary trigger
  fires, and which ends with that transaction. Only a superuser (or a role
  granted SET on the parameter) may set it: the test database's role is one,
  the application role of ``manage.py db_roles`` is not.

Any other UPDATE, DELETE or TRUNCATE in a test is refused as it would be in production.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

REPLICA_FOR_THIS_TRANSACTION = "SET LOCAL session_replication_role = replica"

_original: dict[str, Callable[..., Any]] = {}


def _execute_sql_flush_through_the_triggers(self: Any, sql_list: list[str]) -> Any:
    from workflow_site.sqlite_guards import flush_bypass

    with flush_bypass():
        return _original["sqlite"](self, sql_list)


def _execute_sql_flush_as_replica(self: Any, sql_list: list[str]) -> Any:
    # The original runs the list inside one atomic block, so SET LOCAL covers exactly these statements.
    if sql_list:
        sql_list = [REPLICA_FOR_THIS_TRANSACTION, *sql_list]
    return _original["postgresql"](self, sql_list)


def _operations() -> dict[str, Any]:
    # Imported here, not at the top: the plugin loads before Django is set up, and
    # importing the operations module on its own trips the backend's circular import.
    from django.db.backends.postgresql.base import DatabaseWrapper as PostgresWrapper
    from django.db.backends.sqlite3.base import DatabaseWrapper as SQLiteWrapper

    return {"sqlite": SQLiteWrapper.ops_class, "postgresql": PostgresWrapper.ops_class}


_WRAPPERS = {"sqlite": _execute_sql_flush_through_the_triggers, "postgresql": _execute_sql_flush_as_replica}


def pytest_configure(config: pytest.Config) -> None:
    for vendor, operations in _operations().items():
        _original[vendor] = operations.execute_sql_flush
        operations.execute_sql_flush = _WRAPPERS[vendor]


def pytest_unconfigure(config: pytest.Config) -> None:
    for vendor, operations in _operations().items():
        if vendor in _original:
            operations.execute_sql_flush = _original.pop(vendor)
