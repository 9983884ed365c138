"""Model admins edit a dataset's reason codes on the queue settings page and its API (issue 8, point 6):
checked entry by entry, audited with before and after in the same transaction, refused whole on a bad entry,
and never touching the code a review already recorded."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from annotations.models import Dataset, Review
from annotations.queue import queue_next_item
from annotations.services import ReviewAnswer, review_submit
from annotations.workbench import QueueSettings, dataset_queue_settings_set
from governance.models import AuditEvent
from tests.helpers import login, other_label

CODES = [{"code": "margin", "text": "Irregular margin missed"}, {"code": "artefact", "text": "Measurement artefact"}]
LINES = "margin: Irregular margin missed\r\n\r\nartefact:  Measurement artefact \r\n"


def _page(dataset: Dataset) -> str:
    return reverse("annotations:workbench_settings", args=[dataset.pk])


def _api(dataset: Dataset) -> str:
    return f"/api/datasets/{dataset.pk}/queue-settings/"


def _form(dataset: Dataset, **changes: object) -> dict[str, object]:
    """The settings form as the page posts it, unchanged but for `changes`."""
    current = QueueSettings.of(dataset)
    return {**current.queue_part(), "reason_codes": "", **changes}


def _events_since(seq: int) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(seq__gt=seq).exclude(action__startswith="auth.").order_by("seq"))


def _last_seq() -> int:
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


def _codes(dataset: Dataset) -> list[dict[str, str]]:
    return Dataset.objects.get(pk=dataset.pk).reason_codes


def test_a_model_admin_sets_the_reason_codes_on_the_settings_page_and_the_change_is_audited(
    trained_dataset, model_admin
):
    client = login(model_admin)
    seq = _last_seq()

    response = client.post(_page(trained_dataset), _form(trained_dataset, reason_codes=LINES))

    assert response.status_code == 302, response.content.decode()
    assert _codes(trained_dataset) == CODES
    [event] = _events_since(seq)  # the queue's own settings did not change: no event for them
    assert event.action == "dataset.reason_codes_changed"
    assert (event.actor_id, event.dataset_id) == (model_admin.pk, trained_dataset.pk)
    assert event.before == {"reason_codes": []} and event.after == {"reason_codes": CODES}

    page = client.get(_page(trained_dataset)).content.decode()
    assert 'data-reason-codes="2"' in page and "Irregular margin missed" in page
    assert "margin: Irregular margin missed\nartefact: Measurement artefact" in page  # the form, ready to edit


def test_the_auditor_sees_the_reason_codes_on_the_settings_page(trained_dataset, auditor):
    Dataset.objects.filter(pk=trained_dataset.pk).update(reason_codes=CODES)

    page = login(auditor).get(_page(trained_dataset)).content.decode()

    assert 'data-reason-codes="2"' in page and "Measurement artefact" in page
    assert 'name="reason_codes"' not in page  # no form for a reader


def test_codes_and_queue_settings_changed_together_are_two_events_of_one_request(trained_dataset, model_admin):
    client = login(model_admin)
    seq = _last_seq()

    response = client.post(_page(trained_dataset), _form(trained_dataset, overlap=2, reason_codes=LINES))

    assert response.status_code == 302
    events = _events_since(seq)
    assert [event.action for event in events] == ["dataset.queue_settings_changed", "dataset.reason_codes_changed"]
    assert "reason_codes" not in events[0].after and events[0].after["overlap"] == 2


def test_a_form_that_does_not_send_the_codes_keeps_them(trained_dataset, model_admin):
    Dataset.objects.filter(pk=trained_dataset.pk).update(reason_codes=CODES)
    form = _form(trained_dataset, overlap=2)
    del form["reason_codes"]

    response = login(model_admin).post(_page(trained_dataset), form)

    assert response.status_code == 302
    assert _codes(trained_dataset) == CODES


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ("margin: Irregular margin\nBad Code: shouting", "&#x27;Bad Code&#x27; is not a code"),
        ("margin: Irregular margin\nmargin: again", "The code &#x27;margin&#x27; appears twice."),
        ("margin:", "The code &#x27;margin&#x27; needs a text"),
        ("margin: Irregular margin\njust some words", "Line 2 (&#x27;just some words&#x27;): write each reason as"),
    ],
)
def test_a_bad_entry_is_refused_by_name_on_the_page_and_nothing_changes(trained_dataset, model_admin, lines, message):
    Dataset.objects.filter(pk=trained_dataset.pk).update(reason_codes=CODES)
    client = login(model_admin)
    seq = _last_seq()

    # The overlap change in the same post is refused with it: nothing is half-saved.
    response = client.post(_page(trained_dataset), _form(trained_dataset, overlap=3, reason_codes=lines))

    html = response.content.decode()
    assert response.status_code == 400
    assert message in html and 'id="id_reason_codes"' in html
    assert _codes(trained_dataset) == CODES and Dataset.objects.get(pk=trained_dataset.pk).overlap == 1
    assert _events_since(seq) == []


def test_the_api_sets_the_codes_audits_them_and_keeps_them_when_left_out(trained_dataset, model_admin):
    client = login(model_admin)
    body = {**QueueSettings.of(trained_dataset).queue_part(), "reason_codes": CODES}
    seq = _last_seq()

    response = client.put(_api(trained_dataset), body, content_type="application/json")

    assert response.status_code == 200, response.content
    assert response.json()["reason_codes"] == CODES and _codes(trained_dataset) == CODES
    assert [event.action for event in _events_since(seq)] == ["dataset.reason_codes_changed"]

    del body["reason_codes"]
    body["overlap"] = 2
    response = client.put(_api(trained_dataset), body, content_type="application/json")
    assert response.status_code == 200 and response.json()["reason_codes"] == CODES
    assert client.get(_api(trained_dataset)).json()["reason_codes"] == CODES

    body["reason_codes"] = []
    assert client.put(_api(trained_dataset), body, content_type="application/json").status_code == 200
    assert _codes(trained_dataset) == []


@pytest.mark.parametrize(
    ("codes", "field", "message"),
    [
        ([{"code": "margin", "text": "x"}, {"code": "margin", "text": "y"}], "reason_codes[1]", "appears twice"),
        ([{"code": "margin", "text": "x"}, {"code": "No Way", "text": "y"}], "reason_codes[1]", "'No Way'"),
        ([{"code": "margin"}], "reason_codes[0]", '{"code": ..., "text": ...}'),
        ("margin", "reason_codes", "a list of"),
    ],
)
def test_a_bad_entry_is_a_400_naming_it_in_the_api_and_nothing_changes(
    trained_dataset, model_admin, codes, field, message
):
    client = login(model_admin)
    body = {**QueueSettings.of(trained_dataset).queue_part(), "overlap": 3, "reason_codes": codes}
    seq = _last_seq()

    response = client.put(_api(trained_dataset), body, content_type="application/json")

    assert response.status_code == 400
    assert message in " ".join(response.json()[field])
    assert _codes(trained_dataset) == [] and Dataset.objects.get(pk=trained_dataset.pk).overlap == 1
    assert _events_since(seq) == []


@pytest.mark.parametrize("persona", ["reviewer", "adjudicator", "auditor", "outsider"])
def test_only_a_model_admin_may_change_the_codes_on_the_page_or_in_the_api(trained_dataset, persona, request):
    client = login(request.getfixturevalue(persona))
    seq = _last_seq()

    page = client.post(_page(trained_dataset), _form(trained_dataset, reason_codes=LINES))
    api = client.put(
        _api(trained_dataset),
        {**QueueSettings.of(trained_dataset).queue_part(), "reason_codes": CODES},
        content_type="application/json",
    )

    assert (page.status_code, api.status_code) == (403, 403)
    assert _codes(trained_dataset) == [] and _events_since(seq) == []


def test_a_review_keeps_the_code_it_recorded_when_the_code_is_removed(trained_dataset, model_admin, reviewer, broker):
    Dataset.objects.filter(pk=trained_dataset.pk).update(reason_codes=CODES)
    trained_dataset.refresh_from_db()
    item = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item
    answer = ReviewAnswer(label=other_label(item), shown_prediction_id=item.prediction_id, reason_code="margin")
    review = review_submit(item_id=item.pk, reviewer=reviewer, answer=answer)

    dataset_queue_settings_set(
        dataset_id=trained_dataset.pk,
        user=model_admin,
        wanted=QueueSettings(**{**QueueSettings.of(trained_dataset).__dict__, "reason_codes": CODES[1:]}),
    )

    assert Review.objects.get(pk=review.pk).reason_code == "margin"
    trained_dataset.refresh_from_db()
    item = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item
    stale = ReviewAnswer(label=other_label(item), shown_prediction_id=item.prediction_id, reason_code="margin")
    with pytest.raises(ValidationError, match="Unknown reason code 'margin'"):
        review_submit(item_id=item.pk, reviewer=reviewer, answer=stale)
