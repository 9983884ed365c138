"""Data: the four role groups and the audit chain's head row."""

from django.db import migrations

ROLES = ["reviewer", "adjudicator", "model_admin", "auditor"]


def create(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in ROLES:
        Group.objects.get_or_create(name=name)
    AuditChainHead = apps.get_model("governance", "AuditChainHead")
    AuditChainHead.objects.get_or_create(singleton=True)


class Migration(migrations.Migration):
    dependencies = [("governance", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]
    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
