"""The review on the stage page: baseline, counts, package.json diff, file tree, one file's diff.

The stage page (`views.stage_detail`) asks `review_page()` for its review part and, for htmx
requests, `partial()` for the one fragment the request targets: the diff pane (`#diff`), the
tree (`#tree`) or the "still analysing" notice (`#review-pending`). The same URL serves the
whole page without JavaScript, so `/stages/<id>/files/<path>` can be shared.

Everything shown comes from the database (one query for the whole tree) except a file's diff,
which `reviews.review.analysis` computes once and caches by content digests. Everything that came
from a tarball is escaped, with bidi and invisible characters shown as markers.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from html import escape
from typing import Any
from urllib.parse import quote, urlencode
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.cache import cache
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET, require_POST

from reviews.audit.trail import Actor
from reviews.inspect.archive import format_size
from reviews.inspect.baseline import Baseline, BaselineRule
from reviews.inspect.render import NEW, OLD, Table, fill, fill_numbers
from reviews.inspect.textcheck import escape_and_mark
from reviews.mirror import sync
from reviews.mirror.tarballs import open_stored
from reviews.models import Analysis, FileChangeRow, PublishedTarball, Role, StagedVersion
from reviews.review import analysis as review_analysis
from reviews.review import discussion
from reviews.review import risk as review_risk
from reviews.review.risk_view import RiskView, file_marks, risk_view, tree_marks
from reviews.review.tree import MINUS, TreeFile, render_tree
from reviews.tasks import analyse_stage_task, download_stage_tarball_task
from reviews.teams.access import get_visible_stage, require_stage_role, role_for_package

LAYOUTS = {"unified": "Unified", "split": "Side by side", "file": "File"}
LAYOUT_SESSION_KEY = "review_layout"
WRAPS = {"scroll": "No wrap", "soft": "Soft wrap"}
"""Long lines: scrolled sideways per file, or wrapped at word boundaries with a marker."""
WRAP_SESSION_KEY = "review_wrap"
TREE_MAX_FILES = 5000
POLL_EVERY_SECONDS = 2
_GAP_ROW = re.compile(r'<tr class="gr-gap" data-gap="(\d+)"')
_COMMENT_AT = re.compile(r"(old|new)-([0-9]{1,9})")
_TREE_FIELDS = (
    "path",
    "status",
    "size",
    "old_size",
    "old_path",
    "is_binary",
    "oversized",
    "lines_added",
    "lines_removed",
)

Status = Analysis.Status
Integrity = StagedVersion.Integrity


# -- What the page compares with ------------------------------------------------------------------


@dataclass
class Comparison:
    """The baseline shown, how it was chosen, and where its analysis stands.

    `state`: no-tarball, not-started (nothing queued), queued, waiting (under way), done,
    refused, failed, problem, not-analysed (a comparison not asked for yet), unknown-version.
    """

    state: str
    baseline: Baseline | None = None
    analysis: Analysis | None = None
    against: str | None = None
    default_version: str | None = None
    versions: list[str] = field(default_factory=list)
    problem: str = ""
    baseline_check: str = ""
    release_findings: list[dict[str, Any]] = field(default_factory=list)
    """What the release itself says (tag move, stager): the same whatever the baseline."""

    @property
    def ready(self) -> bool:
        return self.state == "done" and self.analysis is not None


def compare_with(stage: StagedVersion, against: str | None) -> Comparison:
    if stage.tarball_id is None:
        return Comparison("no-tarball")
    chosen = review_analysis.current_baseline(stage)
    versions = list(chosen.published) if chosen else []
    default = (chosen.version or None) if chosen else None
    release = list(chosen.release_findings or []) if chosen else []
    if against is not None and against == default:
        against = None
    if against is None:
        if chosen is None:
            # Nothing has started: say "queued" only when work really was handed out.
            started = "queued" if review_analysis.is_queued(stage.pk) else "not-started"
            return Comparison(started, versions=versions)
        found = Comparison(
            _state(chosen.analysis),
            baseline=review_analysis.baseline_of(chosen, stage.version),
            analysis=chosen.analysis,
            default_version=default,
            versions=versions,
            release_findings=release,
        )
        if chosen.problem:
            found.state, found.problem = "problem", chosen.problem
        if default:
            found.baseline_check = _baseline_check(stage.package_name, default)
        return found

    requested = Baseline(against, BaselineRule.REQUESTED, stage.version)
    found = Comparison(
        "not-analysed",
        baseline=requested,
        against=against,
        default_version=default,
        versions=versions,
        release_findings=release,
    )
    if against not in versions:
        found.state = "unknown-version"
        return found
    published = PublishedTarball.objects.filter(
        package_name=stage.package_name, version=against
    ).first()
    if published is None:
        return found
    if published.verdict == Integrity.PENDING:
        found.state = "waiting"
    elif published.verdict != Integrity.VERIFIED:
        found.state, found.problem = "problem", f"{against} could not be used: {published.reason}"
    else:
        found.baseline_check = published.reason
        found.analysis = review_analysis.comparison_analysis(stage, published)
        found.state = _state(found.analysis) if found.analysis else "waiting"
    return found


def _state(analysis: Analysis | None) -> str:
    if analysis is None:
        return "waiting"
    return {
        Status.DONE: "done",
        Status.REFUSED: "refused",
        Status.FAILED: "failed",
    }.get(Status(analysis.status), "waiting")


def _baseline_check(package_name: str, version: str) -> str:
    published = PublishedTarball.objects.filter(package_name=package_name, version=version).first()
    return published.reason if published and published.verdict == Integrity.VERIFIED else ""


# -- The page -------------------------------------------------------------------------------------


@dataclass
class FilePane:
    row: FileChangeRow
    layout: str
    html: SafeString
    layout_links: list[tuple[str, str, bool]]
    context_url: str = ""
    wrap_links: list[tuple[str, str, bool]] = field(default_factory=list)
    viewed: bool = False
    other_threads: list[discussion.Thread] = field(default_factory=list)


@dataclass
class ReviewPage:
    stage: StagedVersion
    comparison: Comparison
    query: str
    """`?against=…` (or empty): what every link of the review carries along."""
    path: str | None = None
    layout: str = "unified"
    wrap: str = "scroll"
    filter_text: str = ""
    changed_only: bool = True
    with_findings: bool = False
    risk: RiskView | None = None
    tree_html: SafeString = field(default_factory=SafeString)
    tree_shown: int = 0
    tree_more: bool = False
    pane: FilePane | None = None
    manifest: list[dict[str, Any]] = field(default_factory=list)
    manifest_problems: list[SafeString] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)
    request: HttpRequest | None = None
    may_comment: bool = False
    comment_at: tuple[str, int] | None = None
    """`?comment=new-12`: the line whose new-comment form is open."""
    viewed: set[str] = field(default_factory=set)
    viewed_changed: int = 0
    changed_files: int = 0
    all_files: bool = False
    """Drawn as one pane of the all-files page (htmx target `pane-N`), not the file page."""

    @property
    def page_path(self) -> str:
        if self.path is not None:
            return file_url(self.stage, self.path)
        return reverse("reviews:stage", args=[self.stage.stage_id])

    @property
    def page_url(self) -> str:
        return self.page_path + self.query

    @property
    def analysis(self) -> Analysis | None:
        return self.comparison.analysis

    @property
    def size_change(self) -> str:
        analysis = self.analysis
        if analysis is None:
            return ""
        delta = analysis.size_delta
        return ("+" if delta >= 0 else MINUS) + format_size(abs(delta))

    @property
    def new_size(self) -> str:
        return format_size(self.analysis.new_size) if self.analysis else ""

    @property
    def poll_every(self) -> int:
        return POLL_EVERY_SECONDS


def review_page(request: HttpRequest, stage: StagedVersion, path: str | None) -> ReviewPage:
    """Everything the review part of the stage page shows; Http404 for a path not in it."""
    against = request.GET.get("against") or None
    comparison = compare_with(stage, against)
    query = f"?{urlencode({'against': comparison.against})}" if comparison.against else ""
    page = ReviewPage(stage, comparison, query, path=path, layout=_layout(request))
    page.wrap = _remembered(request, "wrap", WRAP_SESSION_KEY, WRAPS, "scroll")
    page.request = request
    page.all_files = request.headers.get("HX-Target", "").startswith("pane-")
    page.filter_text = request.GET.get("q", "").strip()[:200]
    role = role_for_package(request.user, stage.package_name)
    page.may_comment = role is not None and role >= Role.REVIEWER
    asked = _COMMENT_AT.fullmatch(request.GET.get("comment", ""))
    if asked and page.may_comment:
        page.comment_at = (asked.group(1), int(asked.group(2)))
    changed = request.GET.getlist("changed")
    page.changed_only = not changed or changed[-1] != "0"
    page.with_findings = request.GET.get("findings") == "1"
    analysis = comparison.analysis
    # an htmx request for the file pane alone (`partial` draws nothing else): no risk, tree or
    # package.json diff to build, so a file opened again costs little more than its table
    pane_only = (
        path is not None
        and request.headers.get("HX-Request") == "true"
        and (request.headers.get("HX-Target") == "diff" or page.all_files)
        and comparison.ready
        and analysis is not None
    )
    if analysis is not None and not pane_only:
        _fill_risk(page, analysis, comparison)
    if not comparison.ready or analysis is None:
        return page
    row = None
    if path is not None:
        row = FileChangeRow.objects.filter(analysis=analysis, path=path).first()
        if row is None:
            raise Http404("No such file in this review")
    _count_viewed(page, analysis, request.user)
    if row is not None:
        page.pane = file_pane(page, analysis, row)
    if pane_only:
        return page
    _fill_tree(page, analysis)
    page.manifest, page.manifest_problems = manifest_groups(analysis.manifest)
    return page


def _fill_risk(page: ReviewPage, analysis: Analysis, comparison: Comparison) -> None:
    if analysis.finished:
        prefix = _file_url_prefix(page.stage)  # one reverse() for every finding's link
        page.risk = risk_view(
            review_risk.stage_findings(analysis, comparison.release_findings),
            ran=analysis.risk_findings is not None,
            link=lambda path, line: (
                prefix + quote(path, safe="/") + page.query + (f"#L{line}" if line else "")
            ),
        )
    page.findings = [
        {
            **finding,
            "path_html": _marked(finding.get("path", "")),
            "detail_html": _marked(finding.get("detail", "")),
        }
        for finding in analysis.findings
    ]


def partial(request: HttpRequest, page: ReviewPage) -> HttpResponse | None:
    """The fragment an htmx request targets, or None for the whole page."""
    target = request.headers.get("HX-Target", "")
    response: HttpResponse | None = None
    ctx = {"review": page, "stage": page.stage}
    if (target == "diff" or page.all_files) and page.pane is not None:
        response = render(request, "reviews/review/_file.html", ctx)
    elif target == "tree":
        response = render(request, "reviews/review/_tree.html", ctx)
    elif target == "review-pending":
        if page.comparison.state in ("waiting", "queued"):
            response = render(request, "reviews/review/_pending.html", {"review": page})
        else:
            response = HttpResponse(headers={"HX-Refresh": "true"})
    if response is not None:
        patch_vary_headers(response, ["HX-Request", "HX-Target"])
    return response


def _count_viewed(page: ReviewPage, analysis: Analysis, user: object) -> None:
    """The person's viewed ticks that still hold, and "12 of 40 changed files viewed"."""
    page.viewed = discussion.viewed_paths(
        page.stage, user if isinstance(user, User) else None, analysis
    )
    page.changed_files = (
        analysis.files_added + analysis.files_removed + analysis.files_modified
    ) + analysis.files_renamed
    if page.viewed:
        page.viewed_changed = (
            FileChangeRow.objects.filter(analysis=analysis, path__in=list(page.viewed))
            .exclude(status="unchanged")
            .count()
        )


ALL_FILES_MAX = 500


@dataclass(frozen=True)
class ListedFile:
    path: str
    status: str
    url: str
    anchor: str
    viewed: bool
    lines_added: int | None
    lines_removed: int | None
    size: int | None = None
    old_size: int | None = None
    findings: int = 0
    worst: str = ""

    @property
    def size_text(self) -> str:
        """`4.1 KiB`, `1.2 KiB → 4.1 KiB`, or the one side a file added or removed has."""
        sizes = [format_size(n) for n in (self.old_size, self.size) if n is not None]
        if self.status in ("modified", "renamed") and len(sizes) == 2:
            return f"{sizes[0]} → {sizes[1]}"
        return sizes[-1] if sizes else ""


def changed_files(page: ReviewPage) -> tuple[list[ListedFile], bool]:
    """The analysis' changed files for the all-files page (the first ALL_FILES_MAX), each
    with its viewed tick; and whether there are more."""
    if page.analysis is None:
        return [], False
    marks = tree_marks(review_risk.findings_of(page.analysis.risk_findings))
    rows = (
        FileChangeRow.objects.filter(analysis=page.analysis)
        .exclude(status="unchanged")
        .order_by("ordinal")
        .values_list("path", "status", "lines_added", "lines_removed", "size", "old_size")[
            : ALL_FILES_MAX + 1
        ]
    )
    found = [
        ListedFile(
            path,
            status,
            file_url(page.stage, path, page.query),
            discussion.file_anchor(path),
            path in page.viewed,
            added,
            removed,
            size,
            old_size,
            *marks.get(path, (0, "")),
        )
        for path, status, added, removed, size, old_size in rows
    ]
    return found[:ALL_FILES_MAX], len(found) > ALL_FILES_MAX


def _layout(request: HttpRequest) -> str:
    return _remembered(request, "layout", LAYOUT_SESSION_KEY, LAYOUTS, "unified")


def _remembered(
    request: HttpRequest, name: str, session_key: str, choices: dict[str, str], default: str
) -> str:
    """`?name=…` when it is one of `choices` (and remembered in the session for next time),
    else the remembered choice, else `default`."""
    asked = request.GET.get(name)
    if asked in choices:
        if request.session.get(session_key) != asked:
            request.session[session_key] = asked
        return asked
    remembered = request.session.get(session_key)
    return remembered if isinstance(remembered, str) and remembered in choices else default


def _fill_tree(page: ReviewPage, analysis: Analysis) -> None:
    marks = tree_marks(review_risk.findings_of(analysis.risk_findings))
    rows = FileChangeRow.objects.filter(analysis=analysis)
    if page.changed_only:
        rows = rows.exclude(status="unchanged")
    if page.filter_text:
        rows = rows.filter(path__icontains=page.filter_text)
    if page.with_findings:
        rows = rows.filter(path__in=list(marks))
    limit = review_analysis.diff_options().limits.max_side_bytes
    files = [
        TreeFile(
            path=path,
            status=status,
            size=size,
            old_size=old_size,
            old_path=old_path,
            is_binary=is_binary,
            oversized=oversized,
            huge=max(size or 0, old_size or 0) > limit,
            lines_added=lines_added,
            lines_removed=lines_removed,
            findings=marks.get(path, (0, ""))[0],
            worst=marks.get(path, (0, ""))[1],
            viewed=path in page.viewed,
        )
        for (
            path,
            status,
            size,
            old_size,
            old_path,
            is_binary,
            oversized,
            lines_added,
            lines_removed,
        ) in rows.order_by("ordinal").values_list(*_TREE_FIELDS)[: TREE_MAX_FILES + 1]
    ]
    page.tree_more = len(files) > TREE_MAX_FILES
    files = files[:TREE_MAX_FILES]
    page.tree_shown = len(files)
    base = _file_url_prefix(page.stage)
    tree = render_tree(
        files, lambda path: base + quote(path, safe="/") + page.query, current=page.path
    )
    page.tree_html = mark_safe(tree)  # noqa: S308 (render_tree escapes every name)


def file_pane(page: ReviewPage, analysis: Analysis, row: FileChangeRow) -> FilePane:
    url = file_url(page.stage, row.path, page.query)
    joiner = "&" if "?" in url else "?"
    links = [
        (f"{url}{joiner}layout={layout}", label, layout == page.layout)
        for layout, label in LAYOUTS.items()
    ]
    wrap_links = [
        (f"{url}{joiner}wrap={wrap}", label, wrap == page.wrap) for wrap, label in WRAPS.items()
    ]
    context_url = (
        reverse("reviews:stage-file-context", args=[page.stage.stage_id, "-"])[:-1]
        + quote(row.path, safe="/")
        + (page.query or "?")
    )
    hooks = CommentHooks(page, row, url)
    # only this file's findings are read: a release can carry thousands
    here = [
        item
        for item in analysis.risk_findings or ()
        if isinstance(item, Mapping) and str(item.get("path", "")) == row.path
    ]
    marks = file_marks(review_risk.findings_of(here), row.path)
    try:
        html = fill(_linked_table(analysis, row, page, marks, hooks, context_url), hooks)
    except review_analysis.FileUnavailable as e:
        html = f'<p class="gr-notice">{escape_and_mark(str(e))}</p>'
    pane = FilePane(row, page.layout, mark_safe(html), links, context_url)  # noqa: S308
    pane.wrap_links = wrap_links
    pane.viewed = row.path in page.viewed
    pane.other_threads = hooks.not_drawn()
    return pane


def _linked_table(
    analysis: Analysis,
    row: FileChangeRow,
    page: ReviewPage,
    marks: dict[int, str],
    hooks: CommentHooks,
    context_url: str,
) -> Table:
    """The file's table with its line numbers filled and its hidden lines expandable: the same
    for every request showing the file with the same links (its URL and query, whether one may
    comment; never who asks), so cached by them. Only the rows under lines (threads, the comment
    form) are left for each request to fill."""
    options = review_analysis.diff_options()
    shared = hashlib.sha256(f"{hooks.links_key}\n{context_url}".encode()).hexdigest()
    key = f"{review_analysis.file_table_key(row, options, page.layout, marks)}:links:{shared}"
    cached = cache.get(key)
    if isinstance(cached, Table):
        return cached
    table = review_analysis.file_table(analysis, row, options, page.layout, marks)
    table = fill_numbers(table, hooks.number)
    if page.layout != "file":
        # a gap row lies whole inside one text (the holes are in number cells and after rows)
        texts = tuple(_expandable(text, context_url, page.layout) for text in table.texts)
        table = Table(texts, table.holes, table.colspan)
    cache.set(key, table, settings.GREENROOM_DIFF_CACHE_SECONDS)
    return table


class CommentHooks:
    """Line numbers that open a comment form, and each line's threads drawn under it."""

    def __init__(self, page: ReviewPage, row: FileChangeRow, url: str) -> None:
        self.page = page
        self.row = row
        self.url = url + ("&" if "?" in url else "?")
        # A big diff has thousands of line numbers: each link is the same text around its
        # number, built and escaped once per side (the number needs no escaping).
        comment_url = escape(f"{self.url}comment=")
        push = "" if page.all_files else ' hx-push-url="true"'
        self.link_parts: dict[str, tuple[str, str, str]] = {
            side: (
                f'<a class="gr-ln-link" href="{comment_url}{side}-',
                f'#new-comment" hx-get="{comment_url}{side}-',
                f'" hx-target="closest .review-pane"{push} title="Comment on {label} line ',
            )
            for side, label in ((OLD, "baseline"), (NEW, "staged"))
        }
        # what decides every line number's text, for the tables cached with them filled
        self.links_key = repr(sorted(self.link_parts.items())) if page.may_comment else "plain"
        self.threads = discussion.mark_outdated(
            discussion.threads(page.stage, row.path), page.analysis
        )
        self.placed: dict[tuple[str, int], list[discussion.Thread]] = {}
        for thread in self.threads:
            if not thread.outdated:
                key = (thread.root.side, thread.root.line)
                self.placed.setdefault(key, []).append(thread)
        self.drawn: set[int] = set()
        # the only lines that may have rows under them; every other row is passed quickly
        self.lines_with_rows: set[tuple[str, int | None]] = set(self.placed)
        if page.comment_at is not None:
            self.lines_with_rows.add(page.comment_at)

    def number(self, side: str, number: int) -> str:
        if not self.page.may_comment:
            return str(number)
        before, middle, after = self.link_parts[side]
        text = str(number)
        return f'{before}{text}{middle}{text}{after}{text}">{text}</a>'

    def after(self, old_no: int | None, new_no: int | None, colspan: int) -> str:
        if (OLD, old_no) not in self.lines_with_rows and (NEW, new_no) not in self.lines_with_rows:
            return ""
        parts = []
        for side, number in ((OLD, old_no), (NEW, new_no)):
            if number is None:
                continue
            for thread in self.placed.get((side, number), []):
                if thread.root.pk not in self.drawn:
                    self.drawn.add(thread.root.pk)
                    parts.append(self._row("reviews/review/_thread.html", colspan, thread=thread))
            if self.page.comment_at == (side, number):
                self.page.comment_at = None  # one form, under the first row showing the line
                parts.append(
                    self._row(
                        "reviews/review/_comment_form.html",
                        colspan,
                        side=side,
                        line=number,
                        side_label="baseline" if side == OLD else "staged",
                    )
                )
        return "".join(parts)

    def _row(self, template: str, colspan: int, **ctx: Any) -> str:
        inner = render_to_string(
            template,
            {
                "review": self.page,
                "stage": self.page.stage,
                "row": self.row,
                "where": "file",
                "may_comment": self.page.may_comment,
                "against": self.page.comparison.against or "",
                **ctx,
            },
            request=self.page.request,
        )
        return f'<tr class="gr-comment-row"><td colspan="{colspan}">{inner}</td></tr>'

    def not_drawn(self) -> list[discussion.Thread]:
        """Threads of this file not drawn on a line: outdated, or on lines the diff hides."""
        return [thread for thread in self.threads if thread.root.pk not in self.drawn]


def _expandable(html: str, context_url: str, layout: str) -> str:
    """Hidden unchanged lines become rows that load themselves when clicked (htmx)."""
    joiner = "" if context_url.endswith("?") else "&"

    def attrs(match: re.Match[str]) -> str:
        url = f"{context_url}{joiner}gap={match.group(1)}&layout={layout}"
        return (
            f'{match.group(0)} hx-get="{escape(url)}" hx-trigger="click" hx-swap="outerHTML" '
            'title="Show these unchanged lines"'
        )

    return _GAP_ROW.sub(attrs, html)


def manifest_groups(data: dict[str, Any]) -> tuple[list[dict[str, Any]], list[SafeString]]:
    """The package.json diff in the order a reviewer reads it: install hooks first."""
    scripts = data.get("scripts", [])
    fields = data.get("fields", [])
    groups = [
        ("Install-time scripts", [c for c in scripts if c.get("hook")], True),
        ("Other scripts", [c for c in scripts if not c.get("hook")], False),
        ("Dependencies", data.get("dependencies", []), False),
        ("bin", data.get("bin", []), False),
        (
            "Entry points",
            [c for c in fields if c.get("key") in ("main", "module", "exports", "type", "browser")],
            False,
        ),
        ("files", [c for c in fields if c.get("key") == "files"], False),
        ("engines", data.get("engines", []), False),
        ("os / cpu", [c for c in fields if c.get("key") in ("os", "cpu")], False),
    ]
    shown = [
        {
            "title": title,
            "alert": alert,
            "changes": [
                {
                    "section": change.get("section", ""),
                    "key": _marked(change.get("key")),
                    "status": change.get("status", ""),
                    "old": _marked(change.get("old")),
                    "new": _marked(change.get("new")),
                    "implicit": bool(change.get("implicit")),
                }
                for change in changes
            ],
        }
        for title, changes, alert in groups
        if changes
    ]
    return shown, [_marked(problem) for problem in data.get("problems", [])]


def _marked(value: object) -> SafeString:
    if value is None:
        return SafeString()
    return mark_safe(escape_and_mark(str(value)))  # noqa: S308 (escaped here)


def file_url(stage: StagedVersion, path: str, query: str = "") -> str:
    return _file_url_prefix(stage) + quote(path, safe="/") + query


def _file_url_prefix(stage: StagedVersion) -> str:
    return reverse("reviews:stage-file", args=[stage.stage_id, "-"])[:-1]


# -- Endpoints besides the page -------------------------------------------------------------------


@login_required
@require_GET
def file_context(request: HttpRequest, stage_id: UUID, path: str) -> HttpResponse:
    """The unchanged lines of one gap of a file's diff, as table rows to swap in (htmx)."""
    stage = get_visible_stage(request.user, stage_id)
    comparison = compare_with(stage, request.GET.get("against") or None)
    analysis = comparison.analysis
    if not comparison.ready or analysis is None:
        raise Http404("This review is not ready")
    row = FileChangeRow.objects.filter(analysis=analysis, path=path).first()
    gap = request.GET.get("gap", "")
    if row is None or not gap.isdigit() or len(gap) > 9:
        raise Http404("No such file or gap")
    try:
        html = review_analysis.context_rows(
            analysis,
            row,
            int(gap),
            review_analysis.diff_options(),
            side_by_side=request.GET.get("layout") == "split",
        )
    except (LookupError, review_analysis.FileUnavailable):
        raise Http404("No such gap") from None
    return HttpResponse(html)


@login_required
@require_GET
def download_tarball(request: HttpRequest, stage_id: UUID) -> FileResponse:
    """The staged tarball as downloaded and stored, for inspection offline."""
    stage = get_visible_stage(request.user, stage_id)
    tarball = stage.tarball
    if tarball is None:
        raise Http404("The tarball has not been downloaded")
    name = stage.package_name.lstrip("@").replace("/", "-")
    response = FileResponse(
        open_stored(tarball),  # streamed, from the folder or the bucket
        as_attachment=True,
        filename=f"{name}-{stage.version}.tgz",
        content_type="application/gzip",
    )
    response["Content-Length"] = str(tarball.size)
    response["X-Content-Type-Options"] = "nosniff"
    return response


@login_required
@require_POST
def compare(request: HttpRequest, stage_id: UUID) -> HttpResponseRedirect:
    """Compare with another published version: queue its analysis if needed, then show it."""
    stage = get_visible_stage(request.user, stage_id)
    version = request.POST.get("against", "")
    url = reverse("reviews:stage", args=[stage.stage_id])
    chosen = review_analysis.current_baseline(stage)
    if version and chosen is not None and version == chosen.version:
        return HttpResponseRedirect(url, status=303)
    try:
        needed = review_analysis.request_comparison(stage, version)
    except ValueError:
        raise Http404("Not a published version of this package") from None
    if needed:
        analyse_stage_task.delay_on_commit(stage.pk, version)
    return HttpResponseRedirect(f"{url}?{urlencode({'against': version})}", status=303)


@login_required
@require_POST
def analyse(request: HttpRequest, stage_id: UUID) -> HttpResponseRedirect:
    """Queue the stage's analysis against its default baseline (idempotent: a claimed or
    finished analysis is found as it is). Anyone who sees the stage may ask."""
    stage = get_visible_stage(request.user, stage_id)
    if stage.tarball_id is not None and not review_analysis.is_queued(stage.pk):
        review_analysis.mark_queued([stage.pk])
        analyse_stage_task.delay_on_commit(stage.pk)
    return HttpResponseRedirect(reverse("reviews:stage", args=[stage.stage_id]), status=303)


def may_recheck(request: HttpRequest, stage: StagedVersion) -> bool:
    """Whether the stage page offers "Check the tarball again" to this person."""
    if stage.state != StagedVersion.State.PENDING or stage.integrity not in sync.RECHECKABLE:
        return False
    role = role_for_package(request.user, stage.package_name)
    return role is not None and role >= Role.APPROVER


@login_required
@require_POST
def recheck_tarball(request: HttpRequest, stage_id: UUID) -> HttpResponseRedirect:
    """An approver asks for an unavailable or mismatching tarball to be downloaded and checked
    again (audited): due at once, and queued on commit."""
    stage = get_visible_stage(request.user, stage_id)
    require_stage_role(request.user, stage, Role.APPROVER)
    if sync.request_recheck(stage.pk, Actor.from_request(request)):
        download_stage_tarball_task.delay_on_commit(stage.pk)
        messages.success(request, "The tarball will be downloaded and checked again shortly.")
    else:
        messages.info(
            request, "Nothing to check again: a check is already due, or the verdict changed."
        )
    return HttpResponseRedirect(reverse("reviews:stage", args=[stage.stage_id]), status=303)
