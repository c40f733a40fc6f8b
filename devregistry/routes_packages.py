"""Classic package routes: packument, version manifest, tarball, publish, dist-tags.

Reads need no token (every package is public here); writes need a maintainer's token and,
for a 2FA user, the second factor.
"""

from __future__ import annotations

import urllib.parse

from devregistry import packages
from devregistry.routing import NAME, Context, Route, package_name, route
from devregistry.wire import Request, Response

# Packuments change as versions are approved: clients must not serve them from cache.
_FRESH = {"cache-control": "no-cache"}


def packument(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    name = package_name(params["name"])
    with ctx.store.read() as state:
        doc = packages.packument(state, name, request.base_url)
    return Response.json(200, doc, _FRESH)


def version_manifest(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    name = package_name(params["name"])
    spec = urllib.parse.unquote(params["spec"])
    with ctx.store.read() as state:
        doc = packages.version_manifest(state, name, spec, request.base_url)
    return Response.json(200, doc, _FRESH)


def tarball(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    name = package_name(params["name"])
    with ctx.store.read() as state:
        version = packages.tarball_version(state, name, urllib.parse.unquote(params["file"]))
        data = ctx.store.published_tarball(name, version).read_bytes()
    return Response(200, data, "application/octet-stream")


def publish(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    name = package_name(params["name"])
    with ctx.store.write() as state:
        who = ctx.caller(state, request)
        upload = packages.parse_upload(name, request.json())
        packages.publish(state, ctx.store, who, upload, ctx.second_factor(state, who, request))
    # publish.yaml: 200 {"success": true}; npm-profile era clients read "ok".
    return Response.json(200, {"ok": True, "success": True, "id": name})


def dist_tags(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    name = package_name(params["name"])
    with ctx.store.read() as state:
        doc = packages.dist_tags(state, name)
    return Response.json(200, doc, _FRESH)


def set_dist_tag(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    name = package_name(params["name"])
    tag = urllib.parse.unquote(params["tag"])
    with ctx.store.write() as state:
        who = ctx.caller(state, request)
        check = ctx.second_factor(state, who, request)
        packages.set_dist_tag(state, who, name, tag, request.json(), check)
    return Response.json(201, {"ok": True})


ROUTES: list[Route] = [
    route("GET", rf"/-/package/{NAME}/dist-tags", dist_tags),
    route("PUT", rf"/-/package/{NAME}/dist-tags/(?P<tag>[^/]+)", set_dist_tag),
    route("GET", rf"/{NAME}", packument),
    route("PUT", rf"/{NAME}", publish),
    route("GET", rf"/{NAME}/-/(?P<file>[^/]+\.tgz)", tarball),
    route("GET", rf"/{NAME}/(?P<spec>[^/]+)", version_manifest),
]
