"""The hash-chained audit trail: it verifies, tampering is refused or detected, and auditors can search it."""

from __future__ import annotations

import io
import threading
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from annotations.models import Dataset, Item, LabelClass, Review
from annotations.services import ReviewAnswer, review_submit
from governance.audit import audit_record
from governance.audit_chain import GENESIS_HASH, chain_hash, event_fields, verify_chain
from governance.models import AuditEvent, AuditVerificationRun
from tests.conftest import PASSWORD, login

ON_POSTGRES = connection.vendor == "postgresql"
TRIGGER = "governance_auditevent_append_only"


def _chain() -> tuple[int, object]:
    return verify_chain(AuditEvent.objects.order_by("seq"))


def _raw(sql: str, params: list | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _tamper(sql: str, params: list) -> None:
    """Change the table behind the application's back, as someone with database access could.

    That first takes disabling the append-only trigger (on PostgreSQL only the
    table owner can; on SQLite whoever can write the file can drop it); either is
    undone when the test's transaction rolls back. On PostgreSQL the deferred
    foreign-key checks are run first: ALTER TABLE refuses to run while any are
    pending.
    """
    if ON_POSTGRES:
        _raw("SET CONSTRAINTS ALL IMMEDIATE")
        _raw(f"ALTER TABLE governance_auditevent DISABLE TRIGGER {TRIGGER}")
    else:
        _raw(f"DROP TRIGGER {TRIGGER}_update")
        _raw(f"DROP TRIGGER {TRIGGER}_delete")
    _raw(sql, params)


def _open_items(dataset: Dataset) -> list[Item]:
    return list(Item.objects.filter(dataset=dataset, queue_state=Item.QueueState.OPEN).order_by("pk"))


def _review(item: Item, user, label_name: str | None = "malignant") -> Review:  # type: ignore[no-untyped-def]
    label = LabelClass.objects.get(dataset=item.dataset, name=label_name) if label_name else None
    answer = ReviewAnswer(label=label, shown_prediction_id=item.prediction_id, reason="looked at it")
    Item.objects.filter(pk=item.pk).update(leased_to=user)  # as the queue hands it out
    return review_submit(item_id=item.pk, reviewer=user, answer=answer)


@pytest.fixture
def workload(trained_dataset, reviewer, adjudicator, model_admin):
    """Reviews, a skip, a policy change and a login on top of the trained dataset's own history."""
    from models_app.services import PolicyChoice, retraining_policy_update

    items = _open_items(trained_dataset)
    _review(items[0], reviewer, "malignant")
    _review(items[1], reviewer, "benign")
    _review(items[2], adjudicator, None)
    _review(items[3], adjudicator, "benign")
    retraining_policy_update(
        dataset=trained_dataset, user=model_admin, choice=PolicyChoice(enabled=True, new_gold_labels=50)
    )
    login(reviewer)
    return trained_dataset


# --- the chain -------------------------------------------------------------------


def test_the_chain_verifies_after_a_workload(workload):
    events = list(AuditEvent.objects.order_by("seq"))

    checked, broken = _chain()

    assert broken is None
    assert checked == len(events) > 10
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[0].prev_hash == GENESIS_HASH
    assert all(later.prev_hash == earlier.hash for earlier, later in zip(events, events[1:], strict=False))
    assert {
        "review.submitted",
        "review.skipped",
        "retraining_policy.updated",
        "auth.login",
        "promotion.approved",
        "model_version.registered",
    } <= {e.action for e in events}


def _verify_through_the_page(client, capture, **headers):  # type: ignore[no-untyped-def]
    """Press "Verify": the request queues a run, its after-commit dispatch runs the (eager) task; then the
    run's own page, as the block's poll would ask for it. Returns (answer to the POST, the run's page)."""
    with capture(execute=True):
        asked = client.post(reverse("governance:audit_verify"), **headers)
    run = AuditVerificationRun.objects.latest("pk")
    return asked, client.get(reverse("governance:audit_verify_run", args=[run.pk]), **headers)


def test_the_auditor_verify_page_reports_a_good_chain(workload, auditor, django_capture_on_commit_callbacks):
    client = login(auditor)  # the sign-in is an event too
    # counted first: the request and the worker's claim log themselves before the walk starts
    events = AuditEvent.objects.count() + 2

    asked, response = _verify_through_the_page(client, django_capture_on_commit_callbacks)

    assert asked.status_code == 302  # without htmx, to the run's page
    assert response.status_code == 200
    assert response.context["broken"] is None
    assert response.context["checked"] == events
    assert b"no broken link" in response.content
    assert b"Last verified" in response.content


def test_the_database_refuses_to_update_or_delete_an_audit_event(workload):
    target = AuditEvent.objects.order_by("seq")[5]

    with pytest.raises(DatabaseError, match=r"append-only \(UPDATE refused\)"), transaction.atomic():
        _raw("UPDATE governance_auditevent SET after = %s WHERE seq = %s", ['{"forged": true}', target.seq])
    with pytest.raises(DatabaseError, match=r"append-only \(DELETE refused\)"), transaction.atomic():
        _raw("DELETE FROM governance_auditevent WHERE seq = %s", [target.seq])

    assert AuditEvent.objects.get(seq=target.seq).after == target.after
    assert _chain()[1] is None


def test_altering_an_events_content_is_detected_naming_its_seq(workload):
    target = AuditEvent.objects.filter(action="review.submitted").order_by("seq").first()
    assert target is not None

    _tamper(
        "UPDATE governance_auditevent SET after = %s WHERE seq = %s",
        ['{"label": "benign", "forged": true}', target.seq],
    )
    checked, broken = _chain()

    assert broken is not None
    assert broken.seq == target.seq
    assert "altered" in broken.reason
    assert checked == target.seq - 1


def test_deleting_a_middle_event_is_detected_naming_the_missing_seq(workload):
    total = AuditEvent.objects.count()
    middle = total // 2

    _tamper("DELETE FROM governance_auditevent WHERE seq = %s", [middle])
    checked, broken = _chain()

    assert broken is not None
    assert broken.seq == middle
    assert "missing" in broken.reason
    assert checked == middle - 1


def test_a_forged_event_appended_without_the_chain_is_detected(workload):
    last = AuditEvent.objects.order_by("-seq").first()
    forged = AuditEvent(
        seq=last.seq + 1,
        created_at=timezone.now(),
        action="promotion.approved",
        object_type="promotion_request",
        object_id="1",
        prev_hash=last.hash,
        hash="f" * 64,
    )
    forged.save()  # inserts are allowed; only the hash gives it away

    checked, broken = _chain()

    assert broken is not None
    assert broken.seq == forged.seq
    assert checked == last.seq


def test_the_orm_refuses_to_change_or_delete_a_recorded_event(workload):
    event = AuditEvent.objects.order_by("seq").first()
    event.reason = "rewritten"

    with pytest.raises(ValueError, match="append-only"):
        event.save()
    with pytest.raises(ValueError, match="append-only"):
        event.delete()

    assert AuditEvent.objects.get(pk=event.pk).reason != "rewritten"


def test_verify_audit_command_succeeds_on_a_good_chain(workload):
    out = io.StringIO()
    events = AuditEvent.objects.count()  # counted first: the verification then logs itself as one more

    call_command("verify_audit", stdout=out)

    assert f"Audit chain verified: {events} events" in out.getvalue()
    assert AuditEvent.objects.order_by("-seq").first().action == "audit.verified"


def test_verify_audit_command_fails_naming_the_broken_event(workload):
    target = AuditEvent.objects.filter(action="retraining_policy.updated").get()
    _tamper("UPDATE governance_auditevent SET reason = %s WHERE seq = %s", ["nobody did this", target.seq])

    with pytest.raises(CommandError, match=rf"Audit chain broken at event #{target.seq}:"):
        call_command("verify_audit", stdout=io.StringIO())


def test_the_auditor_verify_page_names_the_broken_event(workload, auditor, django_capture_on_commit_callbacks):
    target = AuditEvent.objects.filter(action="review.skipped").get()
    _tamper("UPDATE governance_auditevent SET actor_username = %s WHERE seq = %s", ["someone-else", target.seq])

    _, response = _verify_through_the_page(login(auditor), django_capture_on_commit_callbacks)

    assert response.status_code == 200
    assert response.context["broken"]["seq"] == target.seq
    assert f"Chain broken at event #{target.seq}".encode() in response.content


def test_audit_record_outside_a_transaction_raises(transactional_db):
    with pytest.raises(RuntimeError, match="must run inside the transaction"):
        audit_record(actor=None, action="test.autocommit", after={"x": 1})

    assert not AuditEvent.objects.filter(action="test.autocommit").exists()


def test_an_event_hash_covers_exactly_its_fields_and_predecessor(db):
    with transaction.atomic():
        first = audit_record(actor=None, actor_username="system", action="test.one", after={"n": 1})
        second = audit_record(actor=None, action="test.two", before={"n": 1}, after={"n": 2}, reason="because")

    stored = AuditEvent.objects.get(pk=second.pk)
    assert stored.prev_hash == first.hash
    assert chain_hash(stored.prev_hash, event_fields(stored)) == stored.hash


# --- logins -------------------------------------------------------------------


def test_a_login_is_recorded(reviewer):
    response = Client().post(reverse("login"), {"username": "reviewer", "password": PASSWORD})

    assert response.status_code == 302
    event = AuditEvent.objects.get(action="auth.login")
    assert event.actor == reviewer
    assert event.actor_username == "reviewer"
    assert (event.object_type, event.object_id) == ("user", str(reviewer.pk))
    assert event.request_id != ""


def test_a_logout_is_recorded(reviewer):
    client = Client()
    client.post(reverse("login"), {"username": "reviewer", "password": PASSWORD})

    response = client.post(reverse("logout"))

    assert response.status_code == 302
    event = AuditEvent.objects.get(action="auth.logout")
    assert event.actor == reviewer
    assert event.object_id == str(reviewer.pk)
    assert AuditEvent.objects.get(action="auth.login").seq < event.seq


def test_a_failed_login_is_kept_by_axes_off_the_chain_without_the_password(reviewer):
    # Changed on purpose (login throttling): a failure is counted in axes' tables, and
    # only a lockout reaches the chain (tests/governance/test_login_throttling.py).
    response = Client().post(reverse("login"), {"username": "reviewer", "password": "wrong-guess-123"})

    assert response.status_code == 200  # the form again, with an error
    assert not AuditEvent.objects.filter(action__startswith="auth.").exists()
    attempt = AccessAttempt.objects.get(username="reviewer")
    assert attempt.failures_since_start == 1
    assert "wrong-guess-123" not in attempt.post_data


def test_a_failed_login_for_an_unknown_user_is_kept_too(db):
    Client().post(reverse("login"), {"username": "mallory", "password": "whatever-it-is"})

    assert AccessAttempt.objects.get(username="mallory").failures_since_start == 1
    assert not AuditEvent.objects.exists()


# --- concurrency ----------------------------------------------------------------


@pytest.mark.skipif(
    not ON_POSTGRES,
    reason="SQLite takes one database-wide write lock, so writers cannot interleave; "
    "the row lock on the chain head is what needs checking, and that is PostgreSQL",
)
def test_concurrent_writers_leave_a_chain_without_gaps_or_forks(transactional_db):
    threads_n, events_each = 8, 10
    barrier = threading.Barrier(threads_n)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            for i in range(events_each):
                with transaction.atomic():
                    audit_record(
                        actor=None,
                        actor_username=f"thread{n}",
                        action="test.concurrent",
                        object_type="thread",
                        object_id=n,
                        after={"i": i},
                    )
        except BaseException as exc:  # report any failure to the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert not any(thread.is_alive() for thread in threads)
    events = list(AuditEvent.objects.order_by("seq"))
    assert len([e for e in events if e.action == "test.concurrent"]) == threads_n * events_each
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    for n in range(threads_n):
        assert [e.after["i"] for e in events if e.actor_username == f"thread{n}"] == list(range(events_each))
    checked, broken = _chain()
    assert broken is None
    assert checked == len(events)


# --- the auditor's pages ----------------------------------------------------------


@pytest.fixture
def other_dataset_event(db, auditor):
    other = Dataset.objects.create(name="Other", slug="other")
    with transaction.atomic():
        audit_record(
            actor=None,
            actor_username="importer",
            action="import.completed",
            object_type="import_batch",
            object_id=1,
            dataset_id=other.pk,
            after={"rows": 3},
        )
    return other


def _listed(client: Client, **params: str):  # type: ignore[no-untyped-def]
    """The page and its events (as a queryset, to filter and count); the workloads fit on one page."""
    response = client.get(reverse("governance:audit_list"), params)
    page = response.context["page"]
    assert page.older is None, "more events than one page: the assertions below would see only some"
    return response, AuditEvent.objects.filter(pk__in=[e.pk for e in page.events]).order_by("-seq")


def test_the_audit_list_filters_by_actor(workload, auditor):
    response, events = _listed(login(auditor), actor="admin2")

    assert response.status_code == 200
    assert events.count() == AuditEvent.objects.filter(actor_username="admin2").count() > 0
    assert set(events.values_list("actor_username", flat=True)) == {"admin2"}


def test_the_audit_list_filters_by_action(workload, auditor):
    response, events = _listed(login(auditor), action="review.submitted")

    assert response.status_code == 200
    assert events.count() == 3
    assert set(events.values_list("action", flat=True)) == {"review.submitted"}


def test_the_audit_list_filters_by_dataset(workload, auditor, other_dataset_event):
    client = login(auditor)

    _, others = _listed(client, dataset=str(other_dataset_event.pk))
    _, tumours = _listed(client, dataset=str(workload.pk))

    assert list(others.values_list("action", flat=True)) == ["import.completed"]
    assert tumours.count() == AuditEvent.objects.filter(dataset_id=workload.pk).count() > 10
    assert set(tumours.values_list("dataset_id", flat=True)) == {workload.pk}


def test_the_audit_list_filters_by_date(workload, auditor):
    client = login(auditor)
    today = timezone.localdate()

    _, todays = _listed(client, date_from=today.isoformat(), date_to=today.isoformat())
    _, future = _listed(client, date_from=(today + timedelta(days=1)).isoformat())
    response, past = _listed(client, date_to=(today - timedelta(days=1)).isoformat())

    assert todays.count() == AuditEvent.objects.count()
    assert future.count() == 0
    assert past.count() == 0
    assert b"No events match these filters." in response.content


def test_the_audit_list_combines_filters(workload, auditor):
    _, events = _listed(login(auditor), actor="reviewer", action="review.submitted", dataset=str(workload.pk))

    assert events.count() == 2
    assert {e.after["label"] for e in events} == {"malignant", "benign"}


def test_the_audit_list_costs_the_same_number_of_queries_however_many_events_it_shows(workload, auditor):
    client = login(auditor)
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("governance:audit_list"), {"action": "retraining_policy.updated"})
    with CaptureQueriesContext(connection) as many:
        client.get(reverse("governance:audit_list"))

    # The only difference allowed: checking the signatures a page records costs one query for the signatures
    # and two per kind of signed record (model versions, promotion requests), however many events show them.
    assert abs(len(many) - len(few)) <= 1 + 2 * 2


def test_a_bad_date_on_the_audit_list_is_a_400_with_a_clear_message(workload, auditor):
    response = login(auditor).get(reverse("governance:audit_list"), {"date_from": "2024-02-31"})

    assert response.status_code == 400
    assert "From: “2024-02-31” is not a date (YYYY-MM-DD)." in response.content.decode()


def test_a_bad_dataset_on_the_audit_list_is_a_400_with_a_clear_message(workload, auditor):
    response = login(auditor).get(reverse("governance:audit_list"), {"dataset": "tumours"})

    assert response.status_code == 400
    assert "Dataset: “tumours” is not a dataset id." in response.content.decode()


def test_the_audit_api_filters_and_rejects_a_bad_date(workload, auditor):
    client = login(auditor)

    good = client.get("/api/audit-events/", {"action": "review.skipped"})
    bad = client.get("/api/audit-events/", {"date_from": "yesterday"})

    assert good.status_code == 200
    assert [e["action"] for e in good.json()["results"]] == ["review.skipped"]
    assert bad.status_code == 400
    assert bad.json()["date_from"] == ["“yesterday” is not a date (YYYY-MM-DD)."]


def test_item_history_shows_reviews_and_predictions_for_the_item(trained_dataset, reviewer, auditor):
    item = _open_items(trained_dataset)[0]
    review = _review(item, reviewer, "benign")

    response = login(auditor).get(reverse("governance:item_history", args=[item.pk]))

    assert response.status_code == 200
    assert response.context["item"] == item
    assert response.context["reviews"] == [review]
    predictions = response.context["predictions"]
    assert len(predictions) == 1 and predictions[0].model_version.version == 1
    assert response.context["gold_label"].label.name == "benign"
    assert [e.action for e in response.context["events"]] == ["review.submitted"]
    html = response.content.decode()
    assert item.external_id in html
    assert "<td><bdi>reviewer</bdi></td>" in html
    assert ">v1</a>" in html
    assert "No reviews." not in html and "No predictions." not in html


def test_item_history_shows_seed_labels_in_training_snapshots(trained_dataset, auditor):
    seed_item = Item.objects.filter(dataset=trained_dataset, external_id="t00000").get()

    response = login(auditor).get(reverse("governance:item_history", args=[seed_item.pk]))

    assert response.status_code == 200
    assert response.context["reviews"] == []
    assert len(response.context["snapshots"]) == 1
    assert b"No reviews." in response.content


def test_deleting_the_newest_events_is_detected_against_the_chain_head(trained_dataset):
    from django.core.management import CommandError, call_command

    from governance.audit_chain import verify_chain
    from governance.selectors import chain_head

    head = chain_head()
    # Simulate an attacker removing the tail (TRUNCATE is refused too: governance 0017),
    # with the append-only trigger switched off as only the owner or a superuser can.
    _tamper("DELETE FROM governance_auditevent", [])
    checked, broken = verify_chain(AuditEvent.objects.order_by("seq"), head=head)
    assert checked == 0 and broken is not None and "events are missing" in broken.reason
    with pytest.raises(CommandError, match="events are missing"):
        call_command("verify_audit")


def test_the_audit_list_pages_keep_the_filters(auditor):
    with transaction.atomic():
        for n in range(60):
            audit_record(actor=None, action="test.paged", object_type="thing", object_id=n)
        audit_record(actor=None, action="test.other", object_type="thing", object_id=0)
    client = login(auditor)

    first = client.get(reverse("governance:audit_list"), {"action": "test.paged"})
    page = first.context["page"]
    assert len(page.events) == 50 and page.newer is None
    assert f'href="?action=test.paged&amp;before={page.older}"' in first.content.decode()

    second = client.get(reverse("governance:audit_list"), {"action": "test.paged", "before": page.older})
    rest = second.context["page"]
    assert {e.action for e in rest.events} == {"test.paged"}
    assert len(rest.events) == 10 and rest.older is None
    assert f'href="?action=test.paged&amp;after={rest.newer}"' in second.content.decode()
    seen = [e.seq for e in page.events + rest.events]
    assert seen == sorted(seen, reverse=True) and len(set(seen)) == 60, "no event lost or shown twice"

    back = client.get(reverse("governance:audit_list"), {"action": "test.paged", "after": rest.newer})
    assert [e.seq for e in back.context["page"].events] == [e.seq for e in page.events]


def test_the_audit_list_counts_nothing_and_scans_no_column_for_its_menus(auditor, django_assert_max_num_queries):
    """At a million events a COUNT or a DISTINCT over the table is most of the page (issue 7, point 7)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with transaction.atomic():
        for n in range(120):
            audit_record(
                actor=None, actor_username=f"who{n % 3}", action=f"test.kind{n % 4}", object_type="t", object_id=n
            )
    client = login(auditor)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("governance:audit_list"), {"before": 100})
    sql = " ".join(q["sql"].upper() for q in queries.captured_queries)
    assert "COUNT(" not in sql and "DISTINCT" not in sql and "OFFSET" not in sql
    assert response.context["actions"][:4] == ["auth.login", "test.kind0", "test.kind1", "test.kind2"]
    assert {"who0", "who1", "who2"} <= set(response.context["actors"])


@pytest.mark.django_db
def test_numbers_the_database_rewrites_still_verify():
    """jsonb gives 1e16 back as 10000000000000000 and -0.0 as 0.0: the event is hashed in that form."""
    with transaction.atomic():
        audit_record(
            actor=None,
            action="test.numbers",
            after={"minus_zero": -0.0, "big": 1e16, "bigger": [1.5e300, -2e20], "small": 1e-7, "plain": 0.1},
        )
    stored = AuditEvent.objects.get(action="test.numbers")
    assert stored.after == {
        "minus_zero": 0.0,
        "big": 10**16,
        "bigger": [int(15 * 10**299), -2 * 10**20],
        "small": 1e-7,
        "plain": 0.1,
    }
    checked, broken = verify_chain(AuditEvent.objects.order_by("seq"))
    assert broken is None, broken


def test_opening_the_verify_page_changes_nothing_and_verifying_is_a_post_that_refreshes_the_integrity_line(
    workload, auditor, django_capture_on_commit_callbacks
):
    client = login(auditor)
    events = AuditEvent.objects.count()

    page = client.get(reverse("governance:audit_verify"))

    assert page.status_code == 200 and b"Verify the hash chain and checkpoints" in page.content
    assert AuditEvent.objects.count() == events  # a GET walks nothing and records nothing
    asked, swapped = _verify_through_the_page(client, django_capture_on_commit_callbacks, HTTP_HX_REQUEST="true")
    # The POST's answer is the queued run, polling itself; the poll after the walk has the outcome.
    assert b"Verifying the audit trail" in asked.content and b'hx-trigger="every 1s"' in asked.content
    assert b'hx-trigger="every 1s"' not in swapped.content
    assert b"no broken link" in swapped.content
    assert b"Verify again" in swapped.content  # the result offers the next verification
    # The line at the top of every auditor page is replaced in the same response (htmx out-of-band swap).
    assert b'id="audit-integrity"' in swapped.content and b'hx-swap-oob="true"' in swapped.content
    assert b"no problem found" in swapped.content
    assert AuditEvent.objects.filter(action="audit.verified").count() == 1
