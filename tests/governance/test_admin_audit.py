"""Site-admin changes to users, roles, permissions, memberships and schemas land in the audit trail.

Each test drives the real admin through the test client as a superuser and reads
back the one event the change wrote, with the site admin as actor.
"""

from __future__ import annotations

import json
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.test import Client
from django.utils import timezone

from annotations.models import DatasetMembership, LabelClass
from governance.admin import AuditedUserAdmin
from governance.models import AuditEvent
from governance.selectors import audit_chain_verify
from tests.conftest import PASSWORD, login, make_user
from workflow_site.access import Role

NEW_PASSWORD = "another-long-passphrase-for-tests"


@pytest.fixture
def site_admin(db) -> User:
    return User.objects.create_superuser("root-admin", password=PASSWORD)


@pytest.fixture
def admin_client(site_admin) -> Client:
    return login(site_admin)


@pytest.fixture
def target(db) -> User:
    return make_user("newbie")


def _permission(label: str) -> Permission:
    app_label, codename = label.split(".")
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


def _change_form(user: User, **overrides: Any) -> dict[str, Any]:
    """What the user change form posts when nothing is touched, then `overrides` (False unticks a box)."""
    joined = timezone.localtime(user.date_joined)
    data: dict[str, Any] = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": user.is_active,
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
        "groups": [group.pk for group in user.groups.all()],
        "user_permissions": [permission.pk for permission in user.user_permissions.all()],
        "date_joined_0": joined.strftime("%Y-%m-%d"),
        "date_joined_1": joined.strftime("%H:%M:%S"),
        "initial-date_joined_0": joined.strftime("%Y-%m-%d"),
        "initial-date_joined_1": joined.strftime("%H:%M:%S"),
        "last_login_0": "",
        "last_login_1": "",
        **overrides,
    }
    return {key: ("on" if value is True else value) for key, value in data.items() if value is not False}


def _change_user(client: Client, user: User, **overrides: Any) -> None:
    response = client.post(f"/admin/auth/user/{user.pk}/change/", _change_form(user, **overrides))
    assert response.status_code == 302, response.content[:2000]


def _event(action: str, object_id: int | str) -> AuditEvent:
    return AuditEvent.objects.get(action=action, object_id=str(object_id))


def _assert_by_site_admin(event: AuditEvent, site_admin: User) -> None:
    assert (event.actor, event.actor_username, event.object_type) == (
        site_admin,
        "root-admin",
        event.action.split(".")[0],
    )


def _payload(event: AuditEvent) -> str:
    return json.dumps([event.before, event.after])


# --- users ---------------------------------------------------------------------------------------


def test_creating_a_user_in_the_admin_is_audited_without_the_password(admin_client, site_admin):
    response = admin_client.post(
        "/admin/auth/user/add/",
        {"username": "alice", "usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 302, response.content[:2000]
    alice = User.objects.get(username="alice")
    event = _event("user.created", alice.pk)
    _assert_by_site_admin(event, site_admin)
    assert event.before is None
    assert event.after == {
        "username": "alice",
        "is_active": True,
        "is_staff": False,
        "is_superuser": False,
        "groups": [],
        "user_permissions": [],
        "password": "set",
        # The admin chose it: alice must choose her own at sign-in (tests/governance/test_credentials.py).
        "password_temporary": True,
    }
    assert alice.password not in _payload(event) and NEW_PASSWORD not in _payload(event)


def test_granting_a_role_in_the_admin_is_audited_with_the_site_admin_as_actor(admin_client, site_admin, target):
    group = Group.objects.get_or_create(name=str(Role.AUDITOR))[0]
    _change_user(admin_client, target, groups=[group.pk])
    event = _event("user.updated", target.pk)
    _assert_by_site_admin(event, site_admin)
    assert event.before == {"username": "newbie", "groups": []}
    assert event.after == {"username": "newbie", "groups": ["auditor"]}
    checked, broken = audit_chain_verify()
    assert broken is None and checked == AuditEvent.objects.count()


def test_removing_a_role_in_the_admin_is_audited(admin_client, site_admin):
    member = make_user("member", Role.REVIEWER, Role.AUDITOR)
    _change_user(admin_client, member, groups=[Group.objects.get(name=str(Role.AUDITOR)).pk])
    event = _event("user.updated", member.pk)
    _assert_by_site_admin(event, site_admin)
    assert event.before == {"username": "member", "groups": ["auditor", "reviewer"]}
    assert event.after == {"username": "member", "groups": ["auditor"]}


def test_deactivating_a_user_in_the_admin_is_audited(admin_client, site_admin, target):
    _change_user(admin_client, target, is_active=False)
    event = _event("user.updated", target.pk)
    _assert_by_site_admin(event, site_admin)
    assert (event.before, event.after) == (
        {"username": "newbie", "is_active": True},
        {"username": "newbie", "is_active": False},
    )


def test_making_a_user_staff_in_the_admin_is_audited(admin_client, site_admin, target):
    _change_user(admin_client, target, is_staff=True)
    event = _event("user.updated", target.pk)
    _assert_by_site_admin(event, site_admin)
    assert (event.before, event.after) == (
        {"username": "newbie", "is_staff": False},
        {"username": "newbie", "is_staff": True},
    )


def test_making_a_user_superuser_in_the_admin_is_audited(admin_client, site_admin, target):
    _change_user(admin_client, target, is_superuser=True)
    event = _event("user.updated", target.pk)
    _assert_by_site_admin(event, site_admin)
    assert (event.before, event.after) == (
        {"username": "newbie", "is_superuser": False},
        {"username": "newbie", "is_superuser": True},
    )


def test_granting_a_user_permission_in_the_admin_is_audited(admin_client, site_admin, target):
    _change_user(admin_client, target, user_permissions=[_permission("auth.view_group").pk])
    event = _event("user.updated", target.pk)
    _assert_by_site_admin(event, site_admin)
    assert (event.before, event.after) == (
        {"username": "newbie", "user_permissions": []},
        {"username": "newbie", "user_permissions": ["auth.view_group"]},
    )


def test_setting_a_password_in_the_admin_is_audited_without_the_hash(admin_client, site_admin, target):
    response = admin_client.post(
        f"/admin/auth/user/{target.pk}/password/",
        {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 302, response.content[:2000]
    target.refresh_from_db()
    assert target.check_password(NEW_PASSWORD)
    event = _event("user.password_changed", target.pk)
    _assert_by_site_admin(event, site_admin)
    assert (event.before, event.after) == (
        {"username": "newbie", "password": "set", "password_temporary": False},
        {"username": "newbie", "password": "changed", "password_temporary": True},
    )
    assert target.password not in _payload(event) and NEW_PASSWORD not in _payload(event)


def test_disabling_password_login_in_the_admin_is_audited(admin_client, site_admin, target):
    response = admin_client.post(
        f"/admin/auth/user/{target.pk}/password/", {"usable_password": "false", "unset-password": "1"}
    )
    assert response.status_code == 302, response.content[:2000]
    target.refresh_from_db()
    assert not target.has_usable_password()
    event = _event("user.password_changed", target.pk)
    assert event.after == {"username": "newbie", "password": "unusable"}


def test_deleting_a_user_in_the_admin_is_audited(admin_client, site_admin):
    leaver = make_user("leaver", Role.REVIEWER)
    response = admin_client.post(f"/admin/auth/user/{leaver.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302, response.content[:2000]
    assert not User.objects.filter(pk=leaver.pk).exists()
    event = _event("user.deleted", leaver.pk)
    _assert_by_site_admin(event, site_admin)
    assert event.after is None
    assert event.before == {
        "username": "leaver",
        "is_active": True,
        "is_staff": False,
        "is_superuser": False,
        "groups": ["reviewer"],
        "user_permissions": [],
        "password": "set",
        "password_temporary": False,
    }


def test_bulk_deleting_users_in_the_admin_audits_each_one(admin_client, site_admin):
    leavers = [make_user("leaver1"), make_user("leaver2", Role.AUDITOR)]
    response = admin_client.post(
        "/admin/auth/user/",
        {"action": "delete_selected", "_selected_action": [user.pk for user in leavers], "post": "yes"},
    )
    assert response.status_code == 302, response.content[:2000]
    assert not User.objects.filter(username__startswith="leaver").exists()
    events = {event.object_id: event for event in AuditEvent.objects.filter(action="user.deleted")}
    assert set(events) == {str(user.pk) for user in leavers}
    assert all(event.actor == site_admin for event in events.values())
    assert events[str(leavers[1].pk)].before["groups"] == ["auditor"]


def test_the_bulk_delete_confirmation_page_deletes_and_records_nothing(admin_client, target):
    response = admin_client.post("/admin/auth/user/", {"action": "delete_selected", "_selected_action": [target.pk]})
    assert response.status_code == 200
    assert "Are you sure" in response.content.decode()
    assert User.objects.filter(pk=target.pk).exists()
    assert not AuditEvent.objects.filter(action="user.deleted").exists()


# --- groups --------------------------------------------------------------------------------------


def test_creating_a_group_in_the_admin_is_audited(admin_client, site_admin):
    response = admin_client.post(
        "/admin/auth/group/add/", {"name": "statisticians", "permissions": [_permission("auth.view_user").pk]}
    )
    assert response.status_code == 302, response.content[:2000]
    group = Group.objects.get(name="statisticians")
    event = _event("group.created", group.pk)
    _assert_by_site_admin(event, site_admin)
    assert (event.before, event.after) == (None, {"name": "statisticians", "permissions": ["auth.view_user"]})


def test_changing_a_groups_permissions_in_the_admin_is_audited(admin_client, site_admin):
    group = Group.objects.create(name="statisticians")
    group.permissions.add(_permission("auth.view_user"))
    response = admin_client.post(
        f"/admin/auth/group/{group.pk}/change/",
        {"name": "statisticians", "permissions": [_permission("auth.view_group").pk]},
    )
    assert response.status_code == 302, response.content[:2000]
    event = _event("group.updated", group.pk)
    _assert_by_site_admin(event, site_admin)
    assert (event.before, event.after) == (
        {"name": "statisticians", "permissions": ["auth.view_user"]},
        {"name": "statisticians", "permissions": ["auth.view_group"]},
    )


def test_deleting_a_group_in_the_admin_is_audited_with_its_members(admin_client, site_admin):
    make_user("holder", Role.AUDITOR)
    group = Group.objects.get(name=str(Role.AUDITOR))
    response = admin_client.post(f"/admin/auth/group/{group.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302, response.content[:2000]
    event = _event("group.deleted", group.pk)
    _assert_by_site_admin(event, site_admin)
    assert (event.before, event.after) == ({"name": "auditor", "permissions": [], "members": ["holder"]}, None)


# --- API tokens: revocation in the admin is tested in tests/governance/test_tokens.py ------------


# --- the event and the change commit together ----------------------------------------------------


def test_a_failing_audit_append_leaves_the_user_unchanged(admin_client, target):
    with mock.patch("governance.admin.audit_record", side_effect=RuntimeError("audit chain unavailable")):
        with pytest.raises(RuntimeError, match="audit chain unavailable"):
            _change_user(
                admin_client, target, is_superuser=True, groups=[Group.objects.get_or_create(name="auditor")[0].pk]
            )
    target.refresh_from_db()
    assert not target.is_superuser
    assert not target.groups.exists()


def test_a_failing_audit_append_leaves_the_password_unchanged(admin_client, target):
    with mock.patch("governance.admin.audit_record", side_effect=RuntimeError("audit chain unavailable")):
        with pytest.raises(RuntimeError, match="audit chain unavailable"):
            admin_client.post(
                f"/admin/auth/user/{target.pk}/password/",
                {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
            )
    target.refresh_from_db()
    assert target.check_password(PASSWORD)


def test_a_failing_bulk_delete_takes_its_audit_events_back(admin_client, target):
    # The events are written before the delete; if the delete then fails, they must roll back with it.
    with mock.patch.object(AuditedUserAdmin, "delete_queryset", side_effect=RuntimeError("disk full")):
        with pytest.raises(RuntimeError, match="disk full"):
            admin_client.post(
                "/admin/auth/user/", {"action": "delete_selected", "_selected_action": [target.pk], "post": "yes"}
            )
    assert User.objects.filter(pk=target.pk).exists()
    assert not AuditEvent.objects.filter(action="user.deleted").exists()


def test_the_password_form_and_bulk_delete_hold_their_own_transaction(transactional_db, admin_client, target):
    # Outside a test transaction, as in production: Django runs neither of these in a
    # transaction, and audit_record refuses to run without one.
    response = admin_client.post(
        f"/admin/auth/user/{target.pk}/password/",
        {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 302, response.content[:2000]
    response = admin_client.post(
        "/admin/auth/user/", {"action": "delete_selected", "_selected_action": [target.pk], "post": "yes"}
    )
    assert response.status_code == 302, response.content[:2000]
    assert [event.action for event in AuditEvent.objects.filter(object_id=str(target.pk)).order_by("seq")] == [
        "user.password_changed",
        "user.deleted",
    ]


# --- datasets (annotations' AuditedAdmin) --------------------------------------------------------


def test_adding_a_member_in_the_admin_is_audited(admin_client, site_admin, dataset, reviewer):
    newcomer = User.objects.create_user("newcomer", password=PASSWORD)
    response = admin_client.post(
        "/admin/annotations/datasetmembership/add/", {"dataset": dataset.pk, "user": newcomer.pk}
    )
    assert response.status_code == 302
    membership = DatasetMembership.objects.get(user=newcomer)
    event = AuditEvent.objects.get(action="datasetmembership.created")
    assert (event.actor, event.object_id, event.dataset_id) == (site_admin, str(membership.pk), dataset.pk)


def test_a_label_class_cannot_be_renamed_in_the_admin(admin_client, dataset):
    labels = list(LabelClass.objects.filter(dataset=dataset).order_by("position"))
    data = {
        "name": dataset.name,
        "slug": dataset.slug,
        "description": dataset.description,
        "guideline_version": dataset.guideline_version,
        "features-TOTAL_FORMS": "0",
        "features-INITIAL_FORMS": "0",
        "label_classes-TOTAL_FORMS": str(len(labels)),
        "label_classes-INITIAL_FORMS": str(len(labels)),
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
    }
    for i, label in enumerate(labels):
        data.update(
            {
                f"label_classes-{i}-id": label.pk,
                f"label_classes-{i}-dataset": dataset.pk,
                f"label_classes-{i}-position": label.position,
                f"label_classes-{i}-name": label.name,
                f"label_classes-{i}-display_name": label.display_name,
            }
        )
    data["label_classes-1-name"] = "harmless"
    response = admin_client.post(f"/admin/annotations/dataset/{dataset.pk}/change/", data)
    assert response.status_code == 200  # the form comes back with the error
    assert "cannot change once created" in response.content.decode()
    assert LabelClass.objects.filter(dataset=dataset, name="benign").exists()
    assert not AuditEvent.objects.filter(action="labelclass.updated").exists()


def test_bulk_deleting_memberships_in_the_admin_is_audited_in_its_own_transaction(
    transactional_db, admin_client, site_admin, dataset, reviewer
):
    """Django runs admin actions outside a transaction; the delete and its events still commit together."""
    membership = DatasetMembership.objects.get(dataset=dataset, user=reviewer)
    response = admin_client.post(
        "/admin/annotations/datasetmembership/",
        {"action": "delete_selected", "_selected_action": [membership.pk], "post": "yes"},
    )
    assert response.status_code == 302, response.content[:2000]
    assert not DatasetMembership.objects.filter(pk=membership.pk).exists()
    event = AuditEvent.objects.get(action="datasetmembership.deleted", object_id=str(membership.pk))
    _assert_by_site_admin(event, site_admin)
