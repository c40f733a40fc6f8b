"""The six staged-publishing endpoints of stage.yaml."""

from __future__ import annotations

from devregistry import packages, stages
from devregistry.routing import NAME, Context, Route, package_name, route
from devregistry.wire import Request, Response

_ID = r"(?P<id>[^/]+)"


def list_stages(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    page = max(_int(request.query.get("page"), 0), 0)
    per_page = _int(request.query.get("perPage"), stages.DEFAULT_PER_PAGE)
    per_page = min(max(per_page, 1), stages.MAX_PER_PAGE)
    package = request.query.get("package") or None
    with ctx.store.read() as state:
        items = stages.visible(state, ctx.caller(state, request), package)
        doc = {
            "items": [s.to_api() for s in stages.page_of(items, page, per_page)],
            "page": page,
            "perPage": per_page,
            "total": len(items),
        }
    return Response.json(200, doc)


def stage_version(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    name = package_name(params["name"])
    with ctx.store.write() as state:
        who = ctx.caller(state, request)
        upload = packages.parse_upload(name, request.json())
        stage = stages.create(state, ctx.store, who, upload)
    doc = {"message": "Package version staged successfully.", "stageId": stage.id}
    return Response.json(201, doc)


def view(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    with ctx.store.read() as state:
        stage = stages.get(state, ctx.caller(state, request), params["id"])
    return Response.json(200, stage.to_api())


def tarball(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    with ctx.store.read() as state:
        stage = stages.get(state, ctx.caller(state, request), params["id"])
        data = ctx.store.staged_tarball(stage.id).read_bytes()
    return Response(200, data, "application/octet-stream")


def approve(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    _decide(ctx, request, params["id"], stages.approve)
    doc = {"message": "Package version approved and published successfully."}
    return Response.json(201, doc)


def reject(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    _decide(ctx, request, params["id"], stages.reject)
    return Response(204)


def _decide(ctx: Context, request: Request, stage_id: str, action: stages.Decide) -> None:
    if ctx.other:
        # The code first, in a write of its own: spent even if the stage turns out missing.
        with ctx.store.write() as state:
            who = ctx.caller(state, request)
            stages.require_read_write(who)
            ctx.second_factor(state, who, request)()
        with ctx.store.write() as state:
            action(state, ctx.store, ctx.caller(state, request), stage_id, _done, hide_refusal=True)
        return
    with ctx.store.write() as state:
        who = ctx.caller(state, request)
        action(state, ctx.store, who, stage_id, ctx.second_factor(state, who, request))


def _done() -> None:
    """The second factor, already checked."""


def _int(raw: str | None, default: int) -> int:
    try:
        return int(raw) if raw is not None else default
    except ValueError:
        return default


ROUTES: list[Route] = [
    route("GET", r"/-/stage", list_stages, stage=True),
    route("POST", rf"/-/stage/package/{NAME}", stage_version, stage=True),
    route("GET", rf"/-/stage/{_ID}", view, stage=True),
    route("DELETE", rf"/-/stage/{_ID}", reject, stage=True),
    route("POST", rf"/-/stage/{_ID}/approve", approve, stage=True),
    route("GET", rf"/-/stage/{_ID}/tarball", tarball, stage=True),
]
