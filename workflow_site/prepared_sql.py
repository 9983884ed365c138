"""A cursor whose statements PostgreSQL plans once per connection: for the dozen statements of every review step.

Why: measured with `bench/review_loop.py --api --backend-cpu-by-statement`,
PostgreSQL spent 8.8 ms of CPU per review step (answer + next card), more than
half of it parsing and planning the same dozen statements again on every call
(the API token join alone: 1.6 ms of planning against 0.16 ms of execution).
Django sends every statement with its parameters inlined (psycopg's
ClientCursor), which PostgreSQL cannot prepare. `prepared_cursor` gives a
cursor that sends the parameters separately (psycopg's server-side binding) on
the same connection and transaction; psycopg prepares a statement once it has
run `prepare_threshold` times on a connection (settings: DB_PREPARE_THRESHOLD),
and PostgreSQL then skips parsing, and after five runs planning too when its
generic plan costs no more than the custom ones. The step's backend CPU fell
from 8.8 to 5.3 ms (and to 4.7 ms once the answer's writes used it too,
workflow_site/sql_writes.py).

Only hand-written, fixed-shape statements of the review loop use it (an API
token by digest, the item lock by id, the claim, the audit append...): their
parameters are few and typed, their plans are index lookups whatever the
values. Everything else keeps Django's default cursor: server-side binding
caps a statement at 65,535 parameters and needs every parameter's type to be
inferable, which a large `IN (...)` or an ORM-built expression may not meet.

The cursor is Django's own wrapper around it, so query logging, execute
wrappers and `django_assert_num_queries` see these statements as any other.
Behind a connection pooler in transaction mode that cannot keep prepared
statements (PgBouncer before 1.21), set DB_PREPARE_THRESHOLD=0: the statements
are then still bound server-side but never prepared. On SQLite this is
Django's ordinary cursor.
"""

from __future__ import annotations

from functools import cache
from typing import Any, NamedTuple

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper


def prepared_cursor(connection: BaseDatabaseWrapper | None = None) -> CursorWrapper:
    """A cursor for a fixed-shape statement run on every request (see the module docstring), on
    `connection` (default: the default database); use it as `with prepared_cursor() as cursor:`."""
    # The default connection itself, not the proxy: every attribute read through django.db.connection
    # goes through a thread-local lookup, and this function reads a dozen (a dozen times a review step).
    connection = connection if connection is not None else connections[DEFAULT_DB_ALIAS]
    if connection.vendor != "postgresql":
        return connection.cursor()
    # What connection.cursor() does (its health check, connection, error wrapping, thread check and
    # Django's wrapper; create_cursor's time zone), around a server-binding cursor instead of the
    # connection's default ClientCursor.
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        cursor = _postgresql().cursor_class(connection.connection)
        if connection.timezone != connection.connection.adapters.get_loader(*_postgresql().timestamptz_text).timezone:
            _postgresql().register_tzloader(connection.timezone, cursor)
        connection.validate_thread_sharing()
        if connection.queries_logged:
            return _LoggedCursor(cursor, connection)
        return connection.make_cursor(cursor)


class _PostgreSQL(NamedTuple):
    cursor_class: Any
    timestamptz_text: tuple[int, Any]  # the loader key create_cursor checks: (timestamptz oid, text format)
    register_tzloader: Any


@cache
def _postgresql() -> _PostgreSQL:
    """Django's psycopg 3 pieces, imported once (this runs a dozen times per review step; SQLite lacks them)."""
    from django.db.backends.postgresql.base import TIMESTAMPTZ_OID, ServerBindingCursor
    from django.db.backends.postgresql.psycopg_any import register_tzloader
    from psycopg.pq import Format

    return _PostgreSQL(ServerBindingCursor, (TIMESTAMPTZ_OID, Format.TEXT), register_tzloader)


class _LoggedCursor(CursorDebugWrapper):
    """Django's query log for these statements. Its own reads the text psycopg last sent, and a prepared
    statement's execution sends none (the log would hold None): log the statement with its parameters
    filled in instead, as the client-side cursor would have sent it."""

    def execute(self, sql: str, params: Any = None) -> Any:
        text = self.db.ops.compose_sql(sql, params) if params else sql
        with self.debug_sql(text, params):
            return CursorWrapper.execute(self, sql, params)
