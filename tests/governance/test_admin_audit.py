"""Site-admin changes to roles, memberships and schemas land in the audit trail."""

from __future__ import annotations

from django.contrib.auth.models import Group, User

from annotations.models import DatasetMembership, LabelClass
from governance.models import AuditEvent
from tests.conftest import PASSWORD


def _site_admin() -> User:
    return User.objects.create_superuser("root-admin", password=PASSWORD)


def test_granting_a_role_in_the_admin_is_audited_with_the_site_admin_as_actor(client, db):
    admin = _site_admin()
    target = User.objects.create_user("newbie", password=PASSWORD)
    group = Group.objects.get_or_create(name="auditor")[0]
    client.force_login(admin)
    response = client.post(
        f"/admin/auth/user/{target.pk}/change/",
        {
            "username": "newbie",
            "is_active": "on",
            "groups": [group.pk],
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
            "initial-date_joined_0": "2026-01-01",
            "initial-date_joined_1": "00:00:00",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    event = AuditEvent.objects.filter(action="user.roles_changed", object_id=str(target.pk)).latest("seq")
    assert event.actor == admin
    assert event.after["now"] == ["auditor"]


def test_adding_a_member_in_the_admin_is_audited(client, dataset, reviewer):
    admin = _site_admin()
    newcomer = User.objects.create_user("newcomer", password=PASSWORD)
    client.force_login(admin)
    response = client.post("/admin/annotations/datasetmembership/add/", {"dataset": dataset.pk, "user": newcomer.pk})
    assert response.status_code == 302
    membership = DatasetMembership.objects.get(user=newcomer)
    event = AuditEvent.objects.get(action="datasetmembership.created")
    assert (event.actor, event.object_id, event.dataset_id) == (admin, str(membership.pk), dataset.pk)


def test_a_label_class_cannot_be_renamed_in_the_admin(client, dataset):
    admin = _site_admin()
    client.force_login(admin)
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
    response = client.post(f"/admin/annotations/dataset/{dataset.pk}/change/", data)
    assert response.status_code == 200  # the form comes back with the error
    assert "cannot change once created" in response.content.decode()
    assert LabelClass.objects.filter(dataset=dataset, name="benign").exists()
    assert not AuditEvent.objects.filter(action="labelclass.updated").exists()
