"""Least privilege on PostgreSQL: an owner role that migrates, an application role that only reads and writes rows.

The append-only triggers (annotations 0002, governance 0003, 0005, 0015, 0017)
hold against anyone who cannot switch them off. On PostgreSQL that takes the
table's owner (``ALTER TABLE ... DISABLE TRIGGER``, ``DROP TRIGGER``) or a role
that may set ``session_replication_role`` (a superuser, or one granted SET on
it). So Loupe runs as two roles:

- the **owner** owns the schema's tables, sequences and trigger functions and
  runs ``migrate``; its password stays with whoever deploys;
- the **application** role (web, workers, beat) is neither superuser nor a
  member of the owner: SELECT, INSERT, UPDATE, DELETE on ordinary tables,
  SELECT and INSERT only on the append-only ones (plus UPDATE on the chain
  head, which the trigger lets move forward only, and on the columns
  retention empties in an audit event or a review, which their triggers hold
  to that one change), USAGE on sequences, and no TRUNCATE, REFERENCES or
  TRIGGER anywhere.

``role_setup_sql`` writes that as idempotent SQL for the tables that exist now;
default privileges give tables that later migrations create (as the owner) the
ordinary grants, and running ``manage.py db_roles`` again after a migration
narrows a new append-only table. ``connection_role`` answers the system
check (workflow_site/checks.py) and the import's bypass test (annotations/import_integrity.py):
is this connection a superuser, the audit table's owner, allowed to set replica mode?
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper

# Tables whose rows are never changed or removed: their triggers refuse UPDATE and DELETE.
# (tests/governance/test_db_privileges.py fails when a table gets such a trigger and is not listed here.)
APPEND_ONLY_TABLES = (
    "annotations_review",
    "governance_auditevent",
    "governance_auditcheckpoint",
    "governance_dataaccess",
    "governance_changeenvelopeversion",
    "governance_changeenvelopesignoff",
    "governance_envelopeassessment",
    "governance_documentnarrative",
    "governance_documentnarrativesignature",
    "governance_signature",
)
# The one UPDATE retention makes of an audit event (a tombstone, governance/retention.py): these columns only,
# and the event's trigger still refuses anything but emptying an expired payload.
AUDIT_TOMBSTONE_COLUMNS = ("before", "after", "reason", "tombstoned_at")
# The one UPDATE retention makes of a review (annotations/retention.py): its free text removed, and the review's
# trigger (annotations migration 0026) refuses anything else.
REVIEW_RETENTION_COLUMNS = ("reason", "reason_removed_at")
REVIEW_TABLE = "annotations_review"
# One row, moved forward by every append (UPDATE), never deleted.
HEAD_TABLE = "governance_auditchainhead"
AUDIT_TABLE = "governance_auditevent"

ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _ident(name: str) -> str:
    if not ROLE_NAME.match(name):
        raise ValueError(f"{name!r} is not a plain lower-case identifier (letters, digits, underscores; 63 at most).")
    return f'"{name}"'


def _literal(name: str) -> str:
    _ident(name)  # the same rule: nothing that needs escaping
    return f"'{name}'"


def _role_create(name: str) -> str:
    return (
        f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {_literal(name)})"
        f" THEN CREATE ROLE {_ident(name)} LOGIN; END IF; END $$;"
    )


def role_setup_sql(
    *, owner: str, app: str, database: str, existing_tables: Iterable[str], server_version: int, schema: str = "public"
) -> list[str]:
    """The statements, in order, that make `owner` own `schema` and give `app` exactly the rights above.

    Precondition: run as a superuser, in one transaction (``role_setup_apply`` does both).
    Idempotent: every statement may run again, and a second run changes nothing.
    Roles are made without a password: set one with ``\\password`` in psql (it stays out of logs).
    """
    if owner == app:
        raise ValueError("The owner and the application role must be two roles.")
    o, a, s, db = _ident(owner), _ident(app), _ident(schema), _ident(database)
    existing = set(existing_tables)
    narrowed = [t for t in APPEND_ONLY_TABLES if t in existing]
    attributes = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
    sql = [
        "-- Roles (no password here: set one with \\password in psql).",
        _role_create(owner),
        _role_create(app),
        f"ALTER ROLE {o} {attributes};",
        f"ALTER ROLE {a} {attributes};",
        # A member of the owner may act as the owner (SET ROLE): the app must not be one.
        f"DO $$ BEGIN IF pg_has_role({_literal(app)}, {_literal(owner)}, 'MEMBER')"
        f" THEN EXECUTE 'REVOKE {o} FROM {a}'; END IF; END $$;",
        f"GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {o}, {a};",
        "-- The audit search index (governance migration 0020) needs pg_trgm: made here, as the superuser.",
        "CREATE EXTENSION IF NOT EXISTS pg_trgm;",
        "-- The owner creates and owns everything in the schema; nobody else creates there.",
        f"GRANT USAGE, CREATE ON SCHEMA {s} TO {o};",
        f"REVOKE CREATE ON SCHEMA {s} FROM PUBLIC;",
        f"REVOKE CREATE ON SCHEMA {s} FROM {a};",
        f"GRANT USAGE ON SCHEMA {s} TO {a};",
        # Tables made by an earlier `migrate` as another role (often postgres) pass to the owner,
        # and so do their identity sequences and Loupe's trigger functions.
        "DO $$ DECLARE r record; BEGIN"
        " FOR r IN SELECT c.oid::regclass AS name, c.relkind FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        f" WHERE n.nspname = {_literal(schema)} AND c.relkind IN ('r', 'p', 'v', 'm')"
        f" AND c.relowner <> {_literal(owner)}::regrole LOOP"
        " EXECUTE format('ALTER %s %s OWNER TO %I', CASE r.relkind WHEN 'v' THEN 'VIEW'"
        f" WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END, r.name, {_literal(owner)}); END LOOP;"
        " FOR r IN SELECT p.oid::regprocedure AS name FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
        f" WHERE n.nspname = {_literal(schema)} AND p.proname LIKE 'loupe\\_%'"
        f" AND p.proowner <> {_literal(owner)}::regrole LOOP"
        f" EXECUTE format('ALTER FUNCTION %s OWNER TO %I', r.name, {_literal(owner)}); END LOOP; END $$;",
        "-- The application: rows only. Reset, then grant, so a second run leaves exactly this.",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {s} FROM {a};",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {s} TO {a};",
    ]
    if narrowed:
        sql.append(f"REVOKE UPDATE, DELETE ON {', '.join(f'{s}.{_ident(t)}' for t in narrowed)} FROM {a};")
    if AUDIT_TABLE in existing:
        columns = ", ".join(_ident(c) for c in AUDIT_TOMBSTONE_COLUMNS)
        sql.append(f"GRANT UPDATE ({columns}) ON {s}.{_ident(AUDIT_TABLE)} TO {a};")
    if REVIEW_TABLE in existing:
        columns = ", ".join(_ident(c) for c in REVIEW_RETENTION_COLUMNS)
        sql.append(f"GRANT UPDATE ({columns}) ON {s}.{_ident(REVIEW_TABLE)} TO {a};")
    if HEAD_TABLE in existing:
        sql.append(f"REVOKE DELETE ON {s}.{_ident(HEAD_TABLE)} FROM {a};")
    sql += [
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {s} FROM {a};",
        f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {s} TO {a};",
        "-- Tables and sequences that later migrations create as the owner get the ordinary grants;"
        " run this again after `migrate` to narrow a new append-only table.",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA {s} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {a};",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA {s} GRANT USAGE ON SEQUENCES TO {a};",
    ]
    sql.append("-- The owner's ANALYZE of the items, for a large import's own statistics (annotations migration 0029).")
    sql.append(
        f"DO $$ BEGIN IF to_regprocedure('{s}.loupe_items_analyze()') IS NOT NULL THEN"
        f" EXECUTE 'GRANT EXECUTE ON FUNCTION {s}.loupe_items_analyze() TO {a}'; END IF; END $$;"
    )
    if server_version >= 150000:
        # Replica mode switches every ordinary trigger off: never the application's to set.
        sql.append(f"REVOKE SET ON PARAMETER session_replication_role FROM {a};")
    return sql


def schema_tables(connection: BaseDatabaseWrapper, schema: str = "public") -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", [schema])
        return {row[0] for row in cursor.fetchall()}


def role_setup_apply(*, connection: BaseDatabaseWrapper, statements: list[str]) -> None:
    """Run the statements in one transaction (all or nothing). Precondition: `connection` is a superuser's."""
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        for statement in statements:
            if not statement.startswith("--"):
                cursor.execute(statement)


@dataclass(frozen=True)
class ConnectionRole:
    name: str
    superuser: bool
    audit_table_owner: bool  # the owner of the audit table, or a member of that role (who may SET ROLE to it)
    may_set_replica: bool  # may switch ordinary triggers off with session_replication_role


def connection_role(connection: BaseDatabaseWrapper) -> ConnectionRole:
    """Who `connection` is on PostgreSQL, in one query (the audit table may not exist yet: then not its owner)."""
    may_set = "current_setting('is_superuser') = 'on'"
    if connection.pg_version >= 150000:
        may_set += " OR has_parameter_privilege('session_replication_role', 'SET')"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT current_user, current_setting('is_superuser') = 'on', "
            "COALESCE((SELECT pg_has_role(current_user, relowner, 'MEMBER') FROM pg_class"
            " WHERE oid = to_regclass(%s)), false), "
            f"({may_set})",
            [AUDIT_TABLE],
        )
        name, superuser, owner, may_set_replica = cursor.fetchone()
    return ConnectionRole(
        name=name, superuser=bool(superuser), audit_table_owner=bool(owner), may_set_replica=bool(may_set_replica)
    )
