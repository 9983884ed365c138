"""Rows labelled at import are not "Reviewed" by anyone, and the batch says it came labelled;
a site admin with no memberships is told where to add them (issue 6, defect 16)."""

from __future__ import annotations

import re

from django.contrib.auth.models import User
from django.urls import reverse

from annotations.models import GoldLabel, ImportBatch, Item
from annotations.selectors import dataset_queue_counts, import_batches_labelled_counts
from tests.helpers import login, make_user


def _labelled_seed(dataset) -> ImportBatch:
    return next(
        b
        for b in dataset.import_batches.filter(purpose=ImportBatch.Purpose.REVIEW)
        if GoldLabel.objects.filter(item__batch=b, origin=GoldLabel.Origin.IMPORT).exists()
    )


def test_items_labelled_at_import_are_not_counted_as_reviewed(trained_dataset):
    counts = dataset_queue_counts(dataset=trained_dataset)

    imported = GoldLabel.objects.filter(
        dataset=trained_dataset, origin=GoldLabel.Origin.IMPORT, item__queue_state=Item.QueueState.DONE
    ).count()
    assert imported > 0
    assert counts["labelled_at_import"] == imported
    assert counts["reviewed"] == counts["done"] - imported
    assert (
        counts["reviewed"] == GoldLabel.objects.filter(dataset=trained_dataset, origin=GoldLabel.Origin.REVIEW).count()
    )


def test_the_labelled_seed_batch_is_shown_as_labelled_at_import(trained_dataset, model_admin):
    seed = _labelled_seed(trained_dataset)
    n = import_batches_labelled_counts(batches=[seed])[seed.pk]

    page = login(model_admin).get(reverse("annotations:dataset_detail", args=[trained_dataset.pk])).content.decode()

    assert f"Review pool, labelled at import ({n} gold labels)" in page
    assert "Reviewed / labelled" not in page
    assert f"<dt>Labelled at import</dt><dd>{n}</dd>" in page


def test_an_unlabelled_batch_and_a_holdout_get_no_labelled_count(trained_dataset):
    batches = list(trained_dataset.import_batches.all())
    counts = import_batches_labelled_counts(batches=batches)

    for batch in batches:
        if batch.purpose == ImportBatch.Purpose.HOLDOUT:
            assert batch.pk not in counts


def test_the_home_page_counts_reviews_by_people_apart_from_import_labels(trained_dataset, model_admin):
    counts = dataset_queue_counts(dataset=trained_dataset)

    page = login(model_admin).get(reverse("home")).content.decode()

    assert "Reviewed by a person" in page and "Labelled at import" in page
    row = page[page.index(trained_dataset.name) :]
    cells = re.findall(r"<td>(\d+)</td>", row)[:4]
    assert cells == [
        str(counts["open"]),
        str(counts["reviewed"]),
        str(counts["labelled_at_import"]),
        str(counts["holdout"]),
    ]


def test_a_site_admin_without_memberships_is_pointed_to_the_admin(db):
    admin = User.objects.create_superuser("root", password="x" * 12)

    page = login(admin).get(reverse("home")).content.decode()

    assert "Ask a site admin" not in page
    assert reverse("admin:annotations_datasetmembership_changelist") in page


def test_anyone_else_without_memberships_is_told_to_ask_a_site_admin(db):
    page = login(make_user("newcomer")).get(reverse("home")).content.decode()

    assert "Ask a site admin to add you." in page
    assert "/admin/" not in page


def test_the_labelled_seed_batch_page_says_it_came_labelled(trained_dataset, model_admin):
    seed = _labelled_seed(trained_dataset)
    n = import_batches_labelled_counts(batches=[seed])[seed.pk]

    page = login(model_admin).get(reverse("annotations:batch_detail", args=[trained_dataset.pk, seed.pk]))

    assert f"Review pool, labelled at import ({n} gold labels)" in page.content.decode()
