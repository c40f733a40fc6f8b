"""Accounts: whoami, couch-style login/adduser, and the security-key (web) challenge pages."""

from __future__ import annotations

import html
import urllib.parse

from devregistry import accounts, otp
from devregistry.errors import RegistryError, bad_request, not_found
from devregistry.routing import Context, Route, route
from devregistry.wire import Request, Response


def whoami(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    with ctx.store.read() as state:
        return Response.json(200, {"username": ctx.caller(state, request).user.name})


def ping(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    return Response.json(200, {})


def web_login(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """Web login is not offered: npm (auth-type web) then falls back to the couch flow."""
    raise not_found("Web login is not supported by this registry; use the couch flow.")


def couch_login(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """`PUT /-/user/org.couchdb.user:NAME`: logs in an existing user, or creates one.

    A new user needs an email (what `npm adduser` sends); `npm login` of an unknown name gets
    400, which npm reports as "There is no user with the username".
    """
    name = urllib.parse.unquote(params["user"])
    body = request.json()
    if not isinstance(body, dict) or body.get("name") != name:
        raise bad_request("the body's name must match the URL")
    password, email = body.get("password"), body.get("email")
    if not isinstance(password, str) or not password:
        raise bad_request("a password is required")
    with ctx.store.write() as state:
        user = state.users.get(name)
        if user is None:
            if not isinstance(email, str) or not email:
                raise bad_request(f'There is no user with the username "{name}".')
            try:
                accounts.add_user(state, name, password, email)
            except ValueError as exc:
                raise bad_request(str(exc)) from exc
        elif not accounts.check_password(user, password):
            raise RegistryError(401, "Incorrect username or password.")
        else:
            ctx.second_factor(state, accounts.Principal(user, False, False), request)()
        token = accounts.create_token(state, name)
    doc = {"ok": True, "id": f"org.couchdb.user:{name}", "rev": "1-devregistry", "token": token}
    return Response.json(201, doc)


def auth_page(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    with ctx.store.read() as state:
        challenge = otp.live_web_challenge(state, params["id"])
        if challenge is None:
            raise not_found("Unknown or expired authentication request.")
        user, done = challenge.user, challenge.token is not None
    return Response.html(200, _page(user, done))


def press_security_key(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    with ctx.store.write() as state:
        challenge = otp.live_web_challenge(state, params["id"])
        if challenge is None:
            raise not_found("Unknown or expired authentication request.")
        otp.complete_web_challenge(challenge)
        user = challenge.user
    return Response.html(200, _page(user, True))


def done(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """Polled by the client: 202 + retry-after until the button is pressed, then the token."""
    with ctx.store.read() as state:
        challenge = otp.live_web_challenge(state, request.query.get("authId", ""))
        if challenge is None:
            raise not_found("Unknown or expired authentication request.")
        token = challenge.token
    if token is None:
        return Response.json(202, {}, {"retry-after": "1"})
    return Response.json(200, {"token": token})


def _page(user: str, done: bool) -> str:
    if done:
        main = "<p>Security key accepted. You can close this page and go back.</p>"
    else:
        main = (
            f"<p>A request made as <strong>{html.escape(user)}</strong> needs your second "
            "factor.</p>\n"
            '<form method="post"><button type="submit">Use my security key</button></form>'
        )
    return (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
        "<title>devregistry: two-factor authentication</title></head>\n"
        f"<body><h1>Two-factor authentication</h1>\n{main}\n</body></html>\n"
    )


ROUTES: list[Route] = [
    route("GET", r"/-/whoami", whoami),
    route("GET", r"/-/ping", ping),
    route("POST", r"/-/v1/login", web_login),
    route("PUT", r"/-/user/org\.couchdb\.user:(?P<user>[^/]+)", couch_login),
    route("GET", r"/-/auth/(?P<id>[0-9a-f-]{36})", auth_page),
    route("POST", r"/-/auth/(?P<id>[0-9a-f-]{36})", press_security_key),
    route("GET", r"/-/v1/done", done),
]
