"""The import staging table becomes UNLOGGED on PostgreSQL (issue 7: imports at COPY speed).

Its rows live for minutes, between a worker's COPY and the publish that copies
them into items; writing them to the WAL as well (and fsyncing it at every
chunk's commit) doubled the cost of staging. After a database crash PostgreSQL
empties an unlogged table: a batch that was staging is then found by the sweep
(its heartbeat stops) and staged again from its stored upload, which is what
happens after a worker crash already. Other databases: nothing to do.
"""

from django.db import migrations


def _set_unlogged(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        table = apps.get_model("annotations", "ImportStagedRow")._meta.db_table
        schema_editor.execute(f"ALTER TABLE {schema_editor.quote_name(table)} SET UNLOGGED")


def _set_logged(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        table = apps.get_model("annotations", "ImportStagedRow")._meta.db_table
        schema_editor.execute(f"ALTER TABLE {schema_editor.quote_name(table)} SET LOGGED")


class Migration(migrations.Migration):
    dependencies = [("annotations", "0007_item_count_deltas_from_items")]

    operations = [migrations.RunPython(_set_unlogged, _set_logged, elidable=False)]
