"""`manage.py verify_audit`: walk the hash chain and name the first broken link."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from governance.selectors import audit_chain_verify


class Command(BaseCommand):
    help = "Verify the audit trail's hash chain; exit 1 and name the first broken event if it does not verify."

    def handle(self, *args: Any, **options: Any) -> None:
        checked, broken = audit_chain_verify()
        if broken is not None:
            raise CommandError(
                f"Audit chain broken at event #{broken.seq}: {broken.reason}. {checked} events verified before it."
            )
        self.stdout.write(self.style.SUCCESS(f"Audit chain verified: {checked} events, no broken link."))
