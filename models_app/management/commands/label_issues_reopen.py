"""`manage.py label_issues_reopen <dataset_id> --limit N`: reopen the likeliest gold-label errors, here and now."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotations.models import Dataset
from models_app.label_issues import MAX_LIMIT, label_issues_reopen


class Command(BaseCommand):
    help = (
        "Score a dataset's done gold labels with confident learning (cleanlab, out-of-fold) and reopen the "
        "--limit likeliest errors for re-review. Runs in this process (no worker)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("dataset_id", type=int)
        parser.add_argument("--limit", type=int, required=True, help=f"Items to reopen, 1 to {MAX_LIMIT:,}.")
        parser.add_argument(
            "--user", default="", help="Username the audit event names as the actor (default: the command itself)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        user = None
        if options["user"]:
            user = get_user_model().objects.filter(username=options["user"], is_active=True).first()
            if user is None:
                raise CommandError(f"No active user named {options['user']!r}.")
        try:
            done = label_issues_reopen(dataset_id=options["dataset_id"], user=user, limit=options["limit"])
        except Dataset.DoesNotExist as exc:
            raise CommandError(f"No dataset with id {options['dataset_id']}.") from exc
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Scored {done.scored} gold labels ({done.flagged} flagged by cleanlab); reopened "
                f"{len(done.reopened)} for re-review"
                + (f", skipped {done.skipped} that changed while scoring." if done.skipped else ".")
            )
        )
