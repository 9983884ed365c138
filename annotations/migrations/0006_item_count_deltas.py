# Schema: the counter rows (issue 7, point 3). Their first values come in 0007.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('annotations', '0005_import_runs_in_a_worker'),
    ]

    operations = [
        migrations.CreateModel(
            name='ItemCountDelta',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('key', models.CharField(max_length=40)),
                ('delta', models.BigIntegerField()),
                ('dataset', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='annotations.dataset')),
            ],
            options={
                'indexes': [models.Index(fields=['dataset', 'key'], name='count_delta_dataset_key')],
            },
        ),
    ]
