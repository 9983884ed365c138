"""Bench-only set-up in a Loupe database that the REST API does not do (no management command needed).

Run with the repo's virtualenv and the same environment as the server (DATABASE_URL, ...):

    .venv/bin/python bench/loupe_setup.py users 16     -> prints JSON: tokens and the approver's password
    .venv/bin/python bench/loupe_setup.py members 7    -> makes every bench user a member of dataset 7

`users` creates two model admins (bench-admin1 asks for promotions, bench-admin2 signs
them: four eyes) and N reviewers, each with an API token made by the same service the
/account/tokens/ page uses (only its sha256 is stored). `members` exists because
memberships are granted by the site admin in /admin/, which has no API; it writes the
same audit event kind the admin does ("membership.created"-style, reason "bench").
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path

# LOUPE_SRC: the Loupe code the bench servers run (bench/side_by_side.py may run a clean export of HEAD).
sys.path.insert(0, os.environ.get("LOUPE_SRC") or str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workflow_site.settings")
os.environ.setdefault("SECRET_KEY", "bench-only")
os.environ.setdefault("HTTPS", "false")

ADMIN, APPROVER = "bench-admin1", "bench-admin2"


def users(n_reviewers: int) -> dict:
    from django.contrib.auth.models import Group, User
    from django.db import transaction

    from governance.credentials import api_token_create
    from workflow_site.access import Role

    for role in Role:
        Group.objects.get_or_create(name=str(role))
    wanted = [(ADMIN, Role.MODEL_ADMIN), (APPROVER, Role.MODEL_ADMIN)]
    wanted += [(f"bench-reviewer{i}", Role.REVIEWER) for i in range(1, n_reviewers + 1)]
    out: dict = {"reviewers": []}
    for username, role in wanted:
        password = secrets.token_urlsafe(16)
        with transaction.atomic():
            user = User.objects.filter(username=username).first()
            if user is None:
                user = User.objects.create_user(username=username, password=password)
            else:
                user.set_password(password)
                user.save(update_fields=["password"])
            user.groups.add(Group.objects.get(name=str(role)))
        _, secret = api_token_create(user=user, name="bench", days=1)
        if username == ADMIN:
            out["admin_token"], out["admin_password"] = secret, password  # the requester signs ("authored")
        elif username == APPROVER:
            out["approver_token"], out["approver_password"] = secret, password
        else:
            out["reviewers"].append(secret)
    return out


def members(dataset_id: int) -> int:
    from django.contrib.auth.models import User
    from django.db import transaction

    from annotations.models import Dataset, DatasetMembership
    from governance.audit import audit_record

    dataset = Dataset.objects.get(pk=dataset_id)
    added = 0
    for user in User.objects.filter(username__startswith="bench-"):
        with transaction.atomic():
            membership, created = DatasetMembership.objects.get_or_create(dataset=dataset, user=user)
            if not created:
                continue
            added += 1
            audit_record(
                actor=None,
                action="membership.created",
                obj=membership,
                object_type="dataset_membership",
                dataset_id=dataset.pk,
                after={"dataset": dataset.slug, "user": user.username},
                reason="bench set-up (bench/loupe_setup.py)",
            )
    return added


def main() -> None:
    import django

    django.setup()
    command, arg = sys.argv[1], int(sys.argv[2])
    if command == "users":
        print(json.dumps(users(arg)))
    elif command == "members":
        print(json.dumps({"added": members(arg)}))
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main()
