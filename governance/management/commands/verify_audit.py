"""`manage.py verify_audit`: walk the hash chain and every signed checkpoint; name the first bad link."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from governance.checkpoint_signing import exported_checkpoint_read
from governance.checkpoints import audit_trail_verify, audit_verification_record


class Command(BaseCommand):
    help = (
        "Verify the audit trail: its hash chain, every stored checkpoint (signature, Merkle root recomputed"
        " from the events) and any exported checkpoint given; exit 1 naming the first broken event or checkpoint."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--checkpoint",
            type=Path,
            action="append",
            default=[],
            help="An exported checkpoint file (audit_checkpoint --export): its first N events must give its root.",
        )
        parser.add_argument("--no-record", action="store_true", help="Do not log this verification in the trail.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            exported = [exported_checkpoint_read(path) for path in options["checkpoint"]]
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        result = audit_trail_verify(exported=exported)
        if not options["no_record"]:
            audit_verification_record(result=result)
        if result.chain_break is not None:
            broken = result.chain_break
            raise CommandError(
                f"Audit chain broken at event #{broken.seq}: {broken.reason}."
                f" {result.events_checked} events verified before it."
            )
        if result.problems:
            # Every problem, up to a few: a deleted checkpoint row and the exported checkpoint that still
            # catches the rewrite behind it are different findings, and an auditor needs both.
            shown, rest = result.problems[:_PROBLEMS_SHOWN], len(result.problems) - _PROBLEMS_SHOWN
            also = "".join(f" Also: {problem}." for problem in shown[1:])
            more = f" ({rest} more problems)" if rest > 0 else ""
            raise CommandError(f"Audit checkpoint does not verify: {shown[0]}.{also}{more}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Audit chain verified: {result.events_checked} events, no broken link"
                f"{_tombstones(result.tombstones)};"
                f" {result.checkpoints_checked} checkpoints and {result.exported_checked} exported checkpoints"
                " verified."
            )
        )


_PROBLEMS_SHOWN = 5


def _tombstones(count: int) -> str:
    if not count:
        return ""
    return (
        f" ({count} tombstone{'s' if count != 1 else ''}: payload removed under the retention policy,"
        " header and payload digest verified)"
    )
