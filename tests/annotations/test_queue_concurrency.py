"""Reviewers asking for work at the same moment are never handed the same item."""

from __future__ import annotations

import threading

from django.db import connections

from annotations.models import Dataset, Item
from annotations.queue import queue_next_item
from tests.conftest import make_user, synthetic_rows
from workflow_site.access import Role


def test_concurrent_reviewers_never_hold_the_same_item(transactional_db, dataset, import_rows):
    import_rows(synthetic_rows(40, labelled=False), name="pool.csv")
    reviewers = [make_user(f"parallel{i}", Role.REVIEWER, dataset=dataset) for i in range(6)]
    handed: dict[str, list[int]] = {r.username: [] for r in reviewers}
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(reviewers))

    def work(user) -> None:  # type: ignore[no-untyped-def]
        try:
            ds = Dataset.objects.get(pk=dataset.pk)
            barrier.wait()
            for _ in range(5):
                queued = queue_next_item(dataset=ds, reviewer=user)
                if queued is None:
                    break
                handed[user.username].append(queued.item.pk)
                # Give the item back, so the next ask claims a new one under contention.
                Item.objects.filter(pk=queued.item.pk, leased_to=user).update(queue_state=Item.QueueState.DONE)
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(r,)) for r in reviewers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors, errors
    claimed = [pk for items in handed.values() for pk in items]
    assert len(claimed) == 30  # 6 reviewers × 5 asks, 40 items available
    assert len(set(claimed)) == len(claimed), "an item was handed to two reviewers"
