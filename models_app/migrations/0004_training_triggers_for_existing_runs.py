"""Every run queued before triggers were recorded gets the one trigger it was queued for (its `trigger`,
requester and reason), so "which triggers did this run answer" has an answer for the whole history."""

from django.db import migrations


def triggers_for_existing_runs(apps, schema_editor):
    TrainingRun = apps.get_model("models_app", "TrainingRun")
    TrainingTrigger = apps.get_model("models_app", "TrainingTrigger")
    runs = TrainingRun.objects.filter(triggers__isnull=True).order_by("pk")
    batch = []
    for run in runs.iterator(chunk_size=2000):
        batch.append(
            TrainingTrigger(
                dataset_id=run.dataset_id,
                kind=run.trigger,
                requested_by_id=run.requested_by_id,
                reason=run.reason,
                run_id=run.pk,
                snapshot_id=run.snapshot_id,
            )
        )
        if len(batch) >= 2000:
            TrainingTrigger.objects.bulk_create(batch)
            batch = []
    TrainingTrigger.objects.bulk_create(batch)


class Migration(migrations.Migration):
    dependencies = [("models_app", "0003_training_jobs_triggers_and_model_families")]

    operations = [migrations.RunPython(triggers_for_existing_runs, migrations.RunPython.noop)]
