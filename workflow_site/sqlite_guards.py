"""The SQL function that SQLite's append-only triggers consult.

On PostgreSQL, row triggers refuse UPDATE and DELETE on reviews, audit events and
data-access records, and the test harness empties tables with TRUNCATE, which
row triggers never see. SQLite has no TRUNCATE: Django's ``flush`` (run after
every transactional test) empties tables with ``DELETE``. So the SQLite
triggers (annotations 0003, governance 0006) fire only
``WHEN loupe_append_only() IS NOT 0``, and this module registers
``loupe_append_only()`` on every SQLite connection Django opens. It returns 1
(enforce) except on a thread that is inside ``flush_bypass()``, which only the
pytest harness's flush enters (tests/sqlite_flush.py wraps
``DatabaseOperations.execute_sql_flush`` with it). Elsewhere (``manage.py
flush``, Django's own test runner) a flush of a SQLite database that holds
reviews or audit events is refused; on PostgreSQL it TRUNCATEs.

It fails closed:

- a connection that never registered the function (the ``sqlite3`` shell, a
  script that did not set Django up) cannot even compile an UPDATE or DELETE of
  those tables ("no such function"), so the change is refused;
- any answer but 0 (NULL, a string, an exception in the function) leaves the
  trigger firing;
- no setting or environment variable reaches the switch. Only code running in
  this process can flip it, and such code could as well drop the trigger, just
  as the table owner can disable the PostgreSQL trigger.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

SQL_FUNCTION = "loupe_append_only"

# Per thread, because Django's connections are per thread and SQLite calls the
# function on the thread that runs the statement: a flush on one thread must
# not open the tables to a request or a worker on another.
_state = threading.local()


def append_only_enforced() -> int:
    """1 while the append-only triggers should refuse changes; 0 only inside ``flush_bypass()``."""
    return 0 if getattr(_state, "flushing", False) else 1


@contextmanager
def flush_bypass() -> Iterator[None]:
    """Let this thread's statements through the SQLite append-only triggers.

    For the test harness's flush only (tests/sqlite_flush.py): that is the one
    place where SQLite must DELETE what PostgreSQL would TRUNCATE.
    """
    previous = getattr(_state, "flushing", False)
    _state.flushing = True
    try:
        yield
    finally:
        _state.flushing = previous


def register_append_only_function(sender: Any, connection: Any, **kwargs: Any) -> None:
    """``connection_created`` receiver: give each new SQLite connection ``loupe_append_only()``."""
    if connection.vendor != "sqlite":
        return
    # Not deterministic: SQLite may otherwise fold the call to a constant.
    connection.connection.create_function(SQL_FUNCTION, 0, append_only_enforced, deterministic=False)
