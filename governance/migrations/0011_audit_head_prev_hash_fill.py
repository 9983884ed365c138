"""Data: an existing chain head's prev_hash is its newest event's prev_hash (0010 added the column)."""

from django.db import migrations


def fill(apps, schema_editor):
    AuditChainHead = apps.get_model("governance", "AuditChainHead")
    AuditEvent = apps.get_model("governance", "AuditEvent")
    head = AuditChainHead.objects.filter(singleton=True).first()
    if head is None or head.seq == 0:
        return
    prev_hash = AuditEvent.objects.filter(seq=head.seq).values_list("prev_hash", flat=True).first()
    if prev_hash is not None:
        AuditChainHead.objects.filter(pk=head.pk).update(prev_hash=prev_hash)


class Migration(migrations.Migration):
    dependencies = [("governance", "0010_audit_head_prev_hash")]
    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]
