"""Playwright for the browser tests, and what happens when it or Chromium is missing.

Without the playwright package or Debian's Chromium the browser tests are
skipped, so `make test` still runs everywhere; with REQUIRE_E2E=1 (CI) a missing
piece is a failure instead, so the browser tests cannot silently stop running.
The package is imported through ``sync_api()`` rather than at the top of a test
module: a top-level import of a missing package is a collection error, not the
intended skip.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Any, NoReturn

import pytest

from tests.helpers import PASSWORD


def required() -> bool:
    return os.environ.get("REQUIRE_E2E") == "1"


def unavailable(reason: str) -> NoReturn:
    """Skip the browser test (or the whole module, at import), or fail under REQUIRE_E2E=1."""
    if required():
        pytest.fail(f"REQUIRE_E2E=1 but the browser test cannot run: {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def sync_api() -> ModuleType:
    """playwright.sync_api, or the skip (failure under REQUIRE_E2E=1) of the calling test module."""
    try:
        return importlib.import_module("playwright.sync_api")
    except ImportError:
        pass  # reported outside the handler, so a failure does not drag the ImportError's traceback along
    unavailable("the playwright package is not installed (pip install -r requirements-dev.txt)")


def sign_in(page: Any, base_url: str, username: str) -> None:
    expect = sync_api().expect
    page.goto(f"{base_url}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Your datasets")).to_be_visible()


def sign_out(page: Any) -> None:
    expect = sync_api().expect
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to Loupe")).to_be_visible()
