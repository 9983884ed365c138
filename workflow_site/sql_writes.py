"""Model writes as fixed, prepared statements, for the few rows every review answer writes.

The web side of an answer spent about a fifth of its samples in the ORM's save
path (Model.save, the INSERT/UPDATE compilers) for three rows: the review, the
item's new state and the counter deltas. These helpers write the same rows the
same way `Model.save` would, through prepared_sql.py's cursor:

- each field's `pre_save` (auto_now_add fills `created_at`) and
  `get_db_prep_save` (the database's form of the value), as the ORM calls them;
- one statement whose text depends only on the model and the fields written,
  so PostgreSQL plans it once per connection;
- `insert` returns the new primary key (RETURNING) and marks the instance as
  saved; `update` raises, as `save(update_fields=...)` does, when no row matched.

What they skip: model signals (none is connected to these models; STYLE.md
keeps signals for crossing apps) and `Model.save` overrides (Review's refuses
an update, which `insert` cannot do: it only writes a new row). Use them only
where a profile shows the ORM's cost; everything else stays ORM.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any, TypeVar

from django.db import DatabaseError, connection
from django.db.models import Field, Model
from django.db.models.expressions import DatabaseDefault

from workflow_site.prepared_sql import prepared_cursor

M = TypeVar("M", bound=Model)


@cache
def _insert_statement(model: type[Model]) -> tuple[str, tuple[Field, ...]]:
    meta, quote = model._meta, connection.ops.quote_name
    fields = tuple(f for f in meta.concrete_fields if not f.primary_key)
    columns = ", ".join(quote(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    returning = f" RETURNING {quote(meta.pk.column)}" if connection.features.can_return_columns_from_insert else ""
    return f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({placeholders}){returning}", fields


def insert(instance: M) -> M:
    """Write `instance` as a new row, as `instance.save()` would; returns it with its primary key set.

    Preconditions: the instance is new (`_state.adding`), its primary key is the
    automatic one and unset, and no field is left to a database default.
    """
    if not instance._state.adding or instance.pk is not None:
        raise ValueError(f"insert writes new rows only; this {type(instance).__name__} has one.")
    sql, fields = _insert_statement(type(instance))
    values = []
    for field in fields:
        value = field.pre_save(instance, add=True)
        if isinstance(value, DatabaseDefault):
            raise ValueError(f"insert cannot leave {field.name} to the database's default; set it.")
        values.append(field.get_db_prep_save(value, connection))
    with prepared_cursor() as cursor:
        cursor.execute(sql, values)
        pk = cursor.fetchone()[0] if connection.features.can_return_columns_from_insert else cursor.lastrowid
    instance.pk = pk
    instance._state.adding = False
    instance._state.db = connection.alias
    return instance


@cache
def _update_statement(model: type[Model], names: tuple[str, ...]) -> tuple[str, tuple[Field, ...]]:
    meta, quote = model._meta, connection.ops.quote_name
    fields = tuple(meta.get_field(name) for name in names)
    assignments = ", ".join(f"{quote(f.column)} = %s" for f in fields)
    return f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s", fields


def update(instance: Model, fields: Sequence[str]) -> None:
    """Write the named fields of an existing row, as `instance.save(update_fields=fields)` would."""
    sql, targets = _update_statement(type(instance), tuple(fields))
    values: list[Any] = [f.get_db_prep_save(f.pre_save(instance, add=False), connection) for f in targets]
    with prepared_cursor() as cursor:
        cursor.execute(sql, [*values, instance.pk])
        if cursor.rowcount != 1:
            raise DatabaseError("Save with update_fields did not affect any rows.")
