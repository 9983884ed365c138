"""Benchmark: verify_audit's speed on a long trail, the chain alone and with signed Merkle checkpoints.

Usage:  .venv/bin/python bench/audit_verify.py [--events 200000] [--checkpoints 10]
Uses DATABASE_URL when set (PostgreSQL), SQLite otherwise; always in a fresh
throw-away test database. The events are a genuine chain (hashes computed as
audit_record computes them), written in bulk in `--checkpoints` stages with a
checkpoint after each, so what is timed is what a site with that history would run:
making a checkpoint (the Merkle root over every event's hash, the links since the
previous checkpoint), the chain walk alone, the full verification (chain + every
checkpoint's signature and root, one pass), and proofs against the newest checkpoint.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workflow_site.settings")
os.environ.setdefault("SECRET_KEY", "bench-only")
os.environ.setdefault("HTTPS", "false")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--checkpoints", type=int, default=10)
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test.utils import setup_test_environment

    from governance.checkpoint_signing import new_private_key_b64

    settings.LOUPE_AUDIT_SIGNING_KEY = new_private_key_b64()
    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        run(args.events, args.checkpoints, connection)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def _append(n: int) -> None:
    """n more events, chained exactly as audit_record chains them, bulk-inserted; the head moved to the last."""
    from datetime import timedelta

    from django.db import transaction
    from django.utils import timezone

    from governance.audit_chain import PAYLOAD_DIGEST_SCHEME, chain_hash, event_fields, payload_digest, to_json_value
    from governance.models import AuditChainHead, AuditEvent

    head = AuditChainHead.objects.get_or_create(singleton=True)[0]
    seq, prev = head.seq, head.hash
    start = timezone.now() - timedelta(seconds=n)
    batch: list[AuditEvent] = []
    with transaction.atomic():
        for g in range(n):
            seq += 1
            event = AuditEvent(
                seq=seq,
                created_at=start + timedelta(milliseconds=g),
                actor_username=f"user{g % 40}",
                action="review.submitted",
                object_type="item",
                object_id=str(g),
                dataset_id=1 + g % 3,
                before=to_json_value({"label": "benign"}),
                after=to_json_value({"label": "malignant", "confidence": 0.73}),
                prev_hash=prev,
                hash_scheme=PAYLOAD_DIGEST_SCHEME,  # as audit_record writes every event now (retention, issue 10)
            )
            event.payload_sha256 = payload_digest(event.before, event.after, event.reason)
            event.hash = chain_hash(prev, event_fields(event))
            prev = event.hash
            batch.append(event)
            if len(batch) == 20_000:
                AuditEvent.objects.bulk_create(batch)
                batch = []
        AuditEvent.objects.bulk_create(batch)
        last = AuditEvent.objects.get(seq=seq)
        AuditChainHead.objects.filter(singleton=True).update(seq=seq, hash=last.hash, prev_hash=last.prev_hash)
    from django.db import connection

    if connection.vendor == "postgresql":
        # What autovacuum does after a bulk insert on a live site: without statistics the planner
        # sorts the whole table for every keyset batch of the walk instead of reading the seq index.
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {AuditEvent._meta.db_table}")


def run(n_events: int, n_checkpoints: int, connection) -> None:  # type: ignore[no-untyped-def]
    from governance.audit_proofs import audit_consistency_proof, audit_inclusion_proof
    from governance.checkpoints import audit_checkpoint_create, audit_trail_verify
    from governance.selectors import audit_chain_verify

    stage = n_events // n_checkpoints
    create_times = []
    for _ in range(n_checkpoints):
        _append(stage)
        started = time.perf_counter()
        checkpoint = audit_checkpoint_create()
        create_times.append(time.perf_counter() - started)
    total = checkpoint.tree_size + 1
    print(f"{connection.vendor}: {total:,} events, {n_checkpoints} checkpoints")
    print(
        f"  checkpoint create: first {create_times[0]:.2f}s (links of {stage:,} events + root),"
        f" last {create_times[-1]:.2f}s (links of {stage:,} + root over {checkpoint.tree_size:,})"
    )

    started = time.perf_counter()
    checked, broken = audit_chain_verify()
    chain_s = time.perf_counter() - started
    assert broken is None, broken
    print(f"  chain alone:       {chain_s:.1f}s, {checked / chain_s:,.0f} events/s")

    started = time.perf_counter()
    result = audit_trail_verify()
    full_s = time.perf_counter() - started
    assert result.ok, (result.chain_break, result.problems)
    print(
        f"  chain + {result.checkpoints_checked} checkpoints: {full_s:.1f}s,"
        f" {result.events_checked / full_s:,.0f} events/s ({(full_s / chain_s - 1) * 100:+.0f}% on the chain alone)"
    )

    started = time.perf_counter()
    proof = audit_inclusion_proof(seq=total // 3, tree_size=checkpoint.tree_size)
    inclusion_s = time.perf_counter() - started
    started = time.perf_counter()
    audit_consistency_proof(first_size=stage, second_size=checkpoint.tree_size)
    consistency_s = time.perf_counter() - started
    print(
        f"  inclusion proof ({len(proof['proof'])} hashes): {inclusion_s:.2f}s;"
        f" consistency proof {stage:,} -> {checkpoint.tree_size:,}: {consistency_s:.2f}s"
    )


if __name__ == "__main__":
    main()
