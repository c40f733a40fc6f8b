"""Routes a Request to its handler and turns refusals into responses."""

from __future__ import annotations

import sys
import traceback

from devregistry import otp, routes_accounts, routes_packages, routes_stage
from devregistry.errors import RegistryError, not_found
from devregistry.routing import Context, Route
from devregistry.wire import Request, Response

# Most specific first: the package routes match any first path segment.
ROUTES: list[Route] = routes_accounts.ROUTES + routes_stage.ROUTES + routes_packages.ROUTES


def handle(ctx: Context, request: Request) -> Response:
    route, params = _resolve(request)
    try:
        if route is None:
            raise not_found()
        return route.handler(ctx, request, params)
    except otp.WebChallengeNeeded as need:
        with ctx.store.write() as state:
            challenge = otp.open_web_challenge(state, need.user)
        return _refusal(otp.web_challenge_refusal(challenge, request.base_url), stage=True)
    except otp.SecondFactorRefused as refused:
        if refused.counts:
            with ctx.store.write() as state:
                otp.record_failure(state, refused.user)
        return _refusal(refused, stage=route is not None and route.stage)
    except RegistryError as error:
        return _refusal(error, stage=_is_stage_path(request.path, route))
    except Exception:
        traceback.print_exc(file=sys.stderr)
        return Response.json(500, {"message": "An error occurred while processing your request."})


def _resolve(request: Request) -> tuple[Route | None, dict[str, str]]:
    for route in ROUTES:
        match = route.pattern.match(request.path)
        if match and route.method == request.method:
            return route, match.groupdict()
    return None, {}


def _is_stage_path(path: str, route: Route | None) -> bool:
    # A path under /-/stage that matches no route (a bad id or name) still answers in the stage
    # routes' shape, {"message": ...}, as their OpenAPI description says.
    return route.stage if route is not None else path == "/-/stage" or path.startswith("/-/stage/")


def _refusal(error: RegistryError, *, stage: bool) -> Response:
    if error.body is not None:
        doc = error.body
    else:
        doc = {"message": error.message} if stage else {"error": error.message}
    return Response.json(error.status, doc, error.headers)
