"""`manage.py verify_audit` ends with one clear message on a broken chain, never a traceback.

On SQLite a timestamp is stored as text: someone who alters it behind the
application's back (dropping the append-only trigger first, as whoever can write
the file can) leaves a row Django cannot convert. That is a break to report, not
a crash. PostgreSQL's column types refuse such values, so those tests are SQLite's.
"""

from __future__ import annotations

import inspect
import io
from collections.abc import Iterator

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from governance.audit import audit_record
from governance.audit_chain import verify_chain
from governance.models import AuditEvent

ON_SQLITE = connection.vendor == "sqlite"
TRIGGER = "governance_auditevent_append_only"
sqlite_only = pytest.mark.skipif(not ON_SQLITE, reason="PostgreSQL's timestamp column refuses an unparseable value")


@pytest.fixture
def chain(db) -> list[AuditEvent]:
    with transaction.atomic():
        return [audit_record(actor=None, action="test.event", object_type="thing", object_id=n) for n in range(5)]


def _tamper_sqlite(sql: str, params: list) -> None:
    """Change the table as someone with the database file could: drop the trigger, then write (rolled back after)."""
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TRIGGER {TRIGGER}_update")
        cursor.execute(f"DROP TRIGGER {TRIGGER}_delete")
        cursor.execute(sql, params)


def _verify() -> str:
    with pytest.raises(CommandError) as raised:
        call_command("verify_audit", stdout=io.StringIO())
    return str(raised.value)


@sqlite_only
def test_a_timestamp_that_no_longer_parses_is_a_break_naming_its_event(chain):
    target = chain[2]
    _tamper_sqlite("UPDATE governance_auditevent SET created_at = %s WHERE seq = %s", ["yesterday", target.seq])

    message = _verify()

    assert message.startswith(f"Audit chain broken at event #{target.seq}: the event's content cannot be read")
    assert f"{target.seq - 1} events verified before it" in message


@sqlite_only
def test_an_impossible_date_is_a_break_from_the_last_good_event_on(chain):
    # Django's SQLite converter raises for this one while the rows are fetched,
    # before the event is handed over, so the exact seq is not known.
    target = chain[2]
    _tamper_sqlite(
        "UPDATE governance_auditevent SET created_at = %s WHERE seq = %s", ["2020-13-45 00:00:00", target.seq]
    )

    message = _verify()

    assert "cannot be read (month must be in 1..12): a stored field was altered" in message
    assert message.startswith("Audit chain broken at event #")


def test_a_detected_break_closes_the_event_iterator_it_stopped_in(chain):
    """A cursor left open past the break is closed at exit, after its connection: SQLite prints a traceback."""
    events = list(AuditEvent.objects.order_by("seq"))
    forged = events[1]
    forged.reason = "nobody did this"

    def rows() -> Iterator[AuditEvent]:
        yield from events

    iterator = rows()
    checked, broken = verify_chain(iterator)

    assert broken is not None and broken.seq == forged.seq
    assert checked == 1
    assert inspect.getgeneratorstate(iterator) == inspect.GEN_CLOSED
