"""Every state change writes an audit event (issue 10, point 11).

The write paths are not listed by hand: they come from the URLconf
(`get_resolver()`, walked recursively, the admin and the API included). For each
URL pattern and each writing method it accepts (read from the view's
`require_http_methods` family of decorators, or from the DRF / class-based view's
handlers; a view without either accepts them all), `WRITES` says how to make a
request that succeeds, as a persona allowed to make it, in the world of
tests/governance/test_roles.py. Each request is sent in its own savepoint, and
the app's tables are fingerprinted before and after it: if anything changed, at
least one `AuditEvent` must have been written by that request.

A pattern with a writing method that is neither in `WRITES` nor in `NO_WRITE`
(with the reason) fails `test_every_write_path_in_the_urlconf_is_tried_or_excused`, so a new write path
cannot be added silently. The Django admin's patterns are generated from
`admin.site._registry`: each registered ModelAdmin is tried for add, change,
delete and each of its changelist actions as the site admin; a model admin that
refuses one of them must answer 403 and change nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client

from annotations.models import Item, LabelClass
from annotations.services import ReviewAnswer, review_submit
from governance.credentials import api_token_create
from governance.models import AuditEvent
from tests.conftest import PASSWORD, csv_bytes, login, synthetic_rows
from tests.governance.admin_writes import AdminWrite, admin_request, admin_writes
from tests.governance.test_roles import PERSONAS, World, _build_world
from tests.governance.write_paths import (
    ENVELOPE_CLAUSES,
    ENVELOPE_DRAFT_FORM,
    Request,
    Write,
    concrete_url,
    envelope_draft,
    fingerprint,
    last_seq,
    send,
    write_methods,
    write_paths,
)


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker) -> Iterator[World]:
    """The role matrix's world (tests/governance/test_roles.py), built once inside a transaction
    that is rolled back when the module ends; each test runs in a savepoint inside it."""
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            built = _build_world()
        except BaseException:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)
            raise
    yield built
    with django_db_blocker.unblock():
        transaction.set_rollback(True)
        outer.__exit__(None, None, None)


# --- the requests --------------------------------------------------------------------------------


def _leased_to(world: World, username: str) -> None:
    Item.objects.filter(pk=world.open_item_id).update(leased_to=User.objects.get(username=username))


def _disputed(world: World) -> dict:
    """The open item answered "uncertain" by a reviewer (so awaiting adjudication), held for the adjudicator."""
    ctx = _answered(world, uncertain=True)
    _leased_to(world, "adjudicator")
    return ctx


def _answered(world: World, *, uncertain: bool = False) -> dict:
    """The open item answered by `reviewer` (uncertain: sent to adjudication, overlap being 1)."""
    _leased_to(world, "reviewer")
    item = Item.objects.get(pk=world.open_item_id)
    label = None if uncertain else LabelClass.objects.get(dataset_id=world.dataset_id, name="malignant")
    review = review_submit(
        item_id=item.pk,
        reviewer=User.objects.get(username="reviewer"),
        answer=ReviewAnswer(label=label, shown_prediction_id=item.prediction_id, uncertain=uncertain),
    )
    return {"review_id": review.pk}


def _own_token(world: World) -> dict:
    token, _ = api_token_create(user=User.objects.get(username="reviewer"), name="laptop", days=30)
    return {"token_id": token.pk}


def _csv_upload(world: World, ctx: dict) -> dict:
    rows = synthetic_rows(3, start=900, labelled=False)
    return {"file": SimpleUploadedFile("more.csv", csv_bytes(rows), content_type="text/csv"), "purpose": "review"}


def _snapshot_id(world: World) -> int:
    from models_app.models import ModelVersion

    return ModelVersion.objects.get(pk=world.unrequested_version_id).snapshot_id


def _narrative_draft(world: World) -> dict:
    """A draft of the unrequested version's model-card narrative, written by model_admin (who signs it)."""
    from governance.narratives import narrative_write
    from models_app.models import ModelVersion

    narrative = narrative_write(
        user=User.objects.get(username=PERSONAS["model_admin"]),
        document="model_card",
        subject=ModelVersion.objects.get(pk=world.unrequested_version_id),
        sections={"intended_use": "Second reader for breast biopsies."},
    )
    return {"narrative_id": narrative.pk}


def _ds(path: str) -> Callable[[World, dict], str]:
    return lambda w, c: path.format(d=w.dataset_id, item=w.open_item_id, run=w.run_id, v=w.unrequested_version_id)


DECIDE = {"decision": "approve", "password": PASSWORD, "reason": "looks right"}
NEW_DATASET = {
    "name": "Lungs",
    "slug": "lungs",
    "features": [{"name": "volume", "dtype": "float", "unit": "ml"}],
    "labels": [{"name": "nodule"}, {"name": "clear"}],
}

WRITES: dict[tuple[str, str], Write] = {
    ("login/", "POST"): Write(
        "anonymous", (302,), _ds("/login/"), data=lambda w, c: {"username": "reviewer", "password": PASSWORD}
    ),
    # ProcessFormView answers PUT as POST, but Django parses no form from a PUT body: the form is invalid.
    ("login/", "PUT"): Write("anonymous", (200,), _ds("/login/"), changes=False),
    ("logout/", "POST"): Write("reviewer", (302, 200), _ds("/logout/")),
    ("account/password/", "POST"): Write(
        "reviewer",
        (302,),
        _ds("/account/password/"),
        data=lambda w, c: {
            "old_password": PASSWORD,
            "new_password1": "a-new-long-passphrase-9",
            "new_password2": "a-new-long-passphrase-9",
        },
    ),
    ("account/tokens/new/", "POST"): Write(
        "reviewer", (200,), _ds("/account/tokens/new/"), data=lambda w, c: {"name": "laptop", "days": "30"}
    ),
    ("account/tokens/<int:pk>/revoke/", "POST"): Write(
        "reviewer", (302,), lambda w, c: f"/account/tokens/{c['token_id']}/revoke/", setup=_own_token
    ),
    ("datasets/<int:dataset_id>/import/", "POST"): Write(
        "model_admin", (302,), _ds("/datasets/{d}/import/"), data=_csv_upload, body="multipart"
    ),
    ("datasets/<int:dataset_id>/guideline/", "POST"): Write(
        "model_admin",
        (302,),
        _ds("/datasets/{d}/guideline/"),
        data=lambda w, c: {"text": "# Rules", "action": "publish"},
    ),
    ("datasets/<int:dataset_id>/review/<int:item_id>/", "POST"): Write(
        "reviewer",
        (302,),
        _ds("/datasets/{d}/review/{item}/"),
        data=lambda w, c: {"label": "malignant", "shown_prediction": w.open_item_prediction_id},
        setup=lambda w: _leased_to(w, "reviewer") or {},
    ),
    ("datasets/<int:dataset_id>/reviews/<int:review_id>/revise/", "POST"): Write(
        "reviewer",
        (200, 302),
        lambda w, c: f"/datasets/{w.dataset_id}/reviews/{c['review_id']}/revise/",
        data=lambda w, c: {"action": "submit", "label": "benign"},
        setup=_answered,
    ),
    ("datasets/<int:dataset_id>/adjudicate/<int:item_id>/", "POST"): Write(
        "adjudicator",
        (200, 302),
        _ds("/datasets/{d}/adjudicate/{item}/"),
        data=lambda w, c: {"label": "benign", "reason": "clear on the image"},
        setup=_disputed,
    ),
    ("datasets/<int:dataset_id>/queue-settings/", "POST"): Write(
        "model_admin",
        (302,),
        _ds("/datasets/{d}/queue-settings/"),
        data=lambda w, c: {"strategy": "margin", "audit_slice_percent": 10, "overlap": 2, "blind_percent": 5},
    ),
    ("datasets/<int:dataset_id>/model-output/", "POST"): Write(
        "model_admin",
        (302,),
        _ds("/datasets/{d}/model-output/"),
        data=lambda w, c: {"model_output": "off", "reason": "stop"},
    ),
    ("datasets/<int:dataset_id>/retention/", "POST"): Write(
        "model_admin", (302,), _ds("/datasets/{d}/retention/"), data=lambda w, c: {"retention_days": "30"}
    ),
    ("datasets/<int:dataset_id>/legal-hold/", "POST"): Write(
        "model_admin",
        (302,),
        _ds("/datasets/{d}/legal-hold/"),
        data=lambda w, c: {"legal_hold": "place", "reason": "litigation"},
    ),
    ("models/datasets/<int:dataset_id>/train/", "POST"): Write(
        "model_admin", (302,), _ds("/models/datasets/{d}/train/"), data=lambda w, c: {"reason": "more labels"}
    ),
    ("models/datasets/<int:dataset_id>/policy/", "POST"): Write(
        "model_admin",
        (302,),
        _ds("/models/datasets/{d}/policy/"),
        data=lambda w, c: {"enabled": "on", "new_gold_labels": "7"},
    ),
    # Confirmed: the job runs (in-process in tests) and reopens; the unconfirmed first post only renders.
    ("models/datasets/<int:dataset_id>/label-issues/", "POST"): Write(
        "model_admin",
        (302,),
        _ds("/models/datasets/{d}/label-issues/"),
        data=lambda w, c: {"limit": "3", "confirm": "yes"},
    ),
    # The world's run has finished: the admin is told so and nothing changes (no queued run can be
    # made without also dispatching it; the API twin below cancels one that is).
    ("models/runs/<int:run_id>/cancel/", "POST"): Write(
        "model_admin", (302,), _ds("/models/runs/{run}/cancel/"), changes=False
    ),
    ("models/versions/<int:model_version_id>/shadow/", "POST"): Write(
        "model_admin",
        (302,),
        _ds("/models/versions/{v}/shadow/"),
        data=lambda w, c: {"action": "start", "reason": "watch"},
    ),
    ("governance/datasets/<int:dataset_id>/promotions/request/", "POST"): Write(
        "model_admin",
        (302,),
        _ds("/governance/datasets/{d}/promotions/request/"),
        data=lambda w, c: {"model_version": w.unrequested_version_id, "reason": "v3 looks good", "password": PASSWORD},
    ),
    ("governance/datasets/<int:dataset_id>/promotions/rollback/", "POST"): Write(
        "model_admin",
        (302,),
        _ds("/governance/datasets/{d}/promotions/rollback/"),
        data=lambda w, c: {
            "rollback_reason": "misreads the scanner",
            "rollback_acknowledge_regressions": "on",
            "rollback_password": PASSWORD,
        },
    ),
    ("governance/datasets/<int:dataset_id>/promotions/gates/", "POST"): Write(
        "model_admin",
        (302,),
        _ds("/governance/datasets/{d}/promotions/gates/"),
        data=lambda w, c: {"max_regression_points": "3", "max_subgroup_regression_points": "5"},
    ),
    ("governance/promotions/<int:pk>/edit/", "POST"): Write(
        "model_admin",
        (302,),
        lambda w, c: f"/governance/promotions/{w.draft_promotion_id}/edit/",
        data=lambda w, c: {"reason": "v3, reworded"},
    ),
    ("governance/promotions/<int:pk>/submit/", "POST"): Write(
        "model_admin",
        (302,),
        lambda w, c: f"/governance/promotions/{w.draft_promotion_id}/submit/",
        data=lambda w, c: {"password": PASSWORD, "acknowledge_regressions": "on"},
    ),
    ("governance/promotions/<int:pk>/withdraw/", "POST"): Write(
        "model_admin",
        (302,),
        lambda w, c: f"/governance/promotions/{w.draft_promotion_id}/withdraw/",
        data=lambda w, c: {"withdrawal_reason": "not ready"},
    ),
    ("governance/promotions/<int:pk>/decide/", "POST"): Write(
        "model_admin",
        (302,),
        lambda w, c: f"/governance/promotions/{w.pending_promotion_id}/decide/",
        data=lambda w, c: DECIDE,
    ),
    ("governance/datasets/<int:dataset_id>/envelope/draft/", "POST"): Write(
        "model_admin",
        (302,),
        _ds("/governance/datasets/{d}/envelope/draft/"),
        data=lambda w, c: ENVELOPE_DRAFT_FORM,
    ),
    ("governance/envelope-versions/<int:pk>/sign/", "POST"): Write(
        "model_admin",  # admin1 drafted it (setup) and signs it as its author
        (302,),
        lambda w, c: f"/governance/envelope-versions/{c['envelope_version_id']}/sign/",
        data=lambda w, c: {"password": PASSWORD},
        setup=lambda w: envelope_draft(w, signed=False),
    ),
    ("governance/envelope-versions/<int:pk>/approve/", "POST"): Write(
        "model_admin",  # admin2 drafted and signed it (setup); admin1 approves it
        (302,),
        lambda w, c: f"/governance/envelope-versions/{c['envelope_version_id']}/approve/",
        data=lambda w, c: {"password": PASSWORD, "reason": "agreed"},
        setup=lambda w: envelope_draft(w, signed=True),
    ),
    ("governance/model-versions/<int:subject_id>/card/narrative/", "POST"): Write(
        "model_admin",
        (302,),
        _ds("/governance/model-versions/{v}/card/narrative/"),
        data=lambda w, c: {"intended_use": "Second reader.", "action": "sign", "password": PASSWORD},
    ),
    ("governance/snapshots/<int:subject_id>/datasheet/narrative/", "POST"): Write(
        "model_admin",
        (302,),
        lambda w, c: f"/governance/snapshots/{_snapshot_id(w)}/datasheet/narrative/",
        data=lambda w, c: {"motivation": "Screening research.", "action": "draft"},
    ),
    ("governance/narratives/<int:pk>/sign/", "POST"): Write(
        "model_admin",
        (302,),
        lambda w, c: f"/governance/narratives/{c['narrative_id']}/sign/",
        data=lambda w, c: {"meaning": "authored", "password": PASSWORD},
        setup=_narrative_draft,
    ),
    # API
    ("api/datasets/", "POST"): Write(
        "model_admin", (201,), _ds("/api/datasets/"), data=lambda w, c: NEW_DATASET, body="json"
    ),
    ("api/datasets/<int:dataset_id>/guideline/", "POST"): Write(
        "model_admin", (201,), _ds("/api/datasets/{d}/guideline/"), data=lambda w, c: {"text": "# Rules"}, body="json"
    ),
    # A preview renders a draft and changes nothing: nothing to audit, but it is a POST, so it is listed.
    ("api/datasets/<int:dataset_id>/guideline/preview/", "POST"): Write(
        "model_admin",
        (200,),
        _ds("/api/datasets/{d}/guideline/preview/"),
        data=lambda w, c: {"text": "# Rules"},
        body="json",
        changes=False,
    ),
    ("api/items/<int:item_id>/reviews/", "POST"): Write(
        "reviewer",
        (201,),
        _ds("/api/items/{item}/reviews/"),
        data=lambda w, c: {"label": "malignant", "shown_prediction_id": w.open_item_prediction_id},
        setup=lambda w: _leased_to(w, "reviewer") or {},
        body="json",
    ),
    ("api/reviews/<int:review_id>/revise/", "POST"): Write(
        "reviewer",
        (201,),
        lambda w, c: f"/api/reviews/{c['review_id']}/revise/",
        data=lambda w, c: {"action": "revise", "label": "benign"},
        setup=_answered,
        body="json",
    ),
    ("api/datasets/<int:dataset_id>/model-output/", "POST"): Write(
        "model_admin",
        (200,),
        _ds("/api/datasets/{d}/model-output/"),
        data=lambda w, c: {"off": True, "reason": "stop"},
        body="json",
    ),
    ("api/datasets/<int:dataset_id>/change-envelope/", "POST"): Write(
        "model_admin",
        (201,),
        _ds("/api/datasets/{d}/change-envelope/"),
        data=lambda w, c: {"clauses": ENVELOPE_CLAUSES, "change_summary": "logistic regression only"},
        body="json",
    ),
    ("api/change-envelope-versions/<int:pk>/sign/", "POST"): Write(
        "model_admin",  # admin1 drafted it (setup) and signs it as its author
        (200,),
        lambda w, c: f"/api/change-envelope-versions/{c['envelope_version_id']}/sign/",
        data=lambda w, c: {"password": PASSWORD},
        setup=lambda w: envelope_draft(w, signed=False),
        body="json",
    ),
    ("api/change-envelope-versions/<int:pk>/approve/", "POST"): Write(
        "model_admin",  # admin2 drafted and signed it (setup); admin1 approves it
        (200,),
        lambda w, c: f"/api/change-envelope-versions/{c['envelope_version_id']}/approve/",
        data=lambda w, c: {"password": PASSWORD, "reason": "agreed"},
        setup=lambda w: envelope_draft(w, signed=True),
        body="json",
    ),
    ("api/datasets/<int:dataset_id>/retention/", "POST"): Write(
        "model_admin",
        (200,),
        _ds("/api/datasets/{d}/retention/"),
        data=lambda w, c: {"retention_days": 30},
        body="json",
    ),
    ("api/datasets/<int:dataset_id>/legal-hold/", "POST"): Write(
        "model_admin",
        (200,),
        _ds("/api/datasets/{d}/legal-hold/"),
        data=lambda w, c: {"hold": True, "reason": "litigation"},
        body="json",
    ),
    ("api/datasets/<int:dataset_id>/queue-settings/", "PUT"): Write(
        "model_admin",
        (200,),
        _ds("/api/datasets/{d}/queue-settings/"),
        data=lambda w, c: {"strategy": "margin", "audit_slice_percent": 10, "overlap": 3, "blind_percent": 0},
        body="json",
    ),
    ("api/items/<int:item_id>/adjudication/", "POST"): Write(
        "adjudicator",
        (201,),
        _ds("/api/items/{item}/adjudication/"),
        data=lambda w, c: {"label": "benign", "reason": "clear"},
        setup=_disputed,
        body="json",
    ),
    ("api/datasets/<int:dataset_id>/imports/", "POST"): Write(
        "model_admin", (202,), _ds("/api/datasets/{d}/imports/"), data=_csv_upload, body="multipart"
    ),
    ("api/datasets/<int:dataset_id>/training-runs/", "POST"): Write(
        "model_admin",
        (201,),
        _ds("/api/datasets/{d}/training-runs/"),
        data=lambda w, c: {"reason": "more"},
        body="json",
    ),
    ("api/datasets/<int:dataset_id>/label-issues/", "POST"): Write(
        "model_admin", (202,), _ds("/api/datasets/{d}/label-issues/"), data=lambda w, c: {"limit": 3}, body="json"
    ),
    ("api/training-runs/<int:run_id>/cancel/", "POST"): Write(
        "model_admin",
        (200, 202),
        lambda w, c: f"/api/training-runs/{c['run_id']}/cancel/",
        setup=lambda w: {"run_id": _queued_run(w)},
        body="json",
    ),
    ("api/model-versions/<int:model_version_id>/shadow/", "POST"): Write(
        "model_admin",
        (200,),
        _ds("/api/model-versions/{v}/shadow/"),
        data=lambda w, c: {"action": "start", "reason": "w"},
        body="json",
    ),
    ("api/model-versions/<int:model_version_id>/promotion-requests/", "POST"): Write(
        "model_admin",
        (201,),
        _ds("/api/model-versions/{v}/promotion-requests/"),
        data=lambda w, c: {"reason": "v3", "password": PASSWORD},
        body="json",
    ),
    ("api/datasets/<int:dataset_id>/rollback-requests/", "POST"): Write(
        "model_admin",
        (201,),
        _ds("/api/datasets/{d}/rollback-requests/"),
        data=lambda w, c: {"reason": "misreads the scanner", "acknowledge_regressions": True, "password": PASSWORD},
        body="json",
    ),
    ("api/promotion-requests/<int:pk>/submit/", "POST"): Write(
        "model_admin",
        (200,),
        lambda w, c: f"/api/promotion-requests/{w.draft_promotion_id}/submit/",
        data=lambda w, c: {"password": PASSWORD, "acknowledge_regressions": True},
        body="json",
    ),
    ("api/promotion-requests/<int:pk>/withdraw/", "POST"): Write(
        "model_admin",
        (200,),
        lambda w, c: f"/api/promotion-requests/{w.draft_promotion_id}/withdraw/",
        data=lambda w, c: {"withdrawal_reason": "not ready"},
        body="json",
    ),
    ("api/promotion-requests/<int:pk>/decision/", "POST"): Write(
        "model_admin",
        (200,),
        lambda w, c: f"/api/promotion-requests/{w.pending_promotion_id}/decision/",
        data=lambda w, c: DECIDE,
        body="json",
    ),
    # Governance pages' API counterparts (issue 10): governance/*_apis.py.
    ("api/promotion-requests/<int:pk>/edit/", "POST"): Write(
        "model_admin",
        (200,),
        lambda w, c: f"/api/promotion-requests/{w.draft_promotion_id}/edit/",
        data=lambda w, c: {"reason": "v3, reworded"},
        body="json",
    ),
    ("api/datasets/<int:dataset_id>/promotion-gates/", "PUT"): Write(
        "model_admin",
        (200,),
        _ds("/api/datasets/{d}/promotion-gates/"),
        data=lambda w, c: {
            "min_holdout_accuracy": None,
            "max_regression_points": 3,
            "max_subgroup_regression_points": 5,
            "max_ece": None,
            "paired_test_not_worse": True,
        },
        body="json",
    ),
    ("api/model-versions/<int:subject_id>/model-card/narrative/", "POST"): Write(
        "model_admin",
        (201,),
        _ds("/api/model-versions/{v}/model-card/narrative/"),
        data=lambda w, c: {"intended_use": "Second reader.", "sign": True, "password": PASSWORD},
        body="json",
    ),
    ("api/snapshots/<int:subject_id>/datasheet/narrative/", "POST"): Write(
        "model_admin",
        (201,),
        lambda w, c: f"/api/snapshots/{_snapshot_id(w)}/datasheet/narrative/",
        data=lambda w, c: {"motivation": "Screening research."},
        body="json",
    ),
    ("api/narratives/<int:pk>/sign/", "POST"): Write(
        "model_admin",
        (200,),
        lambda w, c: f"/api/narratives/{c['narrative_id']}/sign/",
        data=lambda w, c: {"meaning": "authored", "password": PASSWORD},
        setup=_narrative_draft,
        body="json",
    ),
    # The page asks a worker to verify: the request is a run row and its event (audit.verification_requested).
    ("governance/audit/verify/", "POST"): Write("auditor", (302,), _ds("/governance/audit/verify/")),
    ("api/audit/verification-runs/", "POST"): Write(
        "auditor", (202,), _ds("/api/audit/verification-runs/"), body="json"
    ),
    ("api/audit/verification/", "POST"): Write(
        "auditor", (200,), _ds("/api/audit/verification/"), body="json", changes=False
    ),
    # A proof is checked with the document alone: nothing is read or written.
    ("api/audit/proofs/verify/", "POST"): Write(
        "auditor",
        (200,),
        _ds("/api/audit/proofs/verify/"),
        data=lambda w, c: {"kind": "inclusion", "proof": []},
        body="json",
        changes=False,
    ),
}


def _queued_run(world: World) -> int:
    """A run requested but not yet picked up by a worker (the broker is mocked), so it can be cancelled."""
    from annotations.models import Dataset
    from models_app.models import TrainingRun
    from models_app.services import training_run_request

    run = training_run_request(
        dataset=Dataset.objects.get(pk=world.dataset_id),
        trigger=TrainingRun.Trigger.MANUAL,
        requested_by=User.objects.get(username="admin1"),
        reason="to be cancelled",
        dispatch=False,
    )
    return run.pk


# Patterns whose writing methods change nothing by design, with the reason.
NO_WRITE: dict[str, str] = {
    "health/": "the health check reads the database and the broker; any method gets the same answer",
    "admin/password_change/": "a RedirectView to /account/password/ (listed above); the admin's own form behind it "
    "is unreachable, shadowed by this pattern",
    "api/": "a RedirectView to the API docs",
}

ADMIN_WRITES = admin_writes(NO_WRITE)

CASES: dict[str, tuple[str, str, str, AdminWrite | Write]] = {
    f"{method} /{route} {what}".strip(): (route, method, what, case)
    for (route, method, what), case in [
        *(((r, m, ""), w) for (r, m), w in WRITES.items()),
        *ADMIN_WRITES.items(),
    ]
}


def _client(persona: str) -> Client:
    if persona == "siteadmin":
        return login(
            User.objects.get_or_create(username="siteadmin", defaults={"is_superuser": True, "is_staff": True})[0]
        )
    username = PERSONAS[persona]
    return Client() if username is None else login(User.objects.get(username=username))


def _request(route: str, case: AdminWrite | Write, world: World, client: Client) -> Request:
    if isinstance(case, AdminWrite):
        return admin_request(case, route, world, client)
    ctx = {"url": concrete_url(route, world), **case.setup(world)}
    return Request(case.persona, case.url(world, ctx), case.data(world, ctx), case.body, case.ok, case.changes)


@pytest.mark.parametrize("case_id", list(CASES))
def test_a_request_that_changes_the_database_writes_an_audit_event(
    world, db, broker, django_capture_on_commit_callbacks, case_id
):
    route, method, _, case = CASES[case_id]
    persona = "siteadmin" if isinstance(case, AdminWrite) else case.persona
    client = _client(persona)
    request = _request(route, case, world, client)
    before, seq = fingerprint(), last_seq()

    with django_capture_on_commit_callbacks(execute=True):
        response = send(client, method, request.url, request.data, request.body)

    changed = sorted(table for table, digest in fingerprint().items() if before.get(table) != digest)
    events = list(AuditEvent.objects.filter(seq__gt=seq).order_by("seq").values_list("action", flat=True))
    assert response.status_code in request.ok, (case_id, response.status_code, response.content[:1500])
    if request.changes:
        assert changed, f"{case_id} answered {response.status_code} but changed nothing: the case proves nothing"
        assert events, f"{case_id} changed {changed} and wrote no audit event"
    else:
        # A refusal, or a request that only reads, changes nothing at all.
        assert changed == [], f"{case_id} was to change nothing, and changed {changed} (events: {events})"


def test_every_write_path_in_the_urlconf_is_tried_or_excused():
    tried = {(route, method) for route, method, _, _ in CASES.values()}
    paths = write_paths()

    unlisted = [
        f"{method} /{route}" for route, method in paths if (route, method) not in tried and route not in NO_WRITE
    ]
    stale = sorted({f"{method} /{route}" for route, method in tried - set(paths)})

    # A new pattern that accepts a write must get a case in WRITES (or a reason in NO_WRITE).
    assert unlisted == []
    assert stale == []
    assert len(paths) > 150  # the walk reached the admin and the API, not only the top level


def test_the_method_reader_sees_through_the_login_decorator():
    from annotations.views import home, import_upload, review_revise_view

    assert (write_methods(home), write_methods(import_upload), write_methods(review_revise_view)) == (
        (),
        ("POST",),
        ("POST",),
    )


def test_unlocking_an_account_in_the_admin_is_audited_with_whose_lockout_it_was(world, db):
    from axes.models import AccessAttempt

    lockout = AccessAttempt.objects.create(
        username="reviewer", ip_address="10.0.0.9", user_agent="pytest", path_info="/login/", failures_since_start=5
    )
    site_admin = User.objects.create_superuser("root-admin", password=PASSWORD)

    response = login(site_admin).post(f"/admin/axes/accessattempt/{lockout.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not AccessAttempt.objects.filter(pk=lockout.pk).exists()
    event = AuditEvent.objects.get(action="login_lockout.deleted", object_id=str(lockout.pk))
    assert (event.actor_id, event.reason) == (site_admin.pk, "deleted in the site admin")
    assert (event.before["username"], event.before["failures_since_start"], event.after) == ("reviewer", 5, None)
