"""What every route needs: the context it runs in, the caller, the second factor, names."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from devregistry import accounts, otp, packages
from devregistry.accounts import Principal
from devregistry.errors import RegistryError, not_found, unauthorized
from devregistry.models import State
from devregistry.store import Store
from devregistry.wire import Request, Response


class Compat(StrEnum):
    """Whose answers to give where the spec is silent or ignored (README, "Compatibility")."""

    NPM = "npm"
    OTHER = "other"  # another open-source implementation of the stage API


@dataclass(frozen=True)
class Context:
    store: Store
    refuse_otp_reuse: Callable[[], bool]
    compat: Compat = Compat.NPM
    otp_max_uses: Callable[[], int | None] = lambda: None

    @property
    def other(self) -> bool:
        return self.compat == Compat.OTHER

    def caller(self, state: State, request: Request) -> Principal:
        return caller(state, request, revoked_is_forbidden=self.other)

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
                strict=self.other,
                max_uses=self.otp_max_uses(),
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


def caller(state: State, request: Request, *, revoked_is_forbidden: bool = False) -> Principal:
    authorization = request.header("authorization")
    found = accounts.principal_for(state, authorization)
    if found is None:
        if revoked_is_forbidden and accounts.is_revoked(state, authorization):
            raise RegistryError(403, "unauthorized access")
        raise unauthorized()
    return found


def package_name(raw: str) -> str:
    name = urllib.parse.unquote(raw)
    if not packages.valid_package_name(name):
        raise not_found(f"package not found: {name}")
    return name
