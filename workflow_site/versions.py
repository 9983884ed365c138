"""Which code trained a model (issue 9, point 5): stored on every model version with the library versions.

`LOUPE_CODE_VERSION` (set by a deployment, e.g. to a release tag or image digest)
wins; otherwise the git commit of the checkout, read from .git without running
git (the worker may have no git binary); otherwise "unknown", said plainly.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent


@functools.cache
def code_version() -> str:
    configured = os.environ.get("LOUPE_CODE_VERSION", "").strip()
    if configured:
        return configured
    return _git_commit(_ROOT / ".git") or "unknown"


def _git_commit(git: Path) -> str | None:
    try:
        head = (git / "HEAD").read_text().strip()
    except OSError:
        return None
    if not head.startswith("ref: "):
        return head or None  # a detached HEAD is the commit itself
    ref = head[5:]
    try:
        return (git / ref).read_text().strip()
    except OSError:
        pass
    try:  # a packed ref: "<sha> <ref>" lines
        for line in (git / "packed-refs").read_text().splitlines():
            sha, _, name = line.partition(" ")
            if name == ref:
                return sha
    except OSError:
        return None
    return None
