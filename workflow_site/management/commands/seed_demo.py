"""`manage.py seed_demo`: the demo dataset, a first champion model, one user per role.

Safe to run twice: existing users and data are left as they are. Passwords are
random, kept in var/demo-credentials.json (readable by the owner only) and
printed every time.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand
from django.db import transaction

from annotations import demo_data
from annotations.guidelines import guideline_publish
from annotations.models import Dataset, DatasetMembership, Feature, ImportBatch, LabelClass
from annotations.services import import_batch_create
from governance.audit import audit_record
from governance.checkpoints import CheckpointRefused, audit_checkpoint_create
from governance.promotions import promotion_decide, promotion_request_create
from models_app.models import ModelVersion, RetrainingPolicy, TrainingRun
from models_app.prediction import open_item_ids, predictions_create
from models_app.services import training_run_request
from models_app.training import training_run_execute
from workflow_site.access import Role

DEMO_USERS = [
    ("reviewer1", "Riley", "Reviewer", Role.REVIEWER),
    ("reviewer2", "Sam", "Second-Reviewer", Role.REVIEWER),
    ("adjudicator", "Ada", "Adjudicator", Role.ADJUDICATOR),
    ("admin1", "Morgan", "Model-Admin", Role.MODEL_ADMIN),
    ("admin2", "Jordan", "Second-Admin", Role.MODEL_ADMIN),
    ("auditor", "Avery", "Auditor", Role.AUDITOR),
]
SITE_ADMIN = "siteadmin"


# A short labelling guideline, so the review page's G has something to open. Demo text, not clinical advice.
DEMO_GUIDELINE = """\
## What you decide

Whether the fine-needle aspirate shows a **malignant** or a **benign** mass, from the 30
measurements of its cell nuclei. The model's answer is a suggestion: decide from the data.

## Signs that point to malignant

| sign | features |
|:--|:--|
| large, irregular nuclei | *worst radius*, *worst perimeter*, *worst area* above their normal range |
| irregular outline | *worst concave points* and *worst concavity* high |
| coarse texture | *worst texture* high |

## When you are unsure

- Do not accept the model's answer to move on: **skip** the item (S), and say why in the reason.
- A value far outside its normal range may be a measurement error: say so in the reason.
"""


class Command(BaseCommand):
    help = "Load the demo: breast-cancer data, a first champion model, and one user per role."

    def handle(self, *args: Any, **options: Any) -> None:
        passwords = self._users()
        dataset = Dataset.objects.filter(slug=demo_data.DATASET_SLUG).first()
        if dataset is None:
            dataset = self._dataset()
            self._first_model(dataset, passwords)
        else:
            self.stdout.write(f"Demo dataset already present ({dataset.items.count()} items); left as it is.")
        for username, *_ in DEMO_USERS:
            if username != "auditor":
                DatasetMembership.objects.get_or_create(dataset=dataset, user=User.objects.get(username=username))
        self._checkpoint()
        self._print(passwords)

    def _checkpoint(self) -> None:
        """Sign the seeded trail now: beat signs hourly, and until then every auditor page of a fresh demo said
        "No signed checkpoint yet". Skipped, with a line, where no signing key is configured."""
        try:
            checkpoint = audit_checkpoint_create(only_if_new=True)
        except (CheckpointRefused, ImproperlyConfigured) as exc:
            self.stdout.write(f"No audit checkpoint signed: {exc}")
            return
        if checkpoint is not None:
            self.stdout.write(f"Audit checkpoint signed over the first {checkpoint.tree_size} events.")

    def _credentials_file(self) -> Path:
        return Path(settings.VAR_DIR) / "demo-credentials.json"

    def _users(self) -> dict[str, str]:
        path = self._credentials_file()
        stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        for role in Role:
            Group.objects.get_or_create(name=str(role))
        for username, first, last, role in [*DEMO_USERS, (SITE_ADMIN, "Sky", "Site-Admin", None)]:
            user = User.objects.filter(username=username).first()
            if user is None:
                # Not marked temporary (governance/credentials.py): these passwords are printed for a
                # demo, and the demo's model admins sign with them straight away.
                password = stored.get(username) or secrets.token_urlsafe(12)
                with transaction.atomic():
                    user = User.objects.create_user(
                        username=username, password=password, first_name=first, last_name=last
                    )
                    if role is None:
                        user.is_staff = user.is_superuser = True
                        user.save()
                    else:
                        user.groups.add(Group.objects.get(name=str(role)))
                    audit_record(
                        actor=None,
                        action="user.created",
                        obj=user,
                        object_type="user",
                        after={
                            "username": username,
                            "is_staff": user.is_staff,
                            "is_superuser": user.is_superuser,
                            "groups": [str(role)] if role else [],
                        },
                        reason="demo seed",
                    )
                stored[username] = password
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(stored, indent=2))
        os.chmod(path, 0o600)
        return stored

    @transaction.atomic
    def _schema(self) -> Dataset:
        frame, features, classes = demo_data.load()
        dataset = Dataset.objects.create(
            name=demo_data.DATASET_NAME,
            slug=demo_data.DATASET_SLUG,
            description=(
                "Fine-needle aspirates of breast masses (569 cases, 30 image-derived features), "
                "as shipped with scikit-learn. Is the mass malignant or benign?"
            ),
            reason_codes=[
                {"code": "nuclei-size", "text": "Nuclei size or area decides it"},
                {"code": "outline", "text": "Irregular outline (concavity, concave points)"},
                {"code": "texture", "text": "Texture decides it"},
                {"code": "measurement", "text": "A value looks like a measurement error"},
            ],
        )
        Feature.objects.bulk_create(
            [
                Feature(
                    dataset=dataset,
                    position=i,
                    name=f.name,
                    dtype=Feature.Dtype.FLOAT,
                    unit=f.unit,
                    normal_min=f.normal_min,
                    normal_max=f.normal_max,
                    description=f.description,
                )
                for i, f in enumerate(features)
            ]
        )
        LabelClass.objects.bulk_create(
            [
                LabelClass(dataset=dataset, position=i, name=name, display_name=name.capitalize())
                for i, name in enumerate(classes)
            ]
        )
        RetrainingPolicy.objects.create(dataset=dataset, new_gold_labels=20)
        return dataset

    def _dataset(self) -> Dataset:
        dataset = self._schema()
        frame, _, _ = demo_data.load()
        files = demo_data.split_csvs(frame)
        admin = User.objects.get(username="admin1")
        DatasetMembership.objects.get_or_create(dataset=dataset, user=admin)
        purposes = {"wdbc-holdout.csv": ImportBatch.Purpose.HOLDOUT}
        for name, data in files.items():
            batch = import_batch_create(
                dataset=dataset,
                user=admin,
                file_name=name,
                data=data,
                purpose=purposes.get(name, ImportBatch.Purpose.REVIEW),
            )
            self.stdout.write(f"Imported {batch.rows_imported} rows from {name} ({batch.get_purpose_display()}).")
        guideline_publish(dataset=dataset, user=admin, text=DEMO_GUIDELINE, change_note="First version for the demo")
        return dataset

    def _first_model(self, dataset: Dataset, passwords: dict[str, str]) -> None:
        admin1 = User.objects.get(username="admin1")
        admin2 = User.objects.get(username="admin2")
        run = training_run_request(
            dataset=dataset,
            trigger=TrainingRun.Trigger.SEED,
            requested_by=admin1,
            reason="First model, trained on the small labelled seed set",
            dispatch=False,
        )
        version = training_run_execute(run_id=run.pk)
        if version is None:
            run.refresh_from_db()
            self.stderr.write(f"First model failed to train: {run.error}")
            return
        self.stdout.write(
            f"Trained v{version.version}: holdout accuracy {version.metrics['holdout'].get('accuracy', 0):.1%}."
        )
        request = promotion_request_create(
            model_version=version, user=admin1, password=passwords["admin1"], reason="First model for the demo"
        )
        promotion_decide(
            request_id=request.pk,
            user=admin2,
            approve=True,
            password=passwords["admin2"],
            reason="Demo: approved as the first champion",
        )
        # Predict the review queue now, so reviewers see predictions at once.
        champion = ModelVersion.objects.get(pk=version.pk)
        predictions_create(model_version=champion, item_ids=open_item_ids(dataset.pk), update_items=True)

    def _print(self, passwords: dict[str, str]) -> None:
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS("Demo users (username / password / role):"))
        for username, _, _, role in DEMO_USERS:
            self.stdout.write(f"  {username:<12} {passwords.get(username, '(unchanged)'):<20} {role.value}")
        self.stdout.write(f"  {SITE_ADMIN:<12} {passwords.get(SITE_ADMIN, '(unchanged)'):<20} site admin (/admin/)")
        self.stdout.write(f"Passwords are kept in {self._credentials_file()}.")
