"""Staged publishing: stage, list, view, approve, reject.

Who may do what (stage.yaml leaves some of it open; see README.md):
- stage: any read-write token for a new name; maintainers only for an existing package (403);
- list: only stages of packages the token's user maintains;
- view, tarball: the same set; anything else is 404, so a stage's existence is not revealed;
- approve, reject: 404 if the stage does not exist, 403 for read-only tokens and non-maintainers,
  then the second factor for 2FA users. With `--compat other`: 403 for read-only tokens, then
  the second factor (spent even if what follows fails), then 404 for an unknown stage and for
  non-maintainers alike (routes_stage.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Protocol

from devregistry import packages
from devregistry.accounts import Principal
from devregistry.errors import conflict, forbidden, stage_not_found
from devregistry.models import Stage, State, now_iso
from devregistry.packages import Upload
from devregistry.store import Store, write_atomic

DEFAULT_PER_PAGE = 10
MAX_PER_PAGE = 100


class Decide(Protocol):
    """`approve` or `reject`."""

    def __call__(
        self,
        state: State,
        store: Store,
        principal: Principal,
        stage_id: str,
        second_factor: Callable[[], None],
        *,
        hide_refusal: bool = False,
    ) -> Stage: ...


def create(state: State, store: Store, principal: Principal, upload: Upload) -> Stage:
    pkg = packages.require_maintainer(state, principal, upload.name)
    if packages.versions_taken(state, upload.name, upload.version):
        raise conflict(f"Conflict - {upload.name}@{upload.version} is already published or staged.")
    if pkg is None:
        packages.publish_placeholder(state, store, upload.name, principal)
    manifest = packages.stored_manifest(upload, principal)
    stage = Stage(
        id=str(uuid.uuid4()),
        package_name=upload.name,
        version=upload.version,
        tag=upload.tag,
        created_at=now_iso(),
        actor=principal.user.name,
        actor_type=principal.actor_type,
        access=upload.access,
        shasum=manifest["dist"]["shasum"],
        integrity=manifest["dist"]["integrity"],
        manifest=manifest,
        seq=state.next_seq,
    )
    state.next_seq += 1
    write_atomic(store.staged_tarball(stage.id), upload.tarball)
    state.stages[stage.id] = stage
    return stage


def visible(state: State, principal: Principal, package: str | None = None) -> list[Stage]:
    """The stages the token may see, newest first."""
    items = [
        s
        for s in state.stages.values()
        if _maintains(state, principal, s.package_name)
        and (package is None or s.package_name == package)
    ]
    return sorted(items, key=lambda s: s.seq, reverse=True)


def page_of(items: list[Stage], page: int, per_page: int) -> list[Stage]:
    return items[page * per_page : (page + 1) * per_page]


def get(state: State, principal: Principal, stage_id: str) -> Stage:
    stage = _find(state, stage_id)
    if not _maintains(state, principal, stage.package_name):
        raise stage_not_found()
    return stage


def approve(
    state: State,
    store: Store,
    principal: Principal,
    stage_id: str,
    second_factor: Callable[[], None],
    *,
    hide_refusal: bool = False,
) -> Stage:
    stage = _decidable(state, principal, stage_id, hide_refusal=hide_refusal)
    second_factor()
    pkg = state.packages.get(stage.package_name)
    if pkg is not None and stage.version in pkg.versions:
        raise conflict(f"Conflict - {stage.package_name}@{stage.version} is already published.")
    # The exact staged bytes become the published tarball.
    tarball = store.staged_tarball(stage.id).read_bytes()
    packages.add_version(
        state,
        store,
        stage.package_name,
        stage.manifest,
        tarball,
        stage.tag,
        principal.user.name,
    )
    del state.stages[stage.id]
    store.delete_after_save(store.staged_tarball(stage.id))
    return stage


def reject(
    state: State,
    store: Store,
    principal: Principal,
    stage_id: str,
    second_factor: Callable[[], None],
    *,
    hide_refusal: bool = False,
) -> Stage:
    stage = _decidable(state, principal, stage_id, hide_refusal=hide_refusal)
    second_factor()
    del state.stages[stage.id]
    store.delete_after_save(store.staged_tarball(stage.id))
    return stage


def require_read_write(principal: Principal) -> None:
    if principal.read_only:
        raise forbidden("This token is read-only")


def _decidable(
    state: State, principal: Principal, stage_id: str, *, hide_refusal: bool = False
) -> Stage:
    stage = _find(state, stage_id)
    require_read_write(principal)
    if not _maintains(state, principal, stage.package_name):
        raise stage_not_found() if hide_refusal else forbidden()
    return stage


def _find(state: State, stage_id: str) -> Stage:
    try:
        canonical = str(uuid.UUID(stage_id))
    except ValueError:
        raise stage_not_found() from None
    if canonical != stage_id.lower() or canonical not in state.stages:
        raise stage_not_found()
    return state.stages[canonical]


def _maintains(state: State, principal: Principal, name: str) -> bool:
    pkg = state.packages.get(name)
    return pkg is not None and principal.user.name in pkg.maintainers
