"""Items scored before 0016 were ranked by least confidence (queue_priority = top-class probability)."""

from django.db import migrations


def forwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    Item = apps.get_model("annotations", "Item")
    Item.objects.filter(queue_priority__isnull=False).update(priority_strategy="least_confidence")


class Migration(migrations.Migration):
    dependencies = [("annotations", "0016_workbench_queue_overlap_blind")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
