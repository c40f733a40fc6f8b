"""Error pages in Greenroom's layout. 400, 403 and 404 are Django's own handlers with our
templates; these two need more than a template.

The 500 page is rendered from a plain dict: no request, no context processor, no database (a
broken database is one reason to be here), and never a traceback. The CSRF failure page says
which of the two usual causes it was, so the advice fits.
"""

from __future__ import annotations

import structlog
from django.http import HttpRequest, HttpResponse, HttpResponseServerError
from django.middleware.csrf import REASON_NO_CSRF_COOKIE
from django.shortcuts import render
from django.template import loader


def server_error(request: HttpRequest) -> HttpResponse:
    request_id = structlog.contextvars.get_contextvars().get("request_id", "")
    page = loader.get_template("500.html").render({"request_id": request_id})
    return HttpResponseServerError(page)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    context = {"no_cookie": reason == REASON_NO_CSRF_COOKIE}
    return render(request, "403_csrf.html", context, status=403)
