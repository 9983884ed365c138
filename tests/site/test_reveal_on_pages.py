"""Hidden characters in ids, names and values are shown as visible markers on every page (issue 6, defect 20).

A right-to-left override makes "abc\u202egpj" read as "abcjpg"; a zero-width space makes two ids look
the same. Wherever an identifier or a user-supplied value is shown, the page must carry a visible
⟨U+XXXX⟩ marker in its place and never the raw character.
"""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from annotations.models import Dataset, Feature, ImportBatch, LabelClass
from governance.models import PromotionRequest
from models_app.models import TrainingRun, TrainingTrigger
from tests.conftest import login

RLO = "\u202e"
ZWSP = "\u200b"
RLO_MARK = "⟨U+202E⟩"
ZWSP_MARK = "⟨U+200B⟩"


def _text(html: str) -> str:
    """What a reader sees: the page without its tags (and so without their attributes)."""
    return re.sub(r"<[^>]*>", "", html)


def _assert_revealed(html: str, *markers: str) -> None:
    """No raw hidden character on the page; each of `markers` in its visible text."""
    assert RLO not in html and ZWSP not in html
    text = _text(html)
    for marker in markers:
        assert marker in text, marker


@pytest.fixture
def spoofed(trained_dataset):
    """The trained dataset with a hidden character in its name, a feature, a label, a file and a run's reason."""
    Dataset.objects.filter(pk=trained_dataset.pk).update(
        name=f"Tumours{RLO}vdc", description=f"desc{ZWSP}ription", guideline_version=f"v{RLO}2"
    )
    Feature.objects.filter(dataset=trained_dataset, name="texture").update(unit=f"grey{ZWSP}levels")
    LabelClass.objects.filter(dataset=trained_dataset, name="benign").update(display_name=f"Be{RLO}nign")
    ImportBatch.objects.filter(dataset=trained_dataset, file_name="pool.csv").update(file_name=f"pool{RLO}vsc.exe")
    TrainingRun.objects.filter(dataset=trained_dataset).update(reason=f"first{RLO}tsrif")
    TrainingTrigger.objects.filter(dataset=trained_dataset).update(reason=f"first{RLO}tsrif")  # shown per trigger
    PromotionRequest.objects.filter(model_version__dataset=trained_dataset).update(
        reason=f"go{ZWSP}live", decision_reason=f"o{RLO}k"
    )
    return Dataset.objects.get(pk=trained_dataset.pk)


def test_the_dataset_page_shows_markers_for_hidden_characters(spoofed, model_admin):
    html = login(model_admin).get(reverse("annotations:dataset_detail", args=[spoofed.pk])).content.decode()

    _assert_revealed(html, f"pool{RLO_MARK}vsc.exe", f"grey{ZWSP_MARK}levels", f"desc{ZWSP_MARK}ription")
    assert f"<title>Tumours{RLO_MARK}vdc · Loupe</title>" in html
    assert html.count(RLO_MARK) >= 6  # title, nav, heading, guideline, label, file
    assert '<span class="hidden-char" title="U+202E RIGHT-TO-LEFT OVERRIDE">⟨U+202E⟩</span>' in html


def test_the_home_page_shows_markers_for_hidden_characters(spoofed, model_admin):
    html = login(model_admin).get(reverse("home")).content.decode()

    _assert_revealed(html, RLO_MARK)


def test_the_models_and_run_pages_show_markers_for_hidden_characters(spoofed, model_admin):
    client = login(model_admin)
    run = TrainingRun.objects.filter(dataset=spoofed).order_by("pk").first()

    overview = client.get(reverse("models_app:overview", args=[spoofed.pk])).content.decode()
    detail = client.get(reverse("models_app:run_detail", args=[run.pk])).content.decode()

    _assert_revealed(overview, f"Models · Tumours{RLO_MARK}vdc")
    _assert_revealed(detail, f"first{RLO_MARK}tsrif")


def test_the_promotion_pages_show_markers_for_hidden_characters(spoofed, model_admin):
    client = login(model_admin)
    promotion = PromotionRequest.objects.filter(model_version__dataset=spoofed).get()

    listing = client.get(reverse("governance:promotion_list", args=[spoofed.pk])).content.decode()
    detail = client.get(reverse("governance:promotion_detail", args=[promotion.pk])).content.decode()

    _assert_revealed(listing, f"Promotions · Tumours{RLO_MARK}vdc")
    _assert_revealed(detail, f"go{ZWSP_MARK}live", f"o{RLO_MARK}k")


def test_the_audit_filter_menu_names_datasets_with_markers(spoofed, auditor):
    html = login(auditor).get(reverse("governance:audit_list")).content.decode()

    _assert_revealed(html, f"Tumours{RLO_MARK}vdc")


def test_a_message_echoing_a_typed_value_shows_its_markers(spoofed, model_admin):
    response = login(model_admin).post(
        reverse("governance:promotion_request", args=[spoofed.pk]),
        {"model_version": f"12{RLO}3", "reason": "r"},
        follow=True,
    )

    _assert_revealed(response.content.decode(), f"“12{RLO_MARK}3” is not a model version id.")


def test_the_site_admin_lists_dataset_names_with_markers(spoofed, db):
    from django.contrib.auth.models import User

    admin = User.objects.create_superuser("root", "root@example.org", "x")
    changelist = login(admin).get(reverse("admin:annotations_dataset_changelist")).content.decode()
    memberships = login(admin).get(reverse("admin:annotations_datasetmembership_changelist")).content.decode()

    # The admin's own markup (a row checkbox's aria-label) names the record by str(): not on screen.
    assert f"Tumours{RLO_MARK}vdc" in _text(changelist) and f"v{RLO_MARK}2" in _text(changelist)
    assert RLO not in _text(changelist)
    assert f"Tumours{RLO_MARK}vdc" in _text(memberships) and RLO not in _text(memberships)
