"""Swagger UI at /api/docs/ in a real browser: it renders the operations from our own static
files, and the strict Content-Security-Policy refuses nothing (issue 6, defect 16)."""

from __future__ import annotations

import pytest

from tests.e2e.browser import sign_in, sync_api
from tests.e2e.test_csp import Violations

expect = sync_api().expect
pytestmark = pytest.mark.e2e


def test_swagger_ui_renders_the_api_under_the_strict_csp(live_server, page, trained_dataset, reviewer):
    violations = Violations(page)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    sign_in(page, live_server.url, "reviewer")

    violations.visit("API docs", f"{live_server.url}/api/docs/")
    expect(page.get_by_text("/api/model-versions/{model_version_id}/promotion-requests/")).to_be_visible()
    violations.check("API docs, rendered")

    violations.assert_none()
    assert all(url.startswith(live_server.url) or url.startswith("data:") for url in requested), requested
