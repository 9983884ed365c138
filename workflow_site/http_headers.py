"""Cache headers for everything Loupe answers that is not a static file.

Every page and API response Loupe renders is for one signed-in person and may
carry item data (the review card, its htmx partial, item history, the next-item
API, review submissions): none of it may be kept by a browser's disk cache, its
back/forward cache or a proxy. So every response gets `Cache-Control: private,
no-store`. A middleware rather than `never_cache` on each view: a view added
later is covered without anyone remembering to, and the few responses that carry
no data (the login page, /health/, redirects) lose nothing by not being stored.
Static files never reach it: WhiteNoiseMiddleware, above it, answers them first
with their own long-lived headers.

Every response also gets `Vary: HX-Request`. Several views render a partial for
htmx and the whole page otherwise (the review card, a training run's status, the
audit-chain check), and HtmxLoginRedirectMiddleware answers any URL with
HX-Redirect instead of a 302 when htmx asks: whatever the path, what comes back
depends on that header. With `no-store` nothing should be cached to mix up, but
the Vary states the truth for any cache that stores anyway.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control, patch_vary_headers


class NoStoreMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # patch_cache_control drops a `public` a view may have set, as `private` contradicts it.
        patch_cache_control(response, private=True, no_store=True)
        patch_vary_headers(response, ("HX-Request",))
        return response
