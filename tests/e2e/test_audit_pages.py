"""The audit list and the item history in a real browser (issue 6, defects 14 and 20).

A full page of the audit trail (50 events of every kind a day's work writes) must read as a
table, not a wall of JSON: at 1366 px wide it is measured, and must stay under 3,000 px tall
(it was 11,000 px with the JSON printed). An item id with a right-to-left override is shown
with a visible marker, never reordered.
"""

from __future__ import annotations

import pytest
from django.db import transaction

from annotations.models import Item, LabelClass
from annotations.services import ReviewAnswer, review_submit
from governance.audit import audit_record
from governance.models import AuditEvent
from models_app.models import RetrainingPolicy
from tests.e2e.browser import sign_in, sync_api

expect = sync_api().expect
pytestmark = pytest.mark.e2e

PAGE_HEIGHT_LIMIT = 3_000  # px, at 1366 px wide


def _a_days_work(dataset, reviewer) -> None:  # type: ignore[no-untyped-def]
    """Reviews (the widest events: ten recorded fields each) and policy changes, on top of the
    trained dataset's imports, training, promotion and predictions: more than a page of events."""
    from models_app.services import PolicyChoice, retraining_policy_update

    RetrainingPolicy.objects.filter(dataset=dataset).update(enabled=False)  # no training in the middle
    labels = list(LabelClass.objects.filter(dataset=dataset))
    items = list(Item.objects.filter(dataset=dataset, queue_state=Item.QueueState.OPEN).order_by("pk")[:30])
    for n, item in enumerate(items):
        Item.objects.filter(pk=item.pk).update(leased_to=reviewer)
        reason = "" if n % 3 else "The border is irregular and the texture is coarse; benign by the guideline."
        answer = ReviewAnswer(label=labels[n % 2], shown_prediction_id=item.prediction_id, reason=reason)
        review_submit(item_id=item.pk, reviewer=reviewer, answer=answer)
    admin = dataset.memberships.filter(user__username="admin1").get().user
    for n in range(6):
        retraining_policy_update(
            dataset=dataset, user=admin, choice=PolicyChoice(enabled=bool(n % 2), new_gold_labels=20 + n)
        )


def test_a_full_page_of_the_audit_trail_is_compact_and_names_items_by_their_ids(  # ~8 s
    live_server, page, trained_dataset, reviewer, model_admin, auditor
):
    _a_days_work(trained_dataset, reviewer)
    assert AuditEvent.objects.count() > 50
    reviewed = Item.objects.filter(dataset=trained_dataset, queue_state=Item.QueueState.DONE).order_by("-pk").first()

    page.set_viewport_size({"width": 1366, "height": 768})
    sign_in(page, live_server.url, "auditor")
    page.goto(f"{live_server.url}/governance/audit/")
    expect(page.locator("table.audit tbody tr")).to_have_count(50)

    height = page.evaluate("document.documentElement.scrollHeight")
    print(f"\naudit list, 50 events, 1366 px wide: {height} px tall")  # the figure for the report (-s)
    assert height < PAGE_HEIGHT_LIMIT, f"a page of 50 events is {height} px tall"
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366  # and no sideways scrolling

    # The item is named as reviewers know it, and links to its history.
    link = page.get_by_role("link", name=reviewed.external_id, exact=True).first
    expect(link).to_be_visible()
    # A long diff keeps the rest one click away.
    more = page.locator("details.diff-more").first
    more.locator("summary").click()
    expect(more.locator("ul.diff")).to_be_visible()

    link.click()
    expect(page.get_by_role("heading", name=f"Item {reviewed.external_id}")).to_be_visible()
    # Decisions first: the reviews are on screen; the feature values are folded until asked for.
    expect(page.get_by_role("heading", name="Reviews")).to_be_in_viewport()
    values = page.locator("details.features table")
    expect(values).to_be_hidden()
    page.locator("details.features summary").click()
    expect(values).to_be_visible()


def test_an_item_id_with_a_right_to_left_override_reads_as_stored(  # ~4 s
    live_server, page, trained_dataset, auditor
):
    item = Item.objects.filter(dataset=trained_dataset).order_by("pk").first()
    Item.objects.filter(pk=item.pk).update(external_id="abc\u202egpj.exe")
    with transaction.atomic():
        audit_record(actor=None, action="test.spoof", obj=item, object_type="item", dataset_id=trained_dataset.pk)

    sign_in(page, live_server.url, "auditor")
    page.goto(f"{live_server.url}/governance/audit/?action=test.spoof")
    cell = page.locator("table.audit td.object")
    # What the eye reads, left to right, is what is stored: the override is a visible marker.
    expect(cell).to_contain_text("abc⟨U+202E⟩gpj.exe")
    assert "\u202e" not in page.locator("main").inner_text()
    page.goto(f"{live_server.url}/governance/audit/items/{item.pk}/")
    expect(page.locator("h1")).to_contain_text("abc⟨U+202E⟩gpj.exe")
    assert "\u202e" not in page.title() and "⟨U+202E⟩" in page.title()
