"""Free-text search over audit events (issue 10, point 9): what an auditor types, as a filter.

A search is one or more terms (a phrase in double quotes counts as one term); an
event matches when every term occurs, case-insensitively, somewhere in its action,
object type and id, actor name, reason, or the JSON text of its before and after.
Substring, not word, matching: an auditor pastes part of a hash, an id, a file
name, and full-text search would split those into tokens that do not match.

How it stays fast at a million events:

- PostgreSQL: `ILIKE` on one text expression (SEARCH_TEXT), served by a pg_trgm GIN
  index on exactly that expression (migration 0020). A term must give at least one
  trigram to use the index, hence the three-character minimum. The page still reads
  `ORDER BY seq DESC LIMIT 51`: for a rare term the planner fetches the few matches
  from the trigram index; for a common one it walks the seq index backwards and stops
  after 51 matches. Either way no page counts or returns more than 51 rows.
- SQLite: the same expression with a plain `LIKE` (case-insensitive for ASCII only),
  walking seq backwards; the embedded default is for small sites.

The expression must stay identical to the index's, or PostgreSQL stops using it.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.db.models import BooleanField, Q
from django.db.models.expressions import RawSQL

# Every column is NOT NULL except the two JSON ones. Only immutable operators and casts,
# so PostgreSQL accepts it as an index expression (concat_ws is not immutable).
SEARCH_TEXT = (
    "(action || ' ' || object_type || ' ' || object_id || ' ' || actor_username || ' ' || reason"
    " || ' ' || COALESCE(CAST(before AS text), '') || ' ' || COALESCE(CAST(after AS text), ''))"
)

MIN_TERM = 3  # a trigram index cannot serve a shorter substring
MAX_TERMS = 5
_TERM = re.compile(r'"([^"]*)"|(\S+)')


def search_terms(text: str) -> list[str]:
    """The terms of a search box's text, or a ValidationError naming the one that cannot be searched."""
    terms = [(quoted or bare).strip() for quoted, bare in _TERM.findall(text)]
    terms = [t for t in terms if t]
    if len(terms) > MAX_TERMS:
        raise ValidationError(
            "At most %(max)d search terms (%(n)d given).", code="too_many", params={"max": MAX_TERMS, "n": len(terms)}
        )
    for term in terms:
        if len(term) < MIN_TERM:
            raise ValidationError(
                "“%(term)s” is too short to search for: each term needs at least %(min)d characters.",
                code="too_short",
                params={"term": term, "min": MIN_TERM},
            )
    return terms


def _like_pattern(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_condition(terms: list[str], *, vendor: str) -> Q:
    """A filter matching the events that contain every term (see the module docstring)."""
    operator = "ILIKE" if vendor == "postgresql" else "LIKE"
    condition = Q()
    for term in terms:
        sql = f"{SEARCH_TEXT} {operator} %s ESCAPE '\\'"
        condition &= Q(RawSQL(sql, [_like_pattern(term)], output_field=BooleanField()))
    return condition
