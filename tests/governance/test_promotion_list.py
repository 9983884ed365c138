"""The promotions page's list of requests: filtered and paged in the database (issue 10)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from governance.models import PromotionRequest
from governance.promotions import promotion_request_create
from governance.selectors import PROMOTION_PAGE_SIZE
from models_app.models import ModelVersion
from tests.conftest import login


@pytest.fixture
def candidate(second_version) -> ModelVersion:
    version = second_version  # trained once per process (tests/world.py)
    assert version is not None
    return version


def _drafts(version: ModelVersion, user, count: int) -> list[int]:
    return [
        promotion_request_create(
            model_version=version, user=user, reason=f"thought {i}", draft=True, acknowledge_regressions=True
        ).pk
        for i in range(count)
    ]


def _listed(client, dataset_id: int, query: str = "") -> tuple[list[int], int | None, int]:
    url = reverse("governance:promotion_list", args=[dataset_id]) + query
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return [r.pk for r, _, _ in response.context["rows"]], response.context["older"], len(queries)


def test_the_list_pages_by_key_newest_first_and_shows_others_no_drafts(candidate, model_admin, model_admin2):
    earlier = list(PromotionRequest.objects.values_list("pk", flat=True))  # the fixture's champion's promotion
    mine = earlier + _drafts(candidate, model_admin, PROMOTION_PAGE_SIZE + 5)
    theirs = _drafts(candidate, model_admin2, 3)
    client = login(model_admin)

    first, older, _ = _listed(client, candidate.dataset_id)
    assert first == sorted(mine, reverse=True)[:PROMOTION_PAGE_SIZE]
    assert older == first[-1]
    page = client.get(reverse("governance:promotion_list", args=[candidate.dataset_id])).content.decode()
    assert f'href="?before={older}" rel="next">Older requests</a>' in page

    second, last, _ = _listed(client, candidate.dataset_id, f"?before={older}")
    assert second == sorted(mine, reverse=True)[PROMOTION_PAGE_SIZE:]
    assert last is None
    assert not set(theirs) & set(first + second)  # another's drafts are theirs alone
    assert _listed(login(model_admin2), candidate.dataset_id, "?status=draft")[0] == sorted(theirs, reverse=True)
    assert set(_listed(login(model_admin2), candidate.dataset_id)[0]) == set(earlier) | set(theirs)


def test_the_status_filter_keeps_itself_on_the_next_page_link(candidate, model_admin):
    _drafts(candidate, model_admin, PROMOTION_PAGE_SIZE + 1)
    page = login(model_admin).get(reverse("governance:promotion_list", args=[candidate.dataset_id]) + "?status=draft")
    assert 'href="?status=draft&amp;before=' in page.content.decode()
    assert _listed(login(model_admin), candidate.dataset_id, "?status=pending")[0] == []


@pytest.mark.parametrize("before", ["abc", "²", "-3", "0", "99999999999999999999"])
def test_a_bad_page_bound_shows_the_first_page(candidate, model_admin, before):
    mine = list(PromotionRequest.objects.values_list("pk", flat=True)) + _drafts(candidate, model_admin, 2)
    assert _listed(login(model_admin), candidate.dataset_id, f"?before={before}")[0] == sorted(mine, reverse=True)


def test_the_page_costs_the_same_queries_whatever_the_number_of_requests(candidate, model_admin):
    client = login(model_admin)
    # A full page of drafts each time (the fixture's signed approval falls off page one, so the page's
    # signature checks, batched, are the same too).
    _drafts(candidate, model_admin, PROMOTION_PAGE_SIZE)
    _listed(client, candidate.dataset_id)  # the first view fills per-process caches
    few = _listed(client, candidate.dataset_id)[2]
    _drafts(candidate, model_admin, 3 * PROMOTION_PAGE_SIZE)
    many = _listed(client, candidate.dataset_id)[2]
    assert few == many
