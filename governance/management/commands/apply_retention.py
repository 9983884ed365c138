"""`manage.py apply_retention`: remove what has expired now (the beat task does it too): governance/retention.py."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotations.models import Dataset
from governance.retention import retention_apply


class Command(BaseCommand):
    help = (
        "Apply each dataset's retention period: expired item data, reviews' free text, import reports and files"
        " and audit payloads are removed, their hashes kept (the chain still verifies); datasets on legal hold are"
        " skipped. One transaction and one retention.applied event per batch; safe to run again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dataset", action="append", default=None, help="Only this dataset (slug); repeatable.")
        parser.add_argument("--batch-size", type=int, default=None, help="Rows per transaction (default: settings).")

    def handle(self, *args: Any, **options: Any) -> None:
        dataset_ids = None
        if options["dataset"]:
            found = dict(Dataset.objects.filter(slug__in=options["dataset"]).values_list("slug", "pk"))
            missing = sorted(set(options["dataset"]) - set(found))
            if missing:
                raise CommandError(f"No dataset with slug {', '.join(missing)}.")
            dataset_ids = list(found.values())
        if options["batch_size"] is not None and options["batch_size"] < 1:
            raise CommandError(f"--batch-size must be at least 1 (got {options['batch_size']}).")
        batches = retention_apply(dataset_ids=dataset_ids, batch_size=options["batch_size"])
        items = sum(b.items_purged for b in batches)
        events = sum(b.events_tombstoned for b in batches)
        reasons = sum(b.review_reasons_removed for b in batches)
        reports = sum(b.import_reports_removed for b in batches)
        self.stdout.write(
            self.style.SUCCESS(
                f"Retention applied: {items} items purged, {reasons} review reasons and {reports} import reports"
                f" removed and {events} audit payloads removed in {len(batches)} batches."
            )
        )
