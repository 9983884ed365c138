"""Labelling guidelines (issue 8, point 5): versioned Markdown, rendered safely, publishing audited,
and the version in force recorded on every review."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from annotations.guidelines import guideline_publish, guideline_render
from annotations.models import Dataset, GuidelineVersion, Item, Review
from annotations.services import ReviewAnswer, review_submit
from governance.audit_chain import verify_chain
from governance.models import AuditEvent
from tests.conftest import login, synthetic_rows

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("markdown", "absent"),
    [
        ("<script>alert(1)</script>", "<script"),
        ('<img src="x" onerror="alert(1)">', "<img"),
        ("[click](javascript:alert(1))", "javascript:"),
        ('<a href="https://example.org" onclick="steal()">x</a>', "onclick"),
        ('<p style="color:red">styled</p>', "style="),
        ("![a picture](https://example.org/tracker.png)", "<img"),
        ("<iframe src='https://example.org'></iframe>", "<iframe"),
    ],
)
def test_rendering_keeps_nothing_that_runs_loads_or_styles(markdown, absent):
    assert absent not in str(guideline_render(markdown))


def test_rendering_keeps_what_a_guideline_needs():
    html = str(
        guideline_render(
            "# Malignant\n\nCall it **malignant** when:\n\n1. the margin is *irregular*\n2. see "
            "[the atlas](https://example.org/atlas)\n\n| sign | weight |\n|:--|--:|\n| margin | 2 |\n"
        )
    )
    assert "<h1>Malignant</h1>" in html and "<strong>malignant</strong>" in html and "<ol>" in html
    assert '<a href="https://example.org/atlas" rel="noopener noreferrer nofollow">the atlas</a>' in html
    assert '<td align="right">2</td>' in html  # alignment without an inline style (the CSP forbids them)


def test_publishing_numbers_versions_records_them_on_reviews_and_audits_it(dataset, model_admin, reviewer, import_rows):
    import_rows(synthetic_rows(3, labelled=False))
    item = Item.objects.filter(dataset=dataset).first()
    Item.objects.filter(pk=item.pk).update(leased_to=reviewer)
    review_submit(
        item_id=item.pk,
        reviewer=reviewer,
        answer=ReviewAnswer(label=dataset.label_classes.get(name="benign"), shown_prediction_id=None),
    )  # a review under version "1", which had no text

    first = guideline_publish(dataset=dataset, user=model_admin, text="Rules, take one.", change_note="start")
    second = guideline_publish(dataset=dataset, user=model_admin, text="Rules, take two.")

    dataset.refresh_from_db()
    assert (first.version, second.version, dataset.guideline_version) == (2, 3, "3")
    assert Review.objects.get().guideline_version == "1"  # earlier reviews keep the version they were made under
    events = AuditEvent.objects.filter(action="guideline.published").order_by("seq")
    assert [(e.before, e.after["guideline_version"]) for e in events] == [
        ({"guideline_version": "1"}, "2"),
        ({"guideline_version": "2"}, "3"),
    ]
    assert events[0].after["text_sha256"] == first.text_sha256 and events[0].after["change_note"] == "start"
    assert verify_chain(AuditEvent.objects.order_by("seq"))[1] is None


def test_a_dataset_nobody_reviewed_yet_starts_at_version_1(dataset, model_admin):
    assert guideline_publish(dataset=dataset, user=model_admin, text="Rules.").version == 1


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ("   ", "text", "Write the guideline"),
        ("x" * 100_001, "text", "the limit is 100,000"),
        ("a\x00b", "text", "NUL character"),
    ],
)
def test_a_bad_text_is_refused_and_nothing_changes(dataset, model_admin, text, field, words):
    with pytest.raises(ValidationError) as caught:
        guideline_publish(dataset=dataset, user=model_admin, text=text)
    assert words in caught.value.message_dict[field][0]
    assert not GuidelineVersion.objects.exists() and not AuditEvent.objects.filter(action="guideline.published")


def test_publishing_the_text_in_force_again_is_refused(dataset, model_admin):
    guideline_publish(dataset=dataset, user=model_admin, text="Same rules.\n")
    with pytest.raises(ValidationError, match="already in force"):
        guideline_publish(dataset=dataset, user=model_admin, text="Same rules.")


def test_the_page_shows_the_version_in_force_and_earlier_ones(dataset, model_admin, reviewer):
    guideline_publish(dataset=dataset, user=model_admin, text="# Old rules", change_note="first")
    guideline_publish(dataset=dataset, user=model_admin, text="# New rules <script>x()</script>", change_note="second")
    client = login(reviewer)
    url = reverse("annotations:guideline", args=[dataset.pk])

    page = client.get(url).content.decode()
    assert "<h1>New rules" in page and "<script>x()" not in page and "Publish a new version" not in page
    older = client.get(url, {"version": "1"}).content.decode()
    assert "<h1>Old rules</h1>" in older and "An earlier version" in older
    assert "There is no version 9" in client.get(url, {"version": "9"}).content.decode()


def test_a_model_admin_previews_without_publishing_then_publishes(dataset, model_admin):
    client = login(model_admin)
    url = reverse("annotations:guideline", args=[dataset.pk])

    preview = client.post(url, {"text": "**Bold** rule", "change_note": "", "action": "preview"})
    assert preview.status_code == 200 and "<strong>Bold</strong> rule" in preview.content.decode()
    assert not GuidelineVersion.objects.exists()

    published = client.post(url, {"text": "**Bold** rule", "change_note": "why", "action": "publish"}, follow=True)
    assert "Guideline version 1 is published" in published.content.decode()
    assert Dataset.objects.get(pk=dataset.pk).guideline_version == "1"


def test_the_api_reads_and_publishes(dataset, model_admin, reviewer):
    url = f"/api/datasets/{dataset.pk}/guideline/"
    assert login(reviewer).get(url).json() == {
        "guideline_version": "1",
        "current": None,
        "versions": [],
        "shown": None,
    }

    created = login(model_admin).post(url, {"text": "Rule *one*", "change_note": "n"}, content_type="application/json")
    assert created.status_code == 201
    body = login(reviewer).get(url).json()
    assert body["versions"] == [1] and body["current"]["html"] == "<p>Rule <em>one</em></p>"

    refused = login(model_admin).post(url, {"text": "Rule *one*"}, content_type="application/json")
    assert refused.status_code == 400 and "already in force" in refused.json()["text"][0]


def test_the_api_reads_an_earlier_version_as_the_page_does(dataset, model_admin, reviewer):
    guideline_publish(dataset=dataset, user=model_admin, text="# Old rules <script>x()</script>", change_note="first")
    guideline_publish(dataset=dataset, user=model_admin, text="# New rules", change_note="second")
    client = login(reviewer)
    url = f"/api/datasets/{dataset.pk}/guideline/"

    older = client.get(url, {"version": "1"}).json()
    assert older["shown"]["version"] == 1 and older["shown"]["change_note"] == "first"
    assert older["shown"]["html"] == str(guideline_render("# Old rules <script>x()</script>"))
    assert "<script" not in older["shown"]["html"]
    assert older["current"]["version"] == 2 and older["versions"] == [1, 2]  # the one in force is still said
    assert client.get(url).json()["shown"]["version"] == 2  # without a version: the one in force

    for bad in ("one", "0", "-1", "1.5", str(2**31)):
        refused = client.get(url, {"version": bad})
        assert refused.status_code == 400 and list(refused.json()) == ["version"], bad
    missing = client.get(url, {"version": "9"})
    assert missing.status_code == 404
    assert "no version 9" in missing.json()["detail"] and "`version`" in missing.json()["detail"]


def test_a_model_admin_previews_through_the_api_and_nothing_changes(dataset, model_admin, reviewer, auditor):
    url = f"/api/datasets/{dataset.pk}/guideline/preview/"
    changes = AuditEvent.objects.exclude(action__startswith="auth.")  # signing in is recorded; nothing else may be
    events = changes.count()

    draft = "**Bold** rule <script>x()</script> [x](javascript:alert(1))"
    preview = login(model_admin).post(url, {"text": draft}, content_type="application/json")
    assert preview.status_code == 200 and preview.json() == {"html": str(guideline_render(draft))}
    assert "<strong>Bold</strong>" in preview.json()["html"] and "<script" not in preview.json()["html"]
    blank = login(model_admin).post(url, {"text": "  \n "}, content_type="application/json")
    assert blank.status_code == 400 and "text" in blank.json()
    for other in (reviewer, auditor):  # the first step of publishing: model admins only, as on the page
        assert login(other).post(url, {"text": draft}, content_type="application/json").status_code == 403
    assert not GuidelineVersion.objects.exists() and changes.count() == events
    assert Dataset.objects.get(pk=dataset.pk).guideline_version == "1"


def test_the_review_page_carries_the_guideline_and_the_card_swap_does_not(trained_dataset, model_admin, reviewer):
    published = guideline_publish(dataset=trained_dataset, user=model_admin, text="## Margins\n\nLook at them.")
    client = login(reviewer)
    url = reverse("annotations:review", args=[trained_dataset.pk])

    page = client.get(url).content.decode()
    assert f"Guideline, version {published.version}" in page and "<h2>Margins</h2>" in page
    card = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "guideline-dialog" not in card  # the dialog stays in the page; each answer swaps only the card
