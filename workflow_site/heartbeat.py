"""A heartbeat thread for long work in a worker (a model fit, an import's row checks).

While the `with` block runs, `touch()` is called every LOUPE_HEARTBEAT_EVERY_S
from a daemon thread, so the beat sweeps can tell a slow worker (its heartbeat
moves) from a dead one (it stops). A missed beat is logged and the next one
tried; the thread closes its own database connection when it ends. Used by
models_app/training.py (training runs) and annotations/import_lifecycle.py
(import batches); each passes the one UPDATE that records its beat.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from django.conf import settings
from django.db import connection

logger = logging.getLogger(__name__)


class Heartbeat:
    def __init__(self, *, touch: Callable[[], None], name: str) -> None:
        self.touch = touch
        self.name = name
        self.every = settings.LOUPE_HEARTBEAT_EVERY_S
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat {name}", daemon=True)

    def _beat(self) -> None:
        touched = False
        try:
            while not self._stop.wait(self.every):
                try:
                    self.touch()
                    touched = True
                except Exception:  # a missed beat is logged; the next one may succeed
                    logger.warning("Heartbeat of %s not recorded", self.name, exc_info=True)
        finally:
            if touched:
                connection.close()  # this thread's own connection

    def __enter__(self) -> Heartbeat:
        if self.every > 0:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
