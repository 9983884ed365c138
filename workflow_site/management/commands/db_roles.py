"""`manage.py db_roles --owner loupe_owner --app loupe_app [--apply]`: least privilege on PostgreSQL (README)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections

from workflow_site.db_roles import connection_role, role_setup_apply, role_setup_sql, schema_tables


class Command(BaseCommand):
    help = (
        "Print (or, with --apply, run as a superuser) the SQL that makes OWNER own Loupe's tables and run"
        " migrations, and gives APP rows only: no TRUNCATE, no UPDATE or DELETE of the append-only tables, no"
        " ALTER TABLE. Idempotent: run it again after every migrate."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--owner", required=True, help="The role that owns the schema and runs migrations.")
        parser.add_argument("--app", required=True, help="The role the web app, workers and beat connect as.")
        parser.add_argument("--schema", default="public")
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS, help="The Django database alias to inspect.")
        parser.add_argument("--apply", action="store_true", help="Run the SQL (as a superuser) instead of printing it.")

    def handle(self, *args: Any, **options: Any) -> None:
        connection = connections[options["database"]]
        if connection.vendor != "postgresql":
            raise CommandError("db_roles is for PostgreSQL: SQLite has no roles (whoever can write the file owns it).")
        try:
            statements = role_setup_sql(
                owner=options["owner"],
                app=options["app"],
                database=connection.settings_dict["NAME"],
                existing_tables=schema_tables(connection, options["schema"]),
                server_version=connection.pg_version,
                schema=options["schema"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if not options["apply"]:
            self.stdout.write("\n".join(statements))
            return
        if not connection_role(connection).superuser:
            raise CommandError(
                "--apply needs a superuser connection (DATABASE_URL): print the SQL and have one run it."
            )
        role_setup_apply(connection=connection, statements=statements)
        self.stdout.write(
            self.style.SUCCESS(f"{options['owner']} owns schema {options['schema']}; {options['app']} has rows only.")
        )
