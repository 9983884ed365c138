"""Test-session environment, loaded as a plugin (-p tests.env) before Django reads its settings."""

import os
import tempfile

_scratch = tempfile.mkdtemp(prefix="loupe-test-")
os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production")
os.environ.setdefault("HTTPS", "false")
os.environ.setdefault("LOUPE_PLAIN_STATIC", "true")
os.environ["LOUPE_ARTIFACT_DIR"] = os.path.join(_scratch, "artifacts")
os.environ["LOUPE_BROKER_DIR"] = os.path.join(_scratch, "broker")
# Stored uploads and import reports are named by batch id, and every xdist worker has its own
# database counting batches from 1: each gets its own folder (and none writes into var/).
os.environ["LOUPE_UPLOAD_DIR"] = os.path.join(_scratch, "uploads")
# Smaller staging chunks than production's 5,000: more chunks per test import (the multi-chunk
# path is exercised), and the live-worker test can see the progress bar move even when COPY
# stages a chunk in a few milliseconds.
os.environ["LOUPE_IMPORT_STAGE_CHUNK_ROWS"] = "1000"
# This process's keys on a shared broker (tests/celery_app.py); assigned, not defaulted,
# so that each xdist worker gets its own rather than inheriting the controller's.
os.environ["LOUPE_TEST_BROKER_NAMESPACE"] = f"loupe-test-{os.getpid()}:"
# Playwright's sync API runs an event loop in the test thread; Django's ORM
# calls from that thread are still synchronous and safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
