"""The site admin says it is Loupe's (issue 6, defect 16)."""

from __future__ import annotations

from django.contrib.auth.models import User

from tests.helpers import login


def test_the_admin_is_branded_loupe(db):
    admin = User.objects.create_superuser("root", password="x" * 12)

    page = login(admin).get("/admin/").content.decode()

    assert "Loupe administration" in page
    assert "<title>Users, roles and dataset memberships | Loupe site admin</title>" in page
    assert "Django administration" not in page and "Django site admin" not in page


def test_the_admin_names_its_icon_so_the_browser_does_not_ask_for_favicon_ico(db):
    admin = User.objects.create_superuser("root", password="x" * 12)

    page = login(admin).get("/admin/").content.decode()

    assert '<link rel="icon" href="data:,">' in page
