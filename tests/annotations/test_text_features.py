"""Free-text features (issue 8, point 8): imported as written, checked, shown with their line breaks and
hostile characters inert, and left out of today's models (text models are issue 9's)."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from annotations.models import Dataset, DatasetMembership, Feature, Item, LabelClass
from annotations.services import ImportRejected, import_batch_create, item_content_hash
from models_app.data import feature_specs
from models_app.models import TrainingRun
from models_app.services import training_run_request
from models_app.training import training_run_execute
from tests.helpers import login

pytestmark = pytest.mark.django_db

NOTE = 'Patient seen twice.\nSecond visit: "firm" mass, =HYPERLINK("x")\u202e\n<script>alert(1)</script>'


@pytest.fixture
def notes(model_admin, reviewer) -> Dataset:  # type: ignore[no-untyped-def]
    dataset = Dataset.objects.create(name="Notes", slug="notes")
    Feature.objects.create(dataset=dataset, position=0, name="report", dtype=Feature.Dtype.TEXT)
    Feature.objects.create(dataset=dataset, position=1, name="size", dtype=Feature.Dtype.FLOAT)
    for position, name in enumerate(["benign", "malignant"]):
        LabelClass.objects.create(dataset=dataset, position=position, name=name)
    for user in (model_admin, reviewer):
        DatasetMembership.objects.create(dataset=dataset, user=user)
    return dataset


def _csv_field(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def test_a_note_with_line_breaks_quotes_and_hostile_text_is_stored_as_written(notes, model_admin):
    data = (
        "external_id,report,size\n"
        f"a,{_csv_field(NOTE)},1.5\n"
        f"b,{_csv_field(chr(39) + '=SUM(A1)')},2\n"  # the apostrophe a CSV export puts before a formula
        "c,,3\n"
    ).encode()
    import_batch_create(dataset=notes, user=model_admin, file_name="notes.csv", data=data, purpose="review")

    stored = dict(Item.objects.filter(dataset=notes).values_list("external_id", "values"))
    assert stored["a"]["report"] == NOTE and stored["b"]["report"] == "=SUM(A1)" and stored["c"]["report"] == ""
    item = Item.objects.get(dataset=notes, external_id="a")
    assert item.source_row == 2  # the row spans three lines; it starts on line 2
    assert item.content_hash == item_content_hash(
        external_id="a", values={"report": NOTE, "size": 1.5}, observed_at=None, label=None
    )


def test_a_note_too_long_is_reported_at_its_line_and_column(notes, model_admin):
    data = f"external_id,report,size\na,short,1\nb,{'x' * 100_001},2\n".encode()
    with pytest.raises(ImportRejected) as caught:
        import_batch_create(dataset=notes, user=model_admin, file_name="notes.csv", data=data, purpose="review")
    [error] = caught.value.batch.report["errors"]
    assert (error["line"], error["column"]) == (3, "report")
    assert error["reason"] == "The text is 100,001 characters; the limit is 100,000."


def test_json_lines_carry_notes_too(notes, model_admin):
    data = json.dumps({"external_id": "j", "report": "line one\nline two", "size": 4}).encode()
    import_batch_create(dataset=notes, user=model_admin, file_name="n.jsonl", data=data, purpose="review")
    assert Item.objects.get(dataset=notes, external_id="j").values["report"] == "line one\nline two"


def test_the_card_shows_the_note_with_its_line_breaks_and_nothing_that_runs(notes, model_admin, reviewer):
    data = f"external_id,report,size\na,{_csv_field(NOTE)},1.5\n".encode()
    import_batch_create(dataset=notes, user=model_admin, file_name="notes.csv", data=data, purpose="review")

    page = login(reviewer).get(reverse("annotations:review", args=[notes.pk])).content.decode()
    assert '<div class="text-value" tabindex="0"><bdi>Patient seen twice.\nSecond visit: &quot;firm&quot;' in page
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'class="hidden-char"' in page  # the right-to-left override is shown, not obeyed
    assert "<bdi>size</bdi></th>" in page  # numbers stay in the table


def test_todays_models_leave_the_note_out_and_a_text_only_dataset_says_why_it_cannot_train(notes, model_admin):
    assert [spec.name for spec in feature_specs(notes)] == ["size"]

    Feature.objects.filter(dataset=notes, name="size").delete()
    rows = "".join(f"r{i},note {i},{'malignant' if i % 2 else 'benign'}\n" for i in range(12))
    import_batch_create(
        dataset=notes,
        user=model_admin,
        file_name="l.csv",
        data=f"external_id,report,label\n{rows}".encode(),
        purpose="review",
    )
    run = training_run_request(
        dataset=notes, trigger=TrainingRun.Trigger.MANUAL, requested_by=model_admin, dispatch=False
    )
    training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.FAILED
    assert "no feature a Logistic regression (scikit-learn) can use" in run.error and "text model" in run.error
