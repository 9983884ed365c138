"""`manage.py audit_checkpoint`: sign a Merkle checkpoint of the audit trail now, and/or export one as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from governance.checkpoint_signing import new_private_key_b64
from governance.checkpoints import CheckpointRefused, audit_checkpoint_create, checkpoint_export
from governance.models import AuditCheckpoint


class Command(BaseCommand):
    help = (
        "Sign a checkpoint of the audit trail (Merkle tree head, Ed25519). --export FILE writes the newest"
        " checkpoint as a JSON document to keep outside the database (--no-create: export without making one)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--export", type=Path, help="Write the newest checkpoint to this file (- for stdout).")
        parser.add_argument("--no-create", action="store_true", help="Do not make a new checkpoint first.")
        parser.add_argument(
            "--with-leaves",
            action="store_true",
            help="Put every covered event's hash in the export (32 bytes an event), so that verifying against it"
            " alone names the first rewritten event even if the checkpoint rows were deleted too.",
        )
        parser.add_argument("--new-key", action="store_true", help="Print a new base64 Ed25519 private key and stop.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["new_key"]:
            self.stdout.write(new_private_key_b64())
            return
        if not options["no_create"]:
            try:
                checkpoint = audit_checkpoint_create()
            except (CheckpointRefused, ImproperlyConfigured) as exc:
                raise CommandError(str(exc)) from exc
            assert checkpoint is not None  # only_if_new is off
            self.stdout.write(
                self.style.SUCCESS(f"Checkpoint signed: {checkpoint.tree_size} events, root {checkpoint.root_hash}.")
            )
        if options["export"] is not None:
            newest = AuditCheckpoint.objects.order_by("-tree_size").first()
            if newest is None:
                raise CommandError("There is no checkpoint to export yet.")
            try:
                document = checkpoint_export(newest, with_leaves=options["with_leaves"])
            except CheckpointRefused as exc:
                raise CommandError(str(exc)) from exc
            text = json.dumps(document, indent=2, sort_keys=True) + "\n"
            if str(options["export"]) == "-":
                self.stdout.write(text)
            else:
                options["export"].write_text(text, encoding="utf-8")
                self.stdout.write(f"Exported the checkpoint at {newest.tree_size} events to {options['export']}.")
