"""The review's Django side: choose a stage's baseline, fetch it, analyse the pair, serve diffs.

`analyse_stage()` is what the Celery task and `manage.py analyse_stage` call: it reads the
packument, chooses the baseline (`reviews.inspect.baseline`), downloads the baseline's tarball and
checks it against the packument's `dist.shasum` / `dist.integrity` (stored content-addressed,
like staged tarballs), then runs the whole-package analysis (`reviews.inspect.changes`) once per
(baseline, staged) pair of tarballs and stores it: one `Analysis` row with the counts, findings,
refusal and package.json diff, and one `FileChangeRow` per path, so a page draws the tree with
one query and never opens a tarball for it.

An analysis is claimed with a conditional UPDATE and a lease, kept fresh by a heartbeat while
it runs (`reviews.mirror.leases`, as downloads are), so two workers never analyse the same pair
and a killed worker's claim expires within a few minutes.
Every step is idempotent: running it twice finds the work done.

Pages ask `file_diff()` / `file_view()` / `context_rows()` for one file at a time: the result
is cached in Django's cache under keys built from the two contents' SHA-256 digests
(`reviews.inspect.diffing.diff_cache_key`), so opening a file twice diffs it once, and two
stages with the same pair share the entry. `file_table()` caches what a page shows on top of
that: the file's table rendered for one layout, with holes for the page's own parts (comment
links, threads), so a file opened again costs one cache read and one pass to fill the holes.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import logging
import re
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from functools import partial
from typing import Any, BinaryIO, cast

import nodesemver
from django.conf import settings
from django.core.cache import cache
from django.core.files.storage import storages
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from reviews.inspect import words
from reviews.inspect.archive import ArchiveResult, Limits, format_size, read_members
from reviews.inspect.baseline import STAGE_PLACEHOLDER, Baseline, BaselineRule, choose_baseline
from reviews.inspect.changes import ChangeStatus, FileChange, PackageAnalysis, analyse_tarballs
from reviews.inspect.diffing import (
    DiffKind,
    DiffOptions,
    FileDiff,
    FileView,
    InlineLimits,
    SideInfo,
    binary_notice,
    diff_cache_key,
    diff_file,
    expand_context,
    view_cache_key,
    view_file,
)
from reviews.inspect.highlight import lexer_name
from reviews.inspect.manifest_diff import EntryChange, ManifestDiff, diff_manifests
from reviews.inspect.render import (
    NEW,
    OLD,
    Marks,
    Table,
    render_context,
    side_by_side_table,
    unified_table,
    view_table,
)
from reviews.inspect.rules import PairScan
from reviews.inspect.storable import storable, storable_text
from reviews.mirror import leases
from reviews.mirror.blobs import BlobWriter, read_blob
from reviews.mirror.registry import (
    DownloadedTarball,
    NotFound,
    Packument,
    RegistryClient,
    RegistryError,
    sync_client,
)
from reviews.mirror.sync import read_with_retries
from reviews.mirror.tarballs import Verdict, check_tarball, store_tarball
from reviews.models import (
    Analysis,
    FileChangeRow,
    PublishedTarball,
    StageBaseline,
    StagedVersion,
    Tarball,
)
from reviews.review import risk

logger = logging.getLogger(__name__)

FORMAT_VERSION = 2
"""Of what an `Analysis` stores; bump it and pairs are analysed again into new rows.
2: risk findings (`reviews.review.risk`)."""
MAX_ATTEMPTS = 3
"""Claims of one pair whose worker died or ran past the lease; then it fails, with why."""
MAX_ERROR_CHARS = 1000
ROWS_PER_INSERT = 2000
MANIFEST = "package.json"
BINDING_GYP = "binding.gyp"

Status = Analysis.Status
Integrity = StagedVersion.Integrity

# What `analyse_stage` reports, besides an analysis status.
SKIPPED = "skipped"  # nothing to do: no tarball yet, or the work is done
NO_BASELINE = "no-baseline"  # the baseline's tarball could not be used; the reason is recorded
UNKNOWN_VERSION = "unknown-version"  # `against` is not a published version


class FileUnavailable(Exception):
    """A file's bytes could not be read back from its stored tarball."""


@dataclass(frozen=True)
class Outcome:
    status: str
    analysis_id: int | None = None
    message: str = ""


# -- Settings -------------------------------------------------------------------------------------


def archive_limits() -> Limits:
    return Limits(
        max_total_bytes=settings.GREENROOM_ANALYSIS_MAX_UNPACKED_BYTES,
        max_entries=settings.GREENROOM_ANALYSIS_MAX_ENTRIES,
        max_entry_bytes=settings.GREENROOM_ANALYSIS_MAX_FILE_BYTES,
        max_kept_bytes=settings.GREENROOM_ANALYSIS_MAX_KEPT_BYTES,
    )


def diff_options() -> DiffOptions:
    return DiffOptions(
        limits=InlineLimits(
            max_side_bytes=settings.GREENROOM_DIFF_MAX_SIDE_BYTES,
            max_lines=settings.GREENROOM_DIFF_MAX_LINES,
            max_line_chars=settings.GREENROOM_DIFF_MAX_LINE_CHARS,
            max_highlight_bytes=settings.GREENROOM_DIFF_MAX_HIGHLIGHT_BYTES,
            max_lexed_bytes=settings.GREENROOM_DIFF_MAX_LEXED_BYTES,
        )
    )


# -- One stage ------------------------------------------------------------------------------------


def analyse_stage(
    staged_version_id: int,
    *,
    against: str | None = None,
    client: RegistryClient | None = None,
    again: bool = False,
) -> Outcome:
    """Choose the stage's baseline (or use `against`), fetch it, and analyse the pair.

    Transient registry errors are raised for the caller to retry (nothing is half-recorded);
    anything else ends recorded, a crash too: the page says why instead of waiting forever.
    `again` re-runs a failed or refused analysis.
    """
    if client is None:
        with sync_client() as own_client:
            return analyse_stage(staged_version_id, against=against, client=own_client, again=again)
    try:
        return _analyse_stage(staged_version_id, against, client, again)
    except RegistryError as e:
        if e.transient:
            raise
        return _crashed(staged_version_id, against, e)
    except Exception as e:
        return _crashed(staged_version_id, against, e)


def _crashed(staged_version_id: int, against: str | None, error: Exception) -> Outcome:
    """Something other than the registry's answer broke the baseline's choice or fetch."""
    logger.exception("analysis of stage %s crashed", staged_version_id)
    stage = StagedVersion.objects.get(id=staged_version_id)
    problem = (
        f"The analysis could not run: {failure_text(error)}. Once the cause is fixed, "
        f"`manage.py analyse_stage {stage.stage_id} --again` runs it again."
    )
    if against is not None:
        give_up(staged_version_id, against, problem)
    elif stage.tarball is not None:
        StageBaseline.objects.update_or_create(
            stage=stage,
            defaults={"staged_tarball": stage.tarball, "problem": problem, "analysis": None},
        )
    return Outcome(Status.FAILED, message=problem)


def failure_text(error: BaseException) -> str:
    """An exception in words for the page: its type and message, cut, storable."""
    text = f"{type(error).__name__}: {error}".strip().removesuffix(":")
    if len(text) > MAX_ERROR_CHARS:
        text = text[:MAX_ERROR_CHARS] + "…"
    return storable_text(text)


def _analyse_stage(
    staged_version_id: int, against: str | None, client: RegistryClient, again: bool
) -> Outcome:
    stage = StagedVersion.objects.select_related("tarball").get(id=staged_version_id)
    staged = stage.tarball
    if staged is None:
        return Outcome(SKIPPED, message="the staged tarball is not downloaded yet")
    if against is None and not again:
        done = current_baseline(stage)
        if done is not None and (done.problem or (done.analysis and done.analysis.finished)):
            return Outcome(SKIPPED, done.analysis_id, "already analysed")

    try:
        packument = _packument(client, stage.package_name)
    except RegistryError as e:
        if e.transient:
            raise
        problem = f"The registry refused to show the package's published versions: {e}"
        if against is None:
            StageBaseline.objects.update_or_create(
                stage=stage,
                defaults={
                    "staged_tarball": staged,
                    "problem": storable_text(problem),
                    "analysis": None,
                },
            )
        else:
            give_up(stage.pk, against, str(e))
        return Outcome(NO_BASELINE, message=problem)
    try:
        choice = choose_baseline(
            stage.version,
            published=packument.versions if packument else (),
            dist_tags=packument.dist_tags if packument else None,
            tag=stage.tag or None,
            requested=against,
        )
    except ValueError as e:
        return Outcome(UNKNOWN_VERSION, message=str(e))
    published = published_versions(packument, stage.version)

    baseline_tarball: Tarball | None = None
    problem = ""
    if choice.version is not None:
        assert packument is not None
        row = fetch_published_tarball(client, packument, choice.version)
        if row.verdict == Integrity.VERIFIED and row.tarball is not None:
            baseline_tarball = row.tarball
        else:
            problem = f"The baseline {choice.version} could not be used: {row.reason}"

    analysis = None if problem else analysis_for(baseline_tarball, staged)
    if against is None:
        record_baseline(stage, staged, choice, published, analysis, problem)
        record_maintainers(stage, packument)
    if analysis is None:
        return Outcome(NO_BASELINE, message=problem)
    status = run_analysis(analysis.pk, again=again)
    if status == SKIPPED:
        status = Analysis.objects.values_list("status", flat=True).get(pk=analysis.pk)
    if against is None:
        risk.record_stage_risk(stage, packument)
    return Outcome(status, analysis.pk)


def give_up(staged_version_id: int, against: str | None, message: str) -> None:
    """The registry stayed unreachable through every retry. A comparison the reviewer asked
    for says why on the page; a default baseline is chosen again by the next sync pass."""
    logger.warning("analysis of stage %s gave up: %s", staged_version_id, message)
    if against is None:
        return
    name = StagedVersion.objects.values_list("package_name", flat=True).get(id=staged_version_id)
    PublishedTarball.objects.filter(
        package_name=name, version=against, verdict=Integrity.PENDING
    ).update(
        verdict=Integrity.UNAVAILABLE,
        reason=storable_text(f"the registry did not answer: {message}"),
        checked_at=timezone.now(),
    )


def current_baseline(stage: StagedVersion) -> StageBaseline | None:
    """The stage's default baseline, if it was chosen for the tarball the stage has now."""
    if stage.tarball_id is None:
        return None
    return (
        StageBaseline.objects.select_related("analysis")
        .filter(stage=stage, staged_tarball_id=stage.tarball_id)
        .first()
    )


def record_baseline(
    stage: StagedVersion,
    staged: Tarball,
    choice: Baseline,
    published: list[str],
    analysis: Analysis | None,
    problem: str,
) -> None:
    StageBaseline.objects.update_or_create(
        stage=stage,
        defaults={
            "staged_tarball": staged,
            "version": choice.version or "",
            "rule": choice.rule.value,
            "tag": choice.tag or "",
            "published": storable(published),
            "problem": storable_text(problem),
            "analysis": analysis,
            "chosen_at": timezone.now(),
        },
    )


MAX_MAINTAINERS = 500


def maintainer_names(packument: Packument | None) -> list[str] | None:
    """The packument's `maintainers` names (None: no packument to read them from)."""
    if packument is None:
        return None
    listed = packument.raw.get("maintainers")
    if not isinstance(listed, list):
        return []
    names = [item.get("name") if isinstance(item, dict) else item for item in listed]
    return [name[:214] for name in names if isinstance(name, str) and name][:MAX_MAINTAINERS]


def record_maintainers(stage: StagedVersion, packument: Packument | None) -> None:
    """Keep who maintains the package, read with the baseline, so the stage page can say
    before the click whether the registry will let a person approve."""
    StageBaseline.objects.filter(stage=stage).update(maintainers=maintainer_names(packument))


def baseline_of(row: StageBaseline, staged_version: str) -> Baseline | None:
    """The stored choice as a `Baseline` (for its sentence); None if it was never made."""
    try:
        rule = BaselineRule(row.rule)
    except ValueError:
        return None
    return Baseline(row.version or None, rule, staged_version, row.tag or None)


def stages_needing_analysis(now: datetime | None = None) -> list[int]:
    """Pending stages with a tarball whose default baseline was not chosen for it, or whose
    analysis waits or was abandoned by a worker that died."""
    return list(
        _needing_analysis(now or timezone.now()).order_by("id").values_list("id", flat=True)
    )


def _needing_analysis(now: datetime) -> QuerySet[StagedVersion]:
    stale = now - leases.lease()
    chosen = StageBaseline.objects.filter(
        stage=OuterRef("pk"), staged_tarball=OuterRef("tarball")
    ).filter(
        Q(problem__gt="")
        | Q(analysis__status__in=[Status.DONE, Status.REFUSED, Status.FAILED])
        | Q(analysis__status=Status.RUNNING, analysis__claimed_at__gte=stale)
    )
    return StagedVersion.objects.filter(
        state=StagedVersion.State.PENDING, tarball__isnull=False
    ).exclude(Exists(chosen))


def analyses_to_queue(now: datetime | None = None) -> list[int]:
    """The stages whose analysis should be handed to the workers now, marked as queued: those
    needing one whose analysis was not queued within a lease (`leases.take_queue_marks`)."""
    now = now or timezone.now()
    return leases.take_queue_marks(_needing_analysis(now), "analysis_queued_at", now)


def mark_queued(staged_version_ids: Iterable[int], now: datetime | None = None) -> None:
    """These stages' analyses were handed to the workers (after a download, or from the page):
    for a lease, a page says "queued" rather than offering to queue them again (and never
    claims work is under way when nothing was queued), and sync passes do not queue them."""
    ids = list(staged_version_ids)
    for start in range(0, len(ids), leases.QUEUE_MARK_CHUNK):
        StagedVersion.objects.filter(id__in=ids[start : start + leases.QUEUE_MARK_CHUNK]).update(
            analysis_queued_at=now or timezone.now()
        )


def is_queued(staged_version_id: int, now: datetime | None = None) -> bool:
    fresh = (now or timezone.now()) - leases.lease()
    return StagedVersion.objects.filter(
        id=staged_version_id, analysis_queued_at__gte=fresh
    ).exists()


def request_comparison(stage: StagedVersion, version: str) -> bool:
    """A reviewer asked to compare with another published version: whether its analysis must
    be queued (the caller queues it; this room does not import the tasks).

    The version must be one the stage's baseline choice listed as published.
    """
    chosen = current_baseline(stage)
    if chosen is None or version not in chosen.published:
        raise ValueError(f"{version!r} is not a published version of {stage.package_name}")
    row, created = _published_row(stage.package_name, version)
    if not created and row.verdict == Integrity.VERIFIED and row.tarball_id is not None:
        analysis = comparison_analysis(stage, row)
        if analysis is not None and analysis.status != Status.FAILED:
            return False
    if not created and row.verdict in (Integrity.MISMATCH, Integrity.UNAVAILABLE):
        PublishedTarball.objects.filter(pk=row.pk).update(
            verdict=Integrity.PENDING, reason="", requested_at=timezone.now()
        )
    return True


def comparison_analysis(stage: StagedVersion, published: PublishedTarball) -> Analysis | None:
    if published.tarball_id is None or stage.tarball_id is None:
        return None
    return Analysis.objects.filter(
        baseline_id=published.tarball_id, staged_id=stage.tarball_id, format_version=FORMAT_VERSION
    ).first()


def published_versions(packument: Packument | None, staged_version: str) -> list[str]:
    """Published versions a reviewer may compare with, highest first."""
    if packument is None:
        return []
    versions = [
        v
        for v in packument.versions
        if v not in (STAGE_PLACEHOLDER, staged_version) and nodesemver.valid(v, True) is not None
    ]
    # node-semver order, loose, as reviews.inspect.baseline sorts them
    versions.sort(key=functools.cmp_to_key(_semver_compare), reverse=True)
    return versions


def _semver_compare(a: str, b: str) -> int:
    return int(nodesemver.compare(a, b, True))


def _packument(client: RegistryClient, name: str) -> Packument | None:
    try:
        return read_with_retries(partial(client.get_packument, name))
    except NotFound:
        return None  # nothing published, not even the placeholder: a first release


# -- Baseline tarballs ----------------------------------------------------------------------------

_SHA1 = re.compile(r"[0-9a-f]{40}")
_SRI_STRENGTH = {"sha1": 1, "sha256": 2, "sha384": 3, "sha512": 4}


def fetch_published_tarball(
    client: RegistryClient, packument: Packument, version: str
) -> PublishedTarball:
    """The published version's tarball, downloaded and checked once; reused afterwards.

    Transient registry errors are raised; refusals (403, 404, too large) and digests that do
    not match are recorded on the row with the reason.
    """
    name = packument.name
    dist = packument.dist(version) or {}
    shasum = _text(dist.get("shasum"))
    integrity = _text(dist.get("integrity"))
    row, _created = _published_row(name, version)
    same_dist = (row.shasum, row.integrity) == (shasum.lower()[:40], integrity)
    if row.verdict == Integrity.VERIFIED and row.tarball_id is not None and same_dist:
        return row
    url = dist.get("tarball")
    if not isinstance(url, str) or not url:
        return _record_published(row, shasum, integrity, Integrity.UNAVAILABLE, "no dist.tarball")
    try:
        downloaded = client.download_tarball(url, settings.GREENROOM_TARBALL_MAX_BYTES)
    except RegistryError as e:
        if e.transient:
            raise
        return _record_published(
            row, shasum, integrity, Integrity.UNAVAILABLE, f"registry answered {e}"
        )
    with downloaded:
        verdict = check_published(
            downloaded, name=name, version=version, shasum=shasum, integrity=integrity
        )
        stored = store_tarball(downloaded)
    if verdict.integrity != Integrity.VERIFIED:
        logger.warning("baseline %s@%s does not match: %s", name, version, verdict.reason)
    return _record_published(row, shasum, integrity, verdict.integrity, verdict.reason, stored)


def check_published(
    downloaded: DownloadedTarball, *, name: str, version: str, shasum: str, integrity: str
) -> Verdict:
    """A published tarball against its packument entry: the strongest SRI hash of
    `dist.integrity` we know, `dist.shasum`, and its package.json name and version."""
    shasum = shasum.lower()
    wanted = [
        part.split("?", 1)[0].split("-", 1)
        for part in integrity.split()
        if "-" in part and part.split("-", 1)[0] in _SRI_STRENGTH
    ]
    if not _SHA1.fullmatch(shasum) and not wanted:
        return Verdict(
            Integrity.UNAVAILABLE,
            "the packument gives no dist.shasum or dist.integrity to check the tarball against",
        )
    checked = []
    if wanted:
        strongest = max(_SRI_STRENGTH[alg] for alg, _ in wanted)
        alg = next(a for a, strength in _SRI_STRENGTH.items() if strength == strongest)
        expected = {value for a, value in wanted if a == alg}
        digest = hashlib.new(alg)
        file = downloaded.open()
        for chunk in iter(partial(file.read, 1 << 20), b""):
            digest.update(chunk)
        actual = base64.b64encode(digest.digest()).decode()
        if actual not in expected:
            shown = sorted(expected)[0][:100]
            return Verdict(
                Integrity.MISMATCH,
                f"dist.integrity is {alg}-{shown}, the tarball is {alg}-{actual}",
            )
        checked.append("dist.integrity")
    if _SHA1.fullmatch(shasum):
        checked.append("dist.shasum")
    # check_tarball compares the SHA-1 and reads the manifest's name and version.
    verdict = check_tarball(
        downloaded,
        name=name,
        version=version,
        shasum=shasum if _SHA1.fullmatch(shasum) else downloaded.sha1,
    )
    if verdict.integrity != Integrity.VERIFIED:
        return verdict
    return Verdict(Integrity.VERIFIED, f"{' and '.join(checked)} and package.json match")


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _published_row(name: str, version: str) -> tuple[PublishedTarball, bool]:
    try:
        with transaction.atomic():
            return PublishedTarball.objects.get_or_create(package_name=name, version=version)
    except IntegrityError:
        return PublishedTarball.objects.get(package_name=name, version=version), False


def _record_published(
    row: PublishedTarball,
    shasum: str,
    integrity: str,
    verdict: str,
    reason: str,
    tarball: Tarball | None = None,
) -> PublishedTarball:
    row.shasum = shasum.lower()[:40]
    row.integrity = integrity
    row.verdict = verdict
    row.reason = storable_text(reason)
    row.tarball = tarball
    row.checked_at = timezone.now()
    row.save(update_fields=["shasum", "integrity", "verdict", "reason", "tarball", "checked_at"])
    return row


# -- One pair of tarballs -------------------------------------------------------------------------


def analysis_for(baseline: Tarball | None, staged: Tarball) -> Analysis:
    """The analysis row of this pair, created (pending) if there is none yet."""
    try:
        with transaction.atomic():
            analysis, _created = Analysis.objects.get_or_create(
                baseline=baseline, staged=staged, format_version=FORMAT_VERSION
            )
    except IntegrityError:  # another worker created it between our read and our insert
        analysis = Analysis.objects.get(
            baseline=baseline, staged=staged, format_version=FORMAT_VERSION
        )
    return analysis


def claim_analysis(
    analysis_id: int, *, again: bool = False, now: datetime | None = None
) -> str | None:
    """Take the analysis of a pair; the claim's token, or None if it is not ours to do.

    A pair whose workers died (or ran past the lease) `MAX_ATTEMPTS` times would kill the next
    one too: it ends failed, with why, instead of "running" forever."""
    now = now or timezone.now()
    abandoned = Q(status=Status.RUNNING, claimed_at__lt=now - leases.lease())
    Analysis.objects.filter(abandoned, id=analysis_id, attempts__gte=MAX_ATTEMPTS).update(
        status=Status.FAILED,
        claimed_at=None,
        claim_token="",
        finished_at=now,
        error=(
            f"it stopped without finishing {MAX_ATTEMPTS} times (the worker was stopped, ran "
            "out of memory or ran past its lease)"
        ),
    )
    claimable = Q(status=Status.PENDING) | abandoned
    if again:  # after a fix, or with other limits: a refusal is worth another look too
        finished = [Status.FAILED, Status.REFUSED]
        Analysis.objects.filter(id=analysis_id, status__in=finished).update(attempts=0)
        claimable |= Q(status__in=finished)
    token = leases.new_token()
    claimed = Analysis.objects.filter(claimable, id=analysis_id).update(
        status=Status.RUNNING,
        claimed_at=now,
        claim_token=token,
        attempts=F("attempts") + 1,
        error="",
    )
    return token if claimed else None


def bump_analysis_claim(analysis_id: int, claim: str, now: datetime) -> int:
    """The heartbeat of an analysis: its claim is fresh as of `now`, if it is still ours."""
    return Analysis.objects.filter(id=analysis_id, status=Status.RUNNING, claim_token=claim).update(
        claimed_at=now
    )


def run_analysis(analysis_id: int, *, again: bool = False) -> str:
    """Claim, compute and store one pair's analysis; its status, or SKIPPED if not ours."""
    claim = claim_analysis(analysis_id, again=again)
    if claim is None:
        return SKIPPED
    started = time.monotonic()
    try:
        analysis = Analysis.objects.select_related("baseline", "staged").get(id=analysis_id)
        with leases.Heartbeat(partial(bump_analysis_claim, analysis_id, claim)):
            package, manifest, scan = compute(analysis.baseline, analysis.staged, archive_limits())
        seconds = time.monotonic() - started
        return save_analysis(analysis_id, claim, package, manifest, seconds, scan=scan)
    except Exception as e:
        # A bug, a lost file or a row the database refuses must not leave the analysis
        # "running" (the page would say "Analysing…" until the lease ends, and again after).
        logger.exception("analysis %s failed", analysis_id)
        _finish(analysis_id, claim, status=Status.FAILED, error=failure_text(e))
        return Status.FAILED


def compute(
    baseline: Tarball | None, staged: Tarball, limits: Limits, *, rules: bool = True
) -> tuple[PackageAnalysis, ManifestDiff, PairScan | None]:
    """The whole-package analysis, the package.json diff and the risk findings (unless
    `rules` is off, or a tarball was refused), from the stored tarballs; the changed files'
    bytes are stored on the way (`reviews.mirror.blobs`)."""
    rule_limits = risk.scan_limits()
    keep = risk.keep_for_rules(rule_limits) if rules else None
    # what the file views will read, so that they never open a tarball
    with BlobWriter() as on_changed, _opened(staged) as opened, _opened(baseline) as old:
        new = cast(BinaryIO, opened)
        package = analyse_tarballs(
            old, new, limits, also_keep=keep, keep_paths=[MANIFEST], on_changed=on_changed
        )
        new_manifest = package.new.contents.get(MANIFEST)
        old_manifest = package.old_contents.get(MANIFEST)
        manifest = diff_manifests(
            old_manifest,
            new_manifest,
            old_has_binding_gyp=package.old is not None and BINDING_GYP in package.old.files,
            new_has_binding_gyp=BINDING_GYP in package.new.files,
            first_release=baseline is None,
        )
        scan = None
        if rules:
            scan = risk.scan_package(
                package, manifest, new_manifest, old_manifest, old, limits, rule_limits
            )
    return package, manifest, scan


def save_analysis(
    analysis_id: int,
    claim: str,
    package: PackageAnalysis,
    manifest: ManifestDiff,
    seconds: float,
    *,
    scan: PairScan | None = None,
) -> str:
    """Store the result, if the claim is still ours; the status stored (or SKIPPED)."""
    changeset = package.changeset
    refused_side, refusal = _refusal(package)
    findings = _findings("staged", package.new)
    if package.old is not None:
        findings += _findings("baseline", package.old)
    fields: dict[str, Any] = {
        "findings": findings,
        "manifest": manifest_data(manifest, first_release=changeset.first_release),
        "unpacked_bytes": package.new.unpacked_bytes,
        "seconds": round(seconds, 3),
        **risk.risk_fields(package, scan),
    }
    if refusal is not None:
        fields.update(
            status=Status.REFUSED,
            refusal_side=refused_side,
            refusal_reason=refusal.reason.value,
            refusal_message=refusal.message,
            file_count=len(package.new.files),
        )
    else:
        counts = changeset.summary.counts
        fields.update(
            status=Status.DONE,
            refusal_side="",
            refusal_reason="",
            refusal_message="",
            file_count=len(package.new.files),
            files_added=counts[ChangeStatus.ADDED],
            files_removed=counts[ChangeStatus.REMOVED],
            files_modified=counts[ChangeStatus.MODIFIED],
            files_renamed=counts[ChangeStatus.RENAMED],
            files_unchanged=counts[ChangeStatus.UNCHANGED],
            binary_changed=changeset.summary.binary_changed,
            old_size=changeset.summary.old_size,
            new_size=changeset.summary.new_size,
            lines_added=changeset.summary.lines_added,
            lines_removed=changeset.summary.lines_removed,
            stats_complete=changeset.stats_complete,
        )
    with transaction.atomic():
        if not _finish(analysis_id, claim, **fields):
            return SKIPPED  # the lease ran out and another worker took over
        FileChangeRow.objects.filter(analysis_id=analysis_id).delete()
        if refusal is None:
            FileChangeRow.objects.bulk_create(
                (
                    _row(analysis_id, ordinal, change)
                    for ordinal, change in enumerate(changeset.changes)
                ),
                batch_size=ROWS_PER_INSERT,
            )
    logger.info(
        "analysis %s: %s in %.2f s%s", analysis_id, fields["status"], seconds, _rules_said(scan)
    )
    return str(fields["status"])


def _rules_said(scan: PairScan | None) -> str:
    if scan is None:
        return ""
    said = f"; risk rules {scan.seconds:.2f} s, {scan.files_parsed} files parsed"
    if scan.helper_files:
        said += f", {scan.helper_files} scanned by the helper ({scan.helper_cpu_seconds:.2f} s CPU)"
    return said


def _finish(analysis_id: int, claim: str, **fields: Any) -> bool:
    """Store the outcome, if the claim is still ours. The one place an analysis row gets text
    from tarballs (findings, the package.json diff, refusals, errors): made storable here."""
    return bool(
        Analysis.objects.filter(id=analysis_id, status=Status.RUNNING, claim_token=claim).update(
            claimed_at=None, claim_token="", finished_at=timezone.now(), **storable(fields)
        )
    )


@contextmanager
def _opened(tarball: Tarball | None) -> Iterator[BinaryIO | None]:
    if tarball is None:
        yield None
        return
    with storages["tarballs"].open(tarball.storage_name, "rb") as file:
        yield cast(BinaryIO, file)


def _refusal(package: PackageAnalysis) -> tuple[str, Any]:
    if package.new.refusal is not None:
        return "staged", package.new.refusal
    if package.old is not None and package.old.refusal is not None:
        return "baseline", package.old.refusal
    return "", None


def _findings(side: str, archive: ArchiveResult) -> list[dict[str, str]]:
    return [
        {"side": side, "kind": str(f.kind), "path": f.path, "detail": f.detail}
        for f in archive.findings
    ]


def _row(analysis_id: int, ordinal: int, change: FileChange) -> FileChangeRow:
    old, new = change.old, change.new
    return FileChangeRow(
        analysis_id=analysis_id,
        ordinal=ordinal,
        path=storable_text(change.path),
        old_path=storable_text(old.path) if old and change.status is ChangeStatus.RENAMED else "",
        status=change.status.value,
        size=new.size if new else None,
        old_size=old.size if old else None,
        mode=new.mode if new else None,
        old_mode=old.mode if old else None,
        sha256=new.sha256 if new else "",
        old_sha256=old.sha256 if old else "",
        is_binary=change.is_binary,
        line_count=new.line_count if new else None,
        old_line_count=old.line_count if old else None,
        lines_added=change.lines_added,
        lines_removed=change.lines_removed,
        oversized=any(entry.oversized for entry in (old, new) if entry),
    )


def manifest_data(diff: ManifestDiff, *, first_release: bool) -> dict[str, Any]:
    """The package.json diff as JSON-ready data (what `Analysis.manifest` holds)."""

    def entries(changes: tuple[EntryChange, ...]) -> list[dict[str, Any]]:
        return [{**asdict(c), "hook": c.is_install_hook} for c in changes]

    return {
        "scripts": entries(diff.scripts),
        "dependencies": entries(diff.dependencies),
        "bin": entries(diff.bin),
        "engines": entries(diff.engines),
        "fields": entries(diff.fields),
        "problems": list(diff.problems),
        "staged_unreadable": diff.staged_unreadable,
        "first_release": first_release,
    }


# -- One file, for the page -----------------------------------------------------------------------


def file_diff(analysis: Analysis, row: FileChangeRow, options: DiffOptions) -> FileDiff:
    """The display diff of one path of an analysis, from the cache or computed once."""
    key = diff_cache_key(row.old_sha256 or None, row.sha256 or None, row.path, options)
    cached = cache.get(key)
    if isinstance(cached, FileDiff):
        return cached
    result = _diff_without_bytes(row, key, options)
    if result is None:
        old = None
        if row.old_sha256:
            old = _file_bytes(analysis.baseline, row.old_path or row.path, row.old_sha256)
        new = _file_bytes(analysis.staged, row.path, row.sha256) if row.sha256 else None
        result = diff_file(old, new, row.path, options)
    cache.set(key, result, settings.GREENROOM_DIFF_CACHE_SECONDS)
    return result


def file_view(analysis: Analysis, row: FileChangeRow, options: DiffOptions) -> FileView:
    """One file shown whole: the staged one, or the baseline's for a removed file."""
    staged = bool(row.sha256)
    sha256 = row.sha256 if staged else row.old_sha256
    key = view_cache_key(sha256, row.path, options)
    cached = cache.get(key)
    if isinstance(cached, FileView):
        return cached
    side = _side(row, staged=staged)
    notice = _too_big(side, row, options, "the file")
    if notice is not None:
        kind = DiffKind.BINARY if side.is_binary else DiffKind.TOO_LARGE
        result = FileView(kind, side, (), lexer_name(row.path), key, (notice,))
    else:
        tarball = analysis.staged if staged else analysis.baseline
        result = view_file(_file_bytes(tarball, row.path, sha256), row.path, options)
    cache.set(key, result, settings.GREENROOM_DIFF_CACHE_SECONDS)
    return result


TABLE_FORMAT = 1
"""Bump when a rendered table changes for the same inputs (`reviews.inspect.render`, the word
marks of `reviews.inspect.words`): cached tables of the old shape are then ignored."""


def file_table(
    analysis: Analysis, row: FileChangeRow, options: DiffOptions, layout: str, marks: Marks
) -> Table:
    """One file's table for a layout ("unified", "split" or "file"), with the word marks and the
    finding markers, holes left for the page's own parts (`render.fill`). Cached by what it
    depends on: the contents, lexer and options (the diff's or the view's own key), the layout,
    the names it shows and the markers; never by who asks."""
    staged = bool(row.sha256)
    key = file_table_key(row, options, layout, marks)
    cached = cache.get(key)
    if isinstance(cached, Table):
        return cached
    if layout == "file":
        view = file_view(analysis, row, options)
        table = view_table(view, row.path, side=NEW if staged else OLD, marks=marks)
    else:
        diff = words.mark_diff(file_diff(analysis, row, options))
        lay_out = side_by_side_table if layout == "split" else unified_table
        table = lay_out(diff, row.path, old_path=row.old_path or None, marks=marks)
    cache.set(key, table, settings.GREENROOM_DIFF_CACHE_SECONDS)
    return table


def file_table_key(row: FileChangeRow, options: DiffOptions, layout: str, marks: Marks) -> str:
    """The cache key of `file_table`."""
    if layout == "file":
        sha256 = row.sha256 if row.sha256 else row.old_sha256
        content_key = view_cache_key(sha256, row.path, options)
    else:
        content_key = diff_cache_key(row.old_sha256 or None, row.sha256 or None, row.path, options)
    # paths and finding titles are any length and any text: hashed, so the key stays short
    parts = [content_key, layout, row.path, row.old_path, sorted(marks.items())]
    digest = hashlib.sha256(json.dumps(parts).encode()).hexdigest()
    return f"greenroom:table:v{TABLE_FORMAT}:{layout}:{digest}"


def context_rows(
    analysis: Analysis, row: FileChangeRow, gap: int, options: DiffOptions, *, side_by_side: bool
) -> str:
    """Table rows for the unchanged lines of one gap of a file's diff (LookupError if none)."""
    diff = file_diff(analysis, row, options)
    found = next((g for g in diff.gaps if g.before_hunk == gap), None)
    if found is None or not row.sha256:
        raise LookupError(f"no gap {gap} in this diff")
    key = f"{diff.cache_key}:gap:{gap}:{'split' if side_by_side else 'unified'}"
    cached = cache.get(key)
    if isinstance(cached, str):
        return cached
    data = _file_bytes(analysis.staged, row.path, row.sha256)
    lines = expand_context(data, row.path, found, options)
    html = render_context(lines, side_by_side=side_by_side)
    cache.set(key, html, settings.GREENROOM_DIFF_CACHE_SECONDS)
    return html


def _file_bytes(tarball: Tarball | None, path: str, sha256: str) -> bytes:
    """One side of a file: its blob stored by the analysis, else (an analysis made before
    blobs, or a blob lost) read back from the tarball."""
    data = read_blob(sha256)
    return data if data is not None else _member(tarball, path)


def _member(tarball: Tarball | None, path: str) -> bytes:
    if tarball is None:
        raise FileUnavailable(f"{path}: there is no tarball to read it from")
    with _opened(tarball) as file:
        data = read_members(cast(BinaryIO, file), [path], archive_limits()).get(path)
    if data is None:
        raise FileUnavailable(f"{path} could not be read back from its tarball")
    return data


def _side(row: FileChangeRow, *, staged: bool) -> SideInfo:
    if staged:
        return SideInfo(row.size or 0, row.sha256, row.is_binary, row.line_count, None)
    return SideInfo(row.old_size or 0, row.old_sha256, row.is_binary, row.old_line_count, None)


def _too_big(side: SideInfo, row: FileChangeRow, options: DiffOptions, subject: str) -> str | None:
    """Why a side is shown by its size and digest alone, without reading its bytes."""
    limit = options.limits.max_side_bytes
    if row.oversized:
        return (
            f"Not loaded: {subject} is {format_size(side.size)}, over the "
            f"{format_size(settings.GREENROOM_ANALYSIS_MAX_FILE_BYTES)} limit for one file. "
            "Download the tarball to inspect it."
        )
    if side.is_binary:
        return f"Binary file, {format_size(side.size)}, SHA-256 {side.sha256}."
    if side.size > limit:
        lines = f", {side.line_count:,} lines" if side.line_count is not None else ""
        return (
            f"Not shown inline: {subject} is {format_size(side.size)}{lines} "
            f"(limit {format_size(limit)})."
        )
    return None


def _diff_without_bytes(row: FileChangeRow, key: str, options: DiffOptions) -> FileDiff | None:
    """Binary, oversized and very large files are described from the index alone: reading
    them back would cost the request time and memory for nothing shown."""
    old = _side(row, staged=False) if row.old_sha256 else None
    new = _side(row, staged=True) if row.sha256 else None
    sides = [(side, label) for side, label in ((old, "baseline"), (new, "staged")) if side]
    file_limit = settings.GREENROOM_ANALYSIS_MAX_FILE_BYTES
    inline_limit = options.limits.max_side_bytes
    if row.oversized:
        kind = DiffKind.TOO_LARGE
        over = [
            f"the {label} file is {format_size(s.size)}"
            for s, label in sides
            if s.size > file_limit
        ]
        notice = (
            f"Not loaded: {'; '.join(over)}, over the {format_size(file_limit)} limit for one "
            "file. Its size and digest are below; download the tarball to inspect it."
        )
    elif row.is_binary:
        kind, notice = DiffKind.BINARY, binary_notice(old, new)
    else:
        large = [
            f"the {label} file is {format_size(s.size)}"
            + (f", {_lines(s.line_count)}" if s.line_count is not None else "")
            for s, label in sides
            if s.size > inline_limit
        ]
        if not large:
            return None
        kind = DiffKind.TOO_LARGE
        notice = f"Not shown inline: {'; '.join(large)} (limit {format_size(inline_limit)})."
        if row.lines_added is not None and row.lines_removed is not None:
            notice += f" {_lines(row.lines_added)} added, {row.lines_removed:,} removed."
    if old and new and old.sha256 == new.sha256:
        kind = DiffKind.IDENTICAL
    return FileDiff(
        kind,
        old,
        new,
        row.lines_added,
        row.lines_removed,
        lexer_name(row.path),
        key,
        notices=(notice,),
    )


def _lines(count: int) -> str:
    return f"{count:,} line" if count == 1 else f"{count:,} lines"
