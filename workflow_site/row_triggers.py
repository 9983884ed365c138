"""Skipping PostgreSQL's per-row triggers for one bulk write, where the role allows it (shared by the import and
the prediction writer).

A bulk write whose rows reference almost nothing (one dataset, one batch or model version, a few label classes,
rows the same transaction wrote) pays PostgreSQL a foreign-key lookup per row and key. Where the connection's
role may set `session_replication_role` (a superuser, or PostgreSQL 15+ with `GRANT SET ON PARAMETER
session_replication_role`), the writer sets it to `replica` around its statements, which skips every ordinary
per-row trigger, and then checks the references itself, set-based and with the locks the triggers would take
(annotations/import_integrity.py, models_app/prediction_integrity.py). No constraint is dropped or disabled:
unique and check constraints are indexes and expressions, not triggers, and every other write is checked as
before. Each caller also verifies that its tables hold only the foreign keys it checks and no trigger of
another kind (`row_triggers_skippable`), since `replica` would skip that too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection
from django.db.models import Model

from workflow_site.db_roles import connection_role


def replica_allowed() -> bool:
    """Whether this connection's role may set session_replication_role, asked once per database connection.

    Under least privilege (README, `manage.py db_roles`) the application role may
    not: replica mode would switch the append-only triggers off too. The writers
    then keep the per-row foreign-key triggers, slower but the same checks. The
    answer is kept on the connection wrapper with the DB-API connection it was
    asked on, so a reconnect (CONN_MAX_AGE, a worker's fresh connection) asks again.
    """
    if connection.vendor != "postgresql":
        return False
    connection.ensure_connection()
    raw = connection.connection
    asked = getattr(connection, "_loupe_may_set_replica", None)
    if asked is not None and asked[0] is raw:
        return asked[1]
    allowed = connection_role(connection).may_set_replica
    connection._loupe_may_set_replica = (raw, allowed)  # type: ignore[attr-defined]
    return allowed


def declared_foreign_keys(model: type[Model]) -> dict[str, type[Model]]:
    """The model's foreign keys that the database enforces: field name -> the model referenced."""
    return {
        field.name: field.related_model
        for field in model._meta.concrete_fields
        if field.is_relation and getattr(field, "db_constraint", False)
    }


def row_triggers_skippable(expected: dict[type[Model], dict[str, type[Model]]]) -> bool:
    """Whether this connection may skip the per-row triggers of a write to `expected`'s tables: the role may
    set replica mode, each model declares exactly the foreign keys listed for it, and the database holds
    those and no trigger of another kind on its tables (which replica mode would skip too)."""
    if connection.vendor != "postgresql":
        return False
    if any(declared_foreign_keys(model) != keys for model, keys in expected.items()) or not replica_allowed():
        return False
    foreign_keys, other_triggers = _foreign_keys_and_triggers([model._meta.db_table for model in expected])
    return foreign_keys == sum(map(len, expected.values())) and other_triggers == 0


def _foreign_keys_and_triggers(tables: list[str]) -> tuple[int, int]:
    """(foreign keys, triggers other than PostgreSQL's own) declared on `tables` (PostgreSQL)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conrelid = ANY(%s::regclass[])), "
            "(SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal AND tgrelid = ANY(%s::regclass[]))",
            [tables, tables],
        )
        foreign_keys, other_triggers = cursor.fetchone()
    return int(foreign_keys), int(other_triggers)


@contextmanager
def row_triggers_skipped(skip: bool) -> Iterator[None]:
    """Inside: this transaction's writes fire no per-row triggers (when `skip`). The caller must then check the
    references itself before COMMIT. On an error the setting is left to the rollback, which undoes it."""
    if not skip:
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
    yield
    row_triggers_restored()


def row_triggers_restored() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = origin")
