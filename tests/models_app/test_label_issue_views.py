"""The Models page's label-issue re-review (models_app/label_issue_views.py): a model admin checks, confirms, and
the same job as the API is queued; everyone else gets a 403 and nothing is queued."""

from __future__ import annotations

from unittest import mock

import pytest
from django.urls import reverse

from annotations.models import Dataset, ImportBatch, Item, QueueStrategy
from governance.models import AuditEvent
from tests.helpers import csv_bytes, login, make_user, synthetic_rows
from workflow_site.access import Role

DISPATCH = "models_app.tasks.label_issues_reopen.apply_async"


@pytest.fixture
def labelled(dataset, model_admin) -> Dataset:
    """Tumours with 40 imported gold labels (3 of them flipped) and 5 unlabelled open items."""
    from annotations.services import import_batch_create

    rows = synthetic_rows(40)
    for i in (3, 17, 28):
        rows[i]["label"] = "benign" if rows[i]["label"] == "malignant" else "malignant"
    for rows_, name in [(rows, "seed.csv"), (synthetic_rows(5, start=200, labelled=False), "pool.csv")]:
        import_batch_create(
            dataset=dataset, user=model_admin, file_name=name, data=csv_bytes(rows_), purpose=ImportBatch.Purpose.REVIEW
        )
    return dataset


def _url(dataset: Dataset) -> str:
    return reverse("models_app:label_issues", args=[dataset.pk])


def _reopened(dataset: Dataset) -> int:
    return Item.objects.filter(dataset=dataset, priority_strategy=QueueStrategy.LABEL_ISSUE).count()


def test_the_models_page_offers_the_re_review_to_a_model_admin_only(labelled, model_admin, auditor):
    admin_page = login(model_admin).get(reverse("models_app:overview", args=[labelled.pk])).content.decode()
    auditor_page = login(auditor).get(reverse("models_app:overview", args=[labelled.pk])).content.decode()

    assert f'action="{_url(labelled)}"' in admin_page and "csrfmiddlewaretoken" in admin_page
    assert _url(labelled) not in auditor_page


def test_the_first_post_only_says_what_the_job_will_do(labelled, model_admin):
    client = login(model_admin)
    with mock.patch(DISPATCH) as dispatch:
        response = client.post(_url(labelled), {"limit": "3"})

    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-to-score="40"' in html and 'data-limit="3"' in html
    assert 'name="confirm"' in html and "Reopen up to 3 items for re-review" in html
    assert "queue settings" in html  # the strategy is not label issue: the page says how to serve them worst first
    dispatch.assert_not_called()
    assert _reopened(labelled) == 0


def test_a_model_admin_who_confirms_reopens_the_likeliest_errors_and_is_told_so(labelled, model_admin):
    client = login(model_admin)

    response = client.post(_url(labelled), {"limit": "3", "confirm": "yes"}, follow=True)

    assert response.redirect_chain == [(reverse("models_app:overview", args=[labelled.pk]), 302)]
    assert "The label-issue check is queued" in response.content.decode()
    # tests run tasks in-process: the job has run, under the admin's name
    assert _reopened(labelled) == 3
    assert AuditEvent.objects.get(action="label_issues.reopened").actor_id == model_admin.pk


@pytest.mark.parametrize("persona", ["reviewer", "adjudicator", "auditor", "outsider", "stranger_admin"])
def test_only_a_model_admin_of_the_dataset_may_start_it(labelled, persona, request):
    user = (
        make_user("other-admin", Role.MODEL_ADMIN) if persona == "stranger_admin" else request.getfixturevalue(persona)
    )
    with mock.patch(DISPATCH) as dispatch:
        check = login(user).post(_url(labelled), {"limit": "3"})
        confirmed = login(user).post(_url(labelled), {"limit": "3", "confirm": "yes"})

    assert (check.status_code, confirmed.status_code) == (403, 403)
    dispatch.assert_not_called()
    assert not AuditEvent.objects.filter(action="label_issues.reopened").exists()


def test_a_get_is_not_allowed(labelled, model_admin):
    assert login(model_admin).get(_url(labelled)).status_code == 405


@pytest.mark.parametrize(
    ("limit", "message"),
    [("0", "from 1 to 10,000, not 0"), ("10001", "not 10001"), ("three", "“three” is not a whole number"), ("", "")],
)
def test_a_bad_limit_is_refused_beside_the_field_and_nothing_is_queued(labelled, model_admin, limit, message):
    with mock.patch(DISPATCH) as dispatch:
        response = login(model_admin).post(_url(labelled), {"limit": limit, "confirm": "yes"})

    html = response.content.decode()
    assert response.status_code == 400
    assert 'id="label-issues-limit-error"' in html and message in html
    assert 'name="confirm"' not in html
    dispatch.assert_not_called()


def test_labels_too_few_to_score_are_refused_with_the_reason(dataset, model_admin, import_rows):
    import_rows(synthetic_rows(6))  # three of each class: fewer than the five folds
    with mock.patch(DISPATCH) as dispatch:
        response = login(model_admin).post(_url(dataset), {"limit": "3", "confirm": "yes"})

    assert response.status_code == 400 and "too few for" in response.content.decode()
    dispatch.assert_not_called()


def test_a_broker_that_cannot_be_reached_is_said_and_nothing_runs(labelled, model_admin):
    with mock.patch(DISPATCH, side_effect=OSError("broker down")):
        response = login(model_admin).post(_url(labelled), {"limit": "3", "confirm": "yes"})

    assert response.status_code == 503
    assert "nothing was queued" in response.content.decode()
    assert _reopened(labelled) == 0
