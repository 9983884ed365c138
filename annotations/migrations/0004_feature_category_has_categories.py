"""A category feature must list its allowed values (the database refuses an empty list).

Before adding the constraint, name any existing feature that breaks it, so the
person running the migration knows which schema to fix in the admin instead of
reading a bare constraint error. No data is changed here.
"""

from django.db import migrations, models


def refuse_if_any_category_feature_has_no_categories(apps, schema_editor):
    Feature = apps.get_model("annotations", "Feature")
    empty = [
        f"{dataset}.{name}"
        for dataset, name in Feature.objects.filter(dtype="category", categories=[]).values_list(
            "dataset__slug", "name"
        )
    ]
    if empty:
        raise RuntimeError(
            "These category features have no allowed values; add them in the admin, then migrate again: "
            + ", ".join(empty)
        )


class Migration(migrations.Migration):
    dependencies = [
        ("annotations", "0003_review_immutable_trigger_on_sqlite"),
    ]

    operations = [
        migrations.RunPython(refuse_if_any_category_feature_has_no_categories, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="feature",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("dtype", "category"), _negated=True),
                    models.Q(("categories", []), _negated=True),
                    _connector="OR",
                ),
                name="feature_category_has_categories",
                violation_error_message="A category feature needs at least one allowed value.",
            ),
        ),
    ]
