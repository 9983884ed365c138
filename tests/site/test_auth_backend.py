"""The user of a request is loaded with their roles in one statement (session and API token alike)."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext

from governance.credentials import api_token_create
from tests.helpers import login


def _group_queries(captured) -> list[str]:
    return [q["sql"] for q in captured if q["sql"].lstrip().upper().startswith("SELECT") and "auth_group" in q["sql"]]


def test_a_page_reads_the_users_roles_with_the_user(dataset, reviewer):
    client = login(reviewer)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(f"/datasets/{dataset.pk}/review/")
    assert response.status_code == 200
    (only,) = _group_queries(captured)  # one statement reads the groups: the one that loads the user
    assert 'FROM "auth_user" u WHERE' in only


def test_a_role_taken_away_is_gone_at_the_next_request(dataset, reviewer):
    client = login(reviewer)
    assert client.get(f"/datasets/{dataset.pk}/review/").status_code == 200
    reviewer.groups.remove(Group.objects.get(name="reviewer"))
    assert client.get(f"/datasets/{dataset.pk}/review/").status_code == 403


def test_a_user_with_no_roles_has_none(dataset, reviewer):
    reviewer.groups.clear()
    assert login(reviewer).get(f"/datasets/{dataset.pk}/review/").status_code == 403


def test_a_deactivated_user_is_signed_out(dataset, reviewer):
    client = login(reviewer)
    reviewer.is_active = False
    reviewer.save(update_fields=["is_active"])
    response = client.get(f"/datasets/{dataset.pk}/review/")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_an_api_token_reads_its_owners_roles_in_its_own_statement(dataset, reviewer):
    from django.test import Client

    _, secret = api_token_create(user=reviewer, name="t", days=1)
    client = Client(HTTP_AUTHORIZATION=f"Token {secret}")
    with CaptureQueriesContext(connection) as captured:
        response = client.get("/api/datasets/")
    assert response.status_code == 200
    assert [d["id"] for d in response.json()] == [dataset.pk]
    (only,) = _group_queries(captured)
    assert "governance_apitoken" in only
    reviewer.groups.clear()
    assert client.get("/api/datasets/").json() == []
