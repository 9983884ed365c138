"""Indexes for the item list (annotations/item_search.py, issue 8 point 7), each named for the query it serves.

Every one ends with the id (or the item id), so a page is a keyset range scan in (…, id) order.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("annotations", "0018_item_review_round"),
    ]

    operations = [
        # unfiltered list, by id
        migrations.AddIndex(model_name="item", index=models.Index(fields=["dataset", "id"], name="item_list_id")),
        # state = X, by id (and the "awaiting adjudication" half of disagreement)
        migrations.AddIndex(
            model_name="item", index=models.Index(fields=["dataset", "queue_state", "id"], name="item_list_state")
        ),
        # predicted label = X, by id
        migrations.AddIndex(
            model_name="item",
            index=models.Index(fields=["dataset", "predicted_label", "id"], name="item_list_predicted"),
        ),
        # sort by confidence, and a confidence range
        migrations.AddIndex(
            model_name="item",
            index=models.Index(fields=["dataset", "predicted_confidence", "id"], name="item_list_confidence"),
        ),
        # sort by observed_at, and an observed date range
        migrations.AddIndex(
            model_name="item", index=models.Index(fields=["dataset", "observed_at", "id"], name="item_list_observed")
        ),
        # gold label = X, in item order (merged with the items by id)
        migrations.AddIndex(
            model_name="goldlabel", index=models.Index(fields=["label", "item"], name="gold_label_list")
        ),
        # the items a reviewer answered, in item order (a reviewer's own list)
        migrations.AddIndex(
            model_name="review", index=models.Index(fields=["reviewer", "item"], name="review_reviewer_item")
        ),
        # items with a flagged review (few)
        migrations.AddIndex(
            model_name="review",
            index=models.Index(condition=models.Q(("flagged", True)), fields=["item"], name="review_flagged"),
        ),
        # items an adjudicator decided (the other half of "disagreement"; few)
        migrations.AddIndex(
            model_name="review",
            index=models.Index(
                condition=models.Q(("decision", "adjudicate")), fields=["item"], name="review_adjudication"
            ),
        ),
        # items reviewed under a selection strategy
        migrations.AddIndex(
            model_name="review",
            index=models.Index(fields=["selection_strategy", "item"], name="review_strategy_item"),
        ),
        # items reviewed in a date range, whoever reviewed them
        migrations.AddIndex(
            model_name="review", index=models.Index(fields=["created_at", "item"], name="review_created_item")
        ),
    ]
