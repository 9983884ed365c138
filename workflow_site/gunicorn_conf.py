"""gunicorn settings for Loupe's web processes (`gunicorn -c python:workflow_site.gunicorn_conf workflow_site.wsgi`).

Sized by measurement (issue 7; README "Speed: the benchmarks"): a review step
spends about half its time waiting on PostgreSQL round trips, so one sync
worker per core leaves the cores idle while they wait, and two per core keeps
them busy without the context switching of more. Each environment variable
overrides its default.
"""

from __future__ import annotations

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", f"127.0.0.1:{os.environ.get('WEB_PORT', '8000')}")
# WEB_CONCURRENCY is the variable gunicorn and most platforms already use for this.
workers = int(os.environ.get("WEB_CONCURRENCY", 2 * multiprocessing.cpu_count()))
worker_class = "sync"
# An upload of up to LOUPE_IMPORT_MAX_BYTES (1 GiB) is read within one request.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 300))
graceful_timeout = 30
keepalive = 5
# A worker is replaced after this many requests (with jitter, so they do not all restart at
# once): whatever a long day leaves in a process's memory is given back (<= 200 MB per worker).
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", 5000))
max_requests_jitter = max_requests // 10
accesslog = "-"
