"""`manage.py audit_proof`: print an inclusion or consistency proof of the audit trail as JSON, or check one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from governance.audit_proofs import audit_consistency_proof, audit_inclusion_proof, proof_document_verify


class Command(BaseCommand):
    help = (
        "Print a Merkle proof of the audit trail: --event SEQ --tree-size N (the event is among the first N),"
        " --from M --to N (the first M events are a prefix of the first N), or --verify FILE to check one."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--event", type=int, help="The event's seq (inclusion proof).")
        parser.add_argument("--tree-size", type=int, help="The tree (checkpoint) size it is proven against.")
        parser.add_argument("--from", dest="first", type=int, help="The older tree size (consistency proof).")
        parser.add_argument("--to", dest="second", type=int, help="The newer tree size (consistency proof).")
        parser.add_argument("--verify", type=Path, help="A proof document printed by this command, to check.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["verify"] is not None:
            try:
                document = json.loads(options["verify"].read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise CommandError(f"{options['verify']}: cannot read a proof document ({exc}).") from exc
            if not isinstance(document, dict) or not proof_document_verify(document):
                raise CommandError(f"{options['verify']}: the proof does NOT verify.")
            self.stdout.write(self.style.SUCCESS(f"{options['verify']}: the {document['kind']} proof verifies."))
            return
        try:
            if options["event"] is not None and options["tree_size"] is not None:
                document = audit_inclusion_proof(seq=options["event"], tree_size=options["tree_size"])
            elif options["first"] is not None and options["second"] is not None:
                document = audit_consistency_proof(first_size=options["first"], second_size=options["second"])
            else:
                raise CommandError("Give --event SEQ --tree-size N, or --from M --to N, or --verify FILE.")
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(json.dumps(document, indent=2, sort_keys=True))
