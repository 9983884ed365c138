"""Model instances from hand-written SQL, for the few statements every review step runs.

Building a query through the ORM costs about a millisecond of CPU for a join
of a few models, more than the database spends answering it; at a request per
review step that is most of the server's work. The review loop's fixed-shape
reads (the API token, the dataset, the item it locks) are therefore written
once as SQL, and their rows turned back into model instances here, with the
same per-field conversions the ORM applies (`from_db_value`, the backend's
converters), so what comes back is indistinguishable from a queryset's.

Use it only where a profile shows the ORM's cost; everything else stays ORM.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from typing import Any, TypeVar

from django.db import connection
from django.db.models import Model

M = TypeVar("M", bound=Model)


@cache
def _fields(model: type[Model]) -> tuple[tuple[str, str, tuple[Callable[..., Any], ...], Any], ...]:
    """Each concrete field's column, attname, database converters and the expression they expect."""
    out = []
    for field in model._meta.concrete_fields:
        col = field.get_col(model._meta.db_table)
        converters = tuple(connection.ops.get_db_converters(col) + col.get_db_converters(connection))
        out.append((field.column, field.attname, converters, col))
    return tuple(out)


def pk_in_range(model: type[Model], value: int) -> bool:
    """Whether `value` can be a primary key of `model` in this database. A URL's <int:…> takes any size;
    the ORM answers "no such row" for an id beyond the column's range, and so must hand-written SQL
    (PostgreSQL would refuse the comparison, SQLite's driver the integer: an error, not a 404)."""
    low, high = connection.ops.integer_field_range(model._meta.pk.get_internal_type())
    return (low is None or value >= low) and (high is None or value <= high)


def width(model: type[Model]) -> int:
    """How many columns `columns(model, …)` lists."""
    return len(_fields(model))


def table(model: type[Model]) -> str:
    """The model's table name, quoted."""
    return connection.ops.quote_name(model._meta.db_table)


@cache
def columns(model: type[Model], alias: str) -> str:
    """Every concrete column of `model`, qualified by `alias`, in the order `build` expects."""
    quote = connection.ops.quote_name
    return ", ".join(f"{quote(alias)}.{quote(column)}" for column, *_ in _fields(model))


def build(model: type[M], values: Sequence[Any]) -> M:
    """An instance of `model` from its `columns` values, converted as the ORM converts them."""
    fields = _fields(model)
    converted = []
    for (_, _, converters, col), value in zip(fields, values, strict=True):
        for converter in converters:
            value = converter(value, col, connection)
        converted.append(value)
    return model.from_db(connection.alias, [attname for _, attname, _, _ in fields], converted)


@cache
def _pk_index(model: type[Model]) -> int:
    return [attname for _, attname, _, _ in _fields(model)].index(model._meta.pk.attname)


def build_optional(model: type[M], values: Sequence[Any]) -> M | None:
    """`build`, or None when the row of a LEFT JOIN found nothing (its primary key is NULL)."""
    return None if values[_pk_index(model)] is None else build(model, values)


def split(row: Sequence[Any], *models: type[Model]) -> list[Sequence[Any]]:
    """Cut a row that lists several models' `columns` one after another into each model's values; what
    is left over (extra expressions after the last model) comes last."""
    parts, start = [], 0
    for model in models:
        end = start + width(model)
        parts.append(row[start:end])
        start = end
    parts.append(row[start:])
    return parts
