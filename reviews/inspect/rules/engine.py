"""Run every rule on a (baseline, staged) pair and say, for each finding, whether it is new.

`scan_pair()` looks at the added and changed files of the staged side (unchanged files are not
read: whatever they hold was already there), then at the baseline side of the changed files that
had findings (read only then, and only those), and gives each finding its status: *existing*
when the same rule matched the same code (`Finding.key`) in the baseline file, *changed* when
the rule matched that file but not this code, *new* otherwise. Package-level rules
(package.json, shape, archive anomalies) compare the two sides themselves.

It is bounded: a per-file byte cap for reading and a lower one for parsing, a parse budget
for the whole pair (in bytes, so the same pair always gets the same findings) and a time
budget. The parse is what costs (tree-sitter reads real code at 8 to 10 MB/s); when a release
holds more code to parse than the budget, new files go first, then the smaller changed ones,
and the files left get the rules that need no parser, plus a `scan.not-scanned` finding: what
is skipped is never silent.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace

import tree_sitter

from reviews.inspect.archive import FileEntry, format_size
from reviews.inspect.changes import ChangeStatus, FileChange
from reviews.inspect.rules import forked, syntax
from reviews.inspect.rules.code import (
    DOWNLOAD_RUN,
    HARDCODED_URL,
    CodeFile,
    code_findings,
    script_findings,
)
from reviews.inspect.rules.content import (
    SECRET,
    TROJAN_SOURCE,
    binary_finding,
    executable_bit_finding,
    hidden_character_findings,
    secret_file_finding,
    secret_findings,
)
from reviews.inspect.rules.findings import Finding, Severity, Status, make, rule
from reviews.inspect.rules.manifest import PackageFacts, package_findings
from reviews.inspect.rules.obfuscation import (
    ENCODED,
    ESCAPED,
    HEX_NAMES,
    became_minified,
    encoded_text_findings,
    minified_outside_build,
    obfuscation_findings,
)
from reviews.inspect.rules.prefilter import Anchors, Kind, find_anchors

__all__ = ["FileScan", "PairScan", "ScanLimits", "scan_file", "scan_pair", "wants_bytes"]

MiB = 1024 * 1024

NOT_SCANNED = rule(
    "scan.not-scanned",
    Severity.LOW,
    "A new or changed file the rules did not read or parse: over the per-file limit, past the "
    "time budget, or its bytes not kept by the analysis.",
)
PARTIAL = rule(
    "scan.partial",
    Severity.INFO,
    "A file with more interesting places than the rules examine; the first ones were.",
)

MAX_NOT_SCANNED_LISTED = 50


@dataclass(frozen=True, slots=True)
class ScanLimits:
    max_read_bytes: int = 16 * MiB
    """Text files up to this size get the byte-level rules (pre-filter, secrets, characters)."""
    max_parse_bytes: int = 2 * MiB
    """Code files up to this size are parsed."""
    parse_budget: int = 3 * MiB
    """Bytes of code parsed for a whole pair, both sides counted (a changed file's baseline
    side is parsed too, for the statuses): what keeps the rules a small share of the
    analysis of a large release."""
    max_binary_bytes: int = 16 * MiB
    """Binary files up to this size are kept for their magic number."""
    helper_share_bytes: int = 256 * 1024
    """A forked helper process scans half the files to parse when its half holds at least this
    much parse work (bytes, minified ones weighted; see `engine._parse_cost`); 0 scans on one
    core. Below it, a fork costs more than it saves."""
    time_budget: float = 60.0
    """Seconds for the whole pair; files left when it runs out are listed as not scanned."""
    max_findings: int = 5_000


DEFAULT_LIMITS = ScanLimits()


@dataclass
class FileScan:
    findings: list[Finding] = field(default_factory=list)
    parsed: bool = False
    tree: tree_sitter.Tree | None = None
    """The syntax tree, when asked to keep it (to parse the other side incrementally)."""


@dataclass(frozen=True)
class Previous:
    """The other side of a changed file, already parsed: its tree is edited into this side's
    (tree-sitter's incremental parsing) instead of parsing this side from scratch."""

    tree: tree_sitter.Tree
    data: bytes


@dataclass
class PairScan:
    findings: list[Finding]
    seconds: float
    files_scanned: int
    files_parsed: int
    files_skipped: int
    helper_cpu_seconds: float = 0.0
    """CPU time of the helper process that scanned part of the files (see `forked`)."""
    helper_files: int = 0
    """How many of the files scanned the helper scanned."""

    @property
    def counts(self) -> dict[str, int]:
        counted = Counter(f.severity.value for f in self.findings if f.counts_for_risk)
        return {s.value: counted.get(s.value, 0) for s in Severity.ordered()}


def wants_bytes(entry: FileEntry, before: FileEntry | None, limits: ScanLimits) -> bool:
    """Whether the analysis should keep a staged file's bytes for the rules: added or changed
    content, within the read limits."""
    if before is not None and before.sha256 == entry.sha256:
        return False
    cap = limits.max_binary_bytes if entry.is_binary else limits.max_read_bytes
    return entry.size <= cap


def scan_file(
    path: str,
    data: bytes,
    entry: FileEntry,
    limits: ScanLimits = DEFAULT_LIMITS,
    *,
    anchors: Anchors | None = None,
    previous: Previous | None = None,
    keep_tree: bool = False,
    parse: bool = True,
    rules: Collection[str] | None = None,
) -> FileScan:
    """Every file-level rule on one side of one file (`anchors`, if the caller has them).
    Without `parse` (past the pair's parse budget), a code file gets only the rules that need
    no parser. With `rules`, only what can give those rule ids is run: the baseline side of a
    changed file, whose other findings would change no status."""
    wanted = _all_rules if rules is None else frozenset(rules).__contains__
    parse = parse and (rules is None or any(map(_from_the_parser, rules)))
    result = FileScan()
    path_finding = secret_file_finding(path, data)
    if path_finding is not None:
        result.findings.append(path_finding)
    if entry.is_binary:
        found = binary_finding(path, data[:4096], True, entry.sha256)
        if found is not None:
            result.findings.append(found)
        return result
    if len(data) > limits.max_read_bytes:
        result.findings.append(_not_scanned(path, f"it is {format_size(len(data))}"))
        return result
    native = binary_finding(path, data[:4096], False, entry.sha256)
    if native is not None:
        result.findings.append(native)
    if anchors is None:
        if not parse and not any(map(wanted, _FROM_ANCHORS)):
            return result
        anchors = find_anchors(data, longest_line=entry.longest_line)
    if not anchors:
        return result
    if anchors.truncated:
        result.findings.append(
            make(PARTIAL, "Only the first interesting places were examined", path=path, key=path)
        )
    language = syntax.language_for(path, data) if parse else None
    if language is not None and anchors.wants_parse:
        if len(data) > limits.max_parse_bytes:
            result.findings.append(
                _not_scanned(
                    path,
                    f"it is {format_size(len(data))}, over the "
                    f"{format_size(limits.max_parse_bytes)} parse limit",
                )
            )
        else:
            if previous is not None:
                tree = syntax.reparse(language, previous.tree, previous.data, data)
            else:
                tree = syntax.parse_tree(language, data)
            code = CodeFile(path, data, tree.root_node, anchors)
            result.findings += code_findings(code)
            result.findings += obfuscation_findings(code)
            result.parsed = True
            result.tree = tree if keep_tree else None
    elif language is None:
        result.findings += encoded_text_findings(data, anchors.of(Kind.ENCODED), path)
        result.findings += script_findings(path, data, anchors.of(Kind.DOWNLOAD))
    if anchors.of(Kind.HIDDEN_CHAR) and wanted(TROJAN_SOURCE.id):
        result.findings += hidden_character_findings(path, data)
    if anchors.of(Kind.SECRET) and wanted(SECRET.id):
        result.findings += secret_findings(path, data, anchors.of(Kind.SECRET))
    return result


_PARSER_RULES = frozenset({ENCODED.id, ESCAPED.id, HEX_NAMES.id, NOT_SCANNED.id})
"""Besides every `code.` rule."""
_FROM_ANCHORS = (PARTIAL.id, TROJAN_SOURCE.id, SECRET.id, ENCODED.id, DOWNLOAD_RUN.id)
"""The rules an unparsed file needs the pre-filter's anchors for."""


def _all_rules(_rule_id: str) -> bool:
    return True


def _from_the_parser(rule_id: str) -> bool:
    """Rules found by parsing (or, for `scan.not-scanned`, by the parse limit)."""
    return rule_id.startswith("code.") or rule_id in _PARSER_RULES


def scan_pair(
    changes: Sequence[FileChange],
    new_contents: Mapping[str, bytes],
    read_baseline: Callable[[Collection[str]], Mapping[str, bytes]],
    package: PackageFacts,
    limits: ScanLimits = DEFAULT_LIMITS,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> PairScan:
    """Every rule on a pair; `read_baseline(paths)` gives baseline bytes of changed files
    (asked once, after the staged side, for the changed files that had findings; and, when a
    helper process takes a share of the files, once before for that share's changed files)."""
    started = clock()
    deadline = started + limits.time_budget
    bins = _bin_targets(package)
    findings: list[Finding] = []
    skipped: list[Finding] = []
    work: list[tuple[FileChange, bytes, Anchors | None]] = []
    for change in changes:
        new = change.new
        if new is None or change.status is ChangeStatus.UNCHANGED:
            continue
        if change.status is ChangeStatus.RENAMED:
            findings += _renamed(change)
            continue
        data = new_contents.get(new.path)
        findings += _shape_findings(change, data, bins)
        if data is None and change.old is not None and not _content_changed(change):
            continue  # only the mode changed: its bytes are the baseline's, nothing to read
        if data is None:
            skipped.append(_not_scanned(new.path, _why_missing(new, limits)))
            continue
        anchors = None
        if not new.is_binary and len(data) <= limits.max_read_bytes:
            anchors = find_anchors(data, longest_line=new.longest_line)
        work.append((change, data, anchors))

    unparsed = _past_the_parse_budget(work, limits)
    jobs = [
        _Job(change, data, anchors, _path(change) not in unparsed) for change, data, anchors in work
    ]
    scanning = _Scanning(read_baseline, limits, deadline, clock)
    done, helper_cpu = _scan_jobs_on_two_cores(jobs, scanning)
    scanned = parsed = by_helper = 0
    for outcome in done:
        findings += outcome.findings
        skipped += outcome.skipped
        scanned += outcome.scanned
        parsed += outcome.parsed
        by_helper += outcome.scanned and outcome.by_helper

    findings += package_findings(package)
    findings += _summarised(skipped)
    findings = list({(f.rule, f.path, f.line, f.key, f.status): f for f in findings}.values())
    findings.sort(key=_order)
    return PairScan(
        findings[: limits.max_findings],
        seconds=clock() - started,
        files_scanned=scanned,
        files_parsed=parsed,
        files_skipped=len(skipped),
        helper_cpu_seconds=helper_cpu,
        helper_files=by_helper,
    )


@dataclass(frozen=True)
class _Job:
    """One added or changed file to scan: its staged bytes, with the pre-filter's anchors."""

    change: FileChange
    data: bytes
    anchors: Anchors | None
    parse: bool
    """False past the pair's parse budget."""

    @property
    def new(self) -> FileEntry:
        assert self.change.new is not None
        return self.change.new

    @property
    def modified(self) -> bool:
        return self.change.old is not None and self.change.status is not ChangeStatus.ADDED

    @property
    def reads_baseline(self) -> bool:
        """Whether its baseline bytes are needed if it has findings: a changed text file
        (without anchors, only what the path says can be compared)."""
        return self.modified and _content_changed(self.change) and bool(self.anchors)


@dataclass
class _Outcome:
    findings: list[Finding] = field(default_factory=list)
    skipped: list[Finding] = field(default_factory=list)
    scanned: bool = False
    parsed: bool = False
    by_helper: bool = False


@dataclass(frozen=True)
class _Scanning:
    """What the scans of one pair's files share."""

    read_baseline: Callable[[Collection[str]], Mapping[str, bytes]]
    limits: ScanLimits
    deadline: float
    clock: Callable[[], float]

    def reading_from(self, contents: Mapping[str, bytes]) -> _Scanning:
        """The same, with the baseline's bytes read from `contents` only."""

        def known(paths: Collection[str]) -> Mapping[str, bytes]:
            return {path: contents[path] for path in paths if path in contents}

        return replace(self, read_baseline=known)


def _scan_jobs(jobs: Sequence[_Job], scanning: _Scanning) -> list[_Outcome]:
    """Each job's findings with their statuses: the staged sides first, then the baseline
    side, read once, of the changed files that had findings."""
    limits, clock = scanning.limits, scanning.clock
    outcomes = [_Outcome() for _job in jobs]
    compare: list[tuple[_Job, _Outcome, FileScan]] = []
    for job, outcome in zip(jobs, outcomes, strict=True):
        path = job.new.path
        if clock() > scanning.deadline:
            outcome.skipped.append(_not_scanned(path, "the time budget for this release ran out"))
            continue
        if not job.parse:
            outcome.skipped.append(
                _not_scanned(path, _PAST_BUDGET.format(limits.parse_budget / MiB))
            )
        result = scan_file(
            path,
            job.data,
            job.new,
            limits,
            anchors=job.anchors,
            keep_tree=job.modified,
            parse=job.parse,
        )
        outcome.scanned, outcome.parsed = True, result.parsed
        if not job.modified:
            outcome.findings += result.findings
        elif not _content_changed(job.change):  # only the mode changed
            outcome.findings += [f.with_status(Status.EXISTING) for f in result.findings]
        elif result.findings:
            compare.append((job, outcome, result))
            continue  # its tree is kept for the baseline side (the parse budget bounds them)
        result.tree = None
    wanted = [_old_path(job) for job, _outcome, _result in compare if job.reads_baseline]
    # Read even past the time budget: these files were scanned, their statuses must be right.
    baseline = scanning.read_baseline(wanted) if wanted else {}
    for job, outcome, result in compare:
        before = _baseline_findings(
            job.change, result, job.data, baseline.get(_old_path(job)), limits, parse=job.parse
        )
        outcome.findings += assign_statuses(result.findings, before)
        result.tree = None
    return outcomes


def _path(change: FileChange) -> str:
    assert change.new is not None
    return change.new.path


def _old_path(job: _Job) -> str:
    assert job.change.old is not None
    return job.change.old.path


def _scan_jobs_on_two_cores(
    jobs: Sequence[_Job], scanning: _Scanning
) -> tuple[list[_Outcome], float]:
    """`_scan_jobs`, with the files to parse shared between this process and a forked helper
    when the helper's share is worth a fork (`ScanLimits.helper_share_bytes`); the outcomes in
    the jobs' order (the findings do not depend on who scanned what), and the helper's CPU
    seconds. The helper's baseline bytes are read here, before the fork: it must not touch
    files this process has open."""
    theirs = _helper_share(jobs, scanning.limits)
    if not theirs:
        return _scan_jobs(jobs, scanning), 0.0
    their_jobs = [jobs[index] for index in theirs]
    taken = set(theirs)
    my_jobs = [job for index, job in enumerate(jobs) if index not in taken]
    their_baseline = scanning.read_baseline(
        [_old_path(job) for job in their_jobs if job.reads_baseline]
    )
    try:
        helper = forked.start(lambda: _scan_jobs(their_jobs, scanning.reading_from(their_baseline)))
    except OSError:  # no fork to be had (process limit, memory): one core it is
        return _scan_jobs(jobs, scanning), 0.0
    with helper:  # stopped if this process gives up on it (an exception, a time limit)
        mine = _scan_jobs(my_jobs, scanning)
        left = max(scanning.deadline - scanning.clock(), 0.0)
        try:
            theirs_done = helper.result(timeout=left + HELPER_GRACE_SECONDS)
            for outcome in theirs_done:
                outcome.by_helper = True
        except forked.HelperError:
            # a bug, not the input: the same call here raises it where it can be seen
            theirs_done = _scan_jobs(their_jobs, scanning)
        except forked.HelperStopped as stopped:
            # never run again here what may have killed it (a parser crash on a hostile file)
            theirs_done = [_stopped(job, str(stopped)) for job in their_jobs]
    by_index = dict(zip(theirs, theirs_done, strict=True))
    mine_left = iter(mine)
    outcomes = [by_index[i] if i in by_index else next(mine_left) for i in range(len(jobs))]
    return outcomes, helper.cpu_seconds


HELPER_GRACE_SECONDS = 30.0
"""How long past the time budget the helper may take before it is stopped (it also stops
scanning at the budget, but a file it started is finished)."""


def _stopped(job: _Job, why: str) -> _Outcome:
    return _Outcome(
        skipped=[_not_scanned(job.new.path, f"the helper process scanning it ended: {why}")]
    )


def _helper_share(jobs: Sequence[_Job], limits: ScanLimits) -> list[int]:
    """The indexes of the jobs a helper process should take: half the parse work, the largest
    files shared out first (each to the lighter side), when a helper is allowed and its half
    is worth a fork. Files that are not parsed cost little and stay here."""
    if limits.helper_share_bytes <= 0 or not forked.can_fork():
        return []
    costs = sorted(
        ((_parse_cost(job), index) for index, job in enumerate(jobs) if _parses(job, limits)),
        reverse=True,
    )
    mine = theirs = 0
    share: list[int] = []
    for cost, index in costs:
        if theirs < mine:
            theirs += cost
            share.append(index)
        else:
            mine += cost
    return sorted(share) if theirs >= limits.helper_share_bytes else []


def _parses(job: _Job, limits: ScanLimits) -> bool:
    return job.parse and _wants_a_parse(job.new.path, job.data, job.anchors, limits)


def _wants_a_parse(path: str, data: bytes, anchors: Anchors | None, limits: ScanLimits) -> bool:
    """Whether the rules would parse this file: code, within the parse limit, with an anchor
    that needs its syntax."""
    return (
        anchors is not None
        and anchors.wants_parse
        and len(data) <= limits.max_parse_bytes
        and syntax.language_for(path, data) is not None
    )


MINIFIED_LINE = 1000
"""A longest line past this marks a minified file, which tree-sitter reads about five times
slower per byte than commented source (lodash.min.js: 30 ms for 73 kB; lodash.js: 60 ms for
544 kB)."""


def _parse_cost(job: _Job) -> int:
    """About what a job's parsing costs, in bytes of commented source: a minified file counts
    five times its size; a changed file's baseline side half its size more (it is parsed
    incrementally from the staged tree), or five times for a minified one (renamed
    identifiers everywhere: parsed afresh, see `syntax.reparse`)."""
    cost = len(job.data) * (5 if _minified(job.new) else 1)
    old = job.change.old
    if job.reads_baseline and old is not None:
        cost += old.size * 5 if _minified(old) else old.size // 2
    return cost


def _minified(entry: FileEntry) -> bool:
    return (entry.longest_line or 0) > MINIFIED_LINE


_PAST_BUDGET = (
    "not parsed: the release holds more code to parse than its {:.0f} MB budget, which went "
    "to new files, then smaller changed ones (the rules that need no parser did run)"
)


def _past_the_parse_budget(
    work: Sequence[tuple[FileChange, bytes, Anchors | None]], limits: ScanLimits
) -> set[str]:
    """The staged paths of the code files that would be parsed but do not fit the pair's
    parse budget. Added files come first (all their code is new), then changed files, each
    smallest first: the files left out are the largest, usually generated bundles."""
    wanting: list[tuple[bool, int, str]] = []
    for change, data, anchors in work:
        new = change.new
        assert new is not None
        if not _wants_a_parse(new.path, data, anchors, limits):
            continue
        both_sides = change.old is not None and _content_changed(change)
        cost = len(data) + (change.old.size if both_sides and change.old else 0)
        wanting.append((change.status is not ChangeStatus.ADDED, cost, new.path))
    left_out: set[str] = set()
    spent = 0
    for _changed, cost, path in sorted(wanting):
        if spent + cost <= limits.parse_budget:
            spent += cost
        else:
            left_out.add(path)
    return left_out


def _content_changed(change: FileChange) -> bool:
    return bool(change.old and change.new and change.old.sha256 != change.new.sha256)


def _baseline_findings(
    change: FileChange,
    staged: FileScan,
    data: bytes,
    old_bytes: bytes | None,
    limits: ScanLimits,
    *,
    parse: bool,
) -> list[Finding]:
    """The same rules on the baseline side of a changed file, for the statuses. Without its
    bytes (binary, or not read) only what the path and the kind of file say is compared, and
    everything else reads as new."""
    old = change.old
    assert old is not None
    if old.is_binary or old_bytes is None:
        before = binary_finding(old.path, None, True, old.sha256) if old.is_binary else None
        return [f for f in (before, secret_file_finding(old.path, None)) if f is not None]
    previous = Previous(staged.tree, data) if staged.tree is not None else None
    rules = {finding.rule for finding in staged.findings} - {HARDCODED_URL.id}
    found = scan_file(
        old.path, old_bytes, old, limits, previous=previous, parse=parse, rules=rules
    ).findings
    return found + _urls_in_the_text(staged.findings, old_bytes)


def _urls_in_the_text(staged: Sequence[Finding], old_bytes: bytes) -> list[Finding]:
    """The staged side's URLs (info) that the baseline's bytes hold, as its findings: a URL's
    status comes from the text, so a file whose only parsed findings are URLs (a bundle full
    of them: react-dom's 1 MB development build) is not parsed a second time for them. Written
    otherwise in the baseline (escaped, say), a URL reads as new."""
    return [
        finding
        for finding in staged
        if finding.rule == HARDCODED_URL.id and finding.key.encode() in old_bytes
    ]


def assign_statuses(staged: Sequence[Finding], baseline: Sequence[Finding]) -> list[Finding]:
    """Existing when the same rule matched the same code in the baseline (each baseline match
    is used once), changed when the rule matched something else there, new otherwise. Without
    the baseline's bytes, `baseline` holds only its path findings: the rest read as new."""
    remaining = Counter((f.rule, f.key) for f in baseline)
    rules = {f.rule for f in baseline}
    out: list[Finding] = []
    for finding in staged:
        if remaining[(finding.rule, finding.key)] > 0:
            remaining[(finding.rule, finding.key)] -= 1
            out.append(finding.with_status(Status.EXISTING))
        elif finding.rule in rules:
            out.append(finding.with_status(Status.CHANGED))
        else:
            out.append(finding.with_status(Status.NEW))
    return out


def _renamed(change: FileChange) -> list[Finding]:
    """Same bytes under a new path: only what the name says can be news."""
    assert change.new is not None
    assert change.old is not None
    staged = secret_file_finding(change.new.path, None)
    if staged is None:
        return []
    before = secret_file_finding(change.old.path, None)
    return assign_statuses([staged], [before] if before else [])


def _shape_findings(change: FileChange, data: bytes | None, bins: set[str]) -> list[Finding]:
    """Rules on what the index says about a file: executable bits and line lengths."""
    new, old = change.new, change.old
    assert new is not None
    found: list[Finding] = []
    if change.became_executable:
        found.append(
            executable_bit_finding(new.path, new.mode, old.mode if old else None, new.path in bins)
        )
    if change.status is ChangeStatus.ADDED and not new.is_binary:
        minified = minified_outside_build(new.path, new.longest_line, new.line_count, new.size)
        if minified is not None:
            found.append(minified)
    if old is not None and not new.is_binary and not old.is_binary:
        shape = became_minified(new.path, data, old.longest_line, new.longest_line)
        if shape is not None:
            found.append(shape)
    return found


def _bin_targets(package: PackageFacts) -> set[str]:
    value = package.new_manifest.get("bin")
    values = [value] if isinstance(value, str) else list((value or {}).values())
    if not isinstance(value, str | dict):
        values = []
    return {v.strip().removeprefix("./") for v in values if isinstance(v, str)}


def _why_missing(entry: FileEntry, limits: ScanLimits) -> str:
    if entry.oversized:
        return f"it is {format_size(entry.size)}, over the analysis' limit for one file"
    cap = limits.max_binary_bytes if entry.is_binary else limits.max_read_bytes
    if entry.size > cap:
        return f"it is {format_size(entry.size)}, over the {format_size(cap)} read limit"
    return "the analysis ran out of memory budget before keeping its bytes"


def _not_scanned(path: str, why: str) -> Finding:
    return make(NOT_SCANNED, f"Not scanned: {why}", path=path, key=path)


def _summarised(skipped: list[Finding]) -> list[Finding]:
    if len(skipped) <= MAX_NOT_SCANNED_LISTED:
        return skipped
    rest = len(skipped) - MAX_NOT_SCANNED_LISTED
    summary = make(
        NOT_SCANNED,
        f"Not scanned: {rest:,} more files (time budget or size limits)",
        key="not-scanned:more",
    )
    return [*skipped[:MAX_NOT_SCANNED_LISTED], summary]


_STATUS_ORDER = {Status.NEW: 0, Status.CHANGED: 1, Status.EXISTING: 2}


def _order(finding: Finding) -> tuple[int, int, str, int]:
    return (
        -finding.severity.rank,
        _STATUS_ORDER[finding.status],
        finding.path,
        finding.line or 0,
    )
