"""What every route needs: the context it runs in, the caller, the second factor, names."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

from devregistry import accounts, otp, packages
from devregistry.accounts import Principal
from devregistry.errors import not_found, unauthorized
from devregistry.models import State
from devregistry.store import Store
from devregistry.wire import Request, Response


@dataclass(frozen=True)
class Context:
    store: Store
    refuse_otp_reuse: Callable[[], bool]

    def second_factor(
        self, state: State, caller: Principal, request: Request
    ) -> Callable[[], None]:
        """A check to run once permissions are settled, inside the same write."""

        def check() -> None:
            otp.require_second_factor(
                state,
                caller.user,
                request.header("npm-otp"),
                request.header("npm-auth-type"),
                refuse_reuse=self.refuse_otp_reuse(),
            )

        return check


Handler = Callable[[Context, Request, dict[str, str]], Response]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    # Stage routes answer errors as stage.yaml does, {"message": ...}; the classic routes
    # as npm's CLI reads them, {"error": ...}.
    stage: bool = False


# A package name in a path: escaped (@scope%2fname) or not (@scope/name), or unscoped.
NAME = r"(?P<name>(?:@|%40)[^/%]+(?:/|%2[fF])[^/%]+|[^@/%-][^/%]*)"


def route(method: str, pattern: str, handler: Handler, *, stage: bool = False) -> Route:
    return Route(method, re.compile(f"^{pattern}$"), handler, stage)


def caller(state: State, request: Request) -> Principal:
    found = accounts.principal_for(state, request.header("authorization"))
    if found is None:
        raise unauthorized()
    return found


def package_name(raw: str) -> str:
    name = urllib.parse.unquote(raw)
    if not packages.valid_package_name(name):
        raise not_found(f"package not found: {name}")
    return name
