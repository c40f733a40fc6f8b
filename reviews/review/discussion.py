"""Team review on a stage: verdicts, line comments with threads, and files viewed.

One function per change (`submit_review`, `add_comment`, `reply`, `set_resolved`): each writes
the row, its audit entry and its notification event (the outbox) in one transaction. Ticking a
file as viewed is a person's own bookmark, not a fact about the stage: it is stored, not
audited.

A review is tied to the tarball it was given on (the stage's shasum) and remembers the baseline
it was compared with, so it can say "reviewed against 1.2.0" once the baseline changes. A line
comment remembers the digest of the side it was written on: where the file differs now, its
thread is listed as outdated instead of being drawn on a line that says something else.

Texts are plain: escaped, line breaks kept, web addresses made links (`render_text`), and bidi
or invisible characters shown as `[U+…]` markers, as file names are.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.html import linebreaks, urlize
from django.utils.safestring import SafeString, mark_safe

from reviews.audit import trail as audit
from reviews.audit.trail import Action, Actor
from reviews.inspect.textcheck import category_of, escape_and_mark
from reviews.models import (
    Analysis,
    FileChangeRow,
    FileViewed,
    LineComment,
    NotificationEvent,
    Review,
    StageBaseline,
    StagedVersion,
)

MAX_TEXT = 10_000
Verdict = Review.Verdict
Side = LineComment.Side
EventKind = NotificationEvent.Kind


class DiscussionError(Exception):
    """A review or comment we refuse; the message says why, in words for the person."""


# -- Texts ----------------------------------------------------------------------------------------


def visible(text: str) -> str:
    """Bidi, invisible and control characters (but line breaks) as `[U+…]` markers."""
    return "".join(f"[U+{ord(c):04X}]" if c not in "\n\t" and category_of(c) else c for c in text)


def render_text(text: str) -> SafeString:
    """A review or comment as HTML: escaped, paragraphs and line breaks kept, web addresses
    as links that open nothing of ours (rel=nofollow noopener)."""
    linked = urlize(visible(text), nofollow=True, autoescape=True)
    html = linebreaks(linked, autoescape=False).replace('rel="nofollow"', 'rel="nofollow noopener"')
    return mark_safe(html)  # noqa: S308 (urlize escaped every character of the text)


def clean_text(text: str) -> str:
    text = text.replace("\r\n", "\n").strip()
    if not text:
        raise DiscussionError("Write something first.")
    if len(text) > MAX_TEXT:
        raise DiscussionError(f"Keep it under {MAX_TEXT:,} characters.")
    return text


# -- Reviews --------------------------------------------------------------------------------------


def baseline_version(stage: StagedVersion) -> str:
    """The version the stage is compared with by default now ("" for a first release, or
    while no baseline was chosen)."""
    return (
        StageBaseline.objects.filter(stage=stage, staged_tarball_id=stage.tarball_id)
        .values_list("version", flat=True)
        .first()
        or ""
    )


def submit_review(
    stage: StagedVersion, user: User, verdict: str, text: str, actor: Actor
) -> Review:
    """Record a review; the caller checked the reviewer role. A verdict on a decided stage is
    refused: there is nothing left to approve or change."""
    verdict = Verdict(verdict)
    text = text.replace("\r\n", "\n").strip()
    if len(text) > MAX_TEXT:
        raise DiscussionError(f"Keep the review under {MAX_TEXT:,} characters.")
    if verdict != Verdict.APPROVE and not text:
        raise DiscussionError("Say what needs changing, or what you want to note.")
    if stage.state != StagedVersion.State.PENDING:
        raise DiscussionError(f"This stage is already {stage.get_state_display().lower()}.")
    with transaction.atomic():
        review = Review.objects.create(
            stage=stage,
            author=user,
            author_name=user.get_username(),
            verdict=verdict,
            body=text,
            shasum=stage.shasum,
            tarball_sha256=stage.tarball.sha256 if stage.tarball else "",
            baseline_version=baseline_version(stage),
        )
        audit.record(
            Action.REVIEW_SUBMITTED,
            actor,
            stage=stage,
            payload={
                "review": review.pk,
                "verdict": str(verdict),
                "text": text,
                "tarball_sha256": review.tarball_sha256,
                "baseline": review.baseline_version,
            },
        )
        NotificationEvent.objects.record(EventKind.REVIEW, stage, number=review.pk, review=review)
    return review


@dataclass(frozen=True)
class ReviewRow:
    review: Review
    html: SafeString
    standing: bool  # the author's latest verdict (an earlier one is history)
    against: str  # "reviewed against 1.2.0" when the baseline has changed since ("" if not)
    earlier_tarball: bool


def review_rows(stage: StagedVersion) -> list[ReviewRow]:
    """Every review of the stage, oldest first, each marked whether it still stands."""
    reviews = list(stage.reviews.all())
    standing: dict[int | None, int] = {}
    for review in reviews:
        if review.verdict != Verdict.COMMENT:
            standing[review.author_id] = review.pk
    now = baseline_version(stage)
    return [
        ReviewRow(
            review,
            render_text(review.body),
            standing.get(review.author_id) == review.pk,
            review.baseline_version or "no baseline" if review.baseline_version != now else "",
            review.shasum != stage.shasum,
        )
        for review in reviews
    ]


# -- Line comments --------------------------------------------------------------------------------


def side_digest(row: FileChangeRow, side: str) -> str:
    return row.sha256 if side == Side.NEW else row.old_sha256


def side_lines(row: FileChangeRow, side: str) -> int:
    count = row.line_count if side == Side.NEW else row.old_line_count
    if row.is_binary or not side_digest(row, side):
        return 0
    return count or 0


def add_comment(
    stage: StagedVersion,
    user: User,
    row: FileChangeRow,
    side: str,
    line: int,
    text: str,
    actor: Actor,
    *,
    against: str,
) -> LineComment:
    """Start a thread on one line of one side of a file (`against`: the baseline shown)."""
    if side not in Side.values:
        raise DiscussionError("Choose the baseline or the staged side.")
    if not 1 <= line <= side_lines(row, side):
        raise DiscussionError(f"{row.path} has no line {line} on the {Side(side).label} side.")
    text = clean_text(text)
    with transaction.atomic():
        comment = LineComment.objects.create(
            stage=stage,
            author=user,
            author_name=user.get_username(),
            path=row.path,
            side=side,
            line=line,
            file_sha256=side_digest(row, side),
            baseline_version=against,
            body=text,
        )
        audit.record(
            Action.COMMENT_ADDED,
            actor,
            stage=stage,
            payload={"comment": comment.pk, **_place(comment), "text": text},
        )
        NotificationEvent.objects.record(
            EventKind.COMMENT, stage, number=comment.pk, comment=comment
        )
    return comment


def reply(thread: LineComment, user: User, text: str, actor: Actor) -> LineComment:
    text = clean_text(text)
    stage = thread.stage
    with transaction.atomic():
        answer = LineComment.objects.create(
            stage=stage,
            thread=thread,
            author=user,
            author_name=user.get_username(),
            path=thread.path,
            side=thread.side,
            line=thread.line,
            file_sha256=thread.file_sha256,
            baseline_version=thread.baseline_version,
            body=text,
        )
        audit.record(
            Action.COMMENT_REPLIED,
            actor,
            stage=stage,
            payload={"comment": answer.pk, "thread": thread.pk, **_place(thread), "text": text},
        )
        NotificationEvent.objects.record(EventKind.REPLY, stage, number=answer.pk, comment=answer)
    return answer


def set_resolved(thread: LineComment, user: User, resolved: bool, actor: Actor) -> bool:
    """Resolve or reopen a thread; False if it already was."""
    stage = thread.stage
    with transaction.atomic():
        if resolved:
            changed = LineComment.objects.filter(pk=thread.pk, resolved_at__isnull=True).update(
                resolved_at=timezone.now(), resolved_by=user
            )
        else:
            changed = LineComment.objects.filter(pk=thread.pk, resolved_at__isnull=False).update(
                resolved_at=None, resolved_by=None
            )
        if not changed:
            return False
        entry = audit.record(
            Action.COMMENT_RESOLVED if resolved else Action.COMMENT_UNRESOLVED,
            actor,
            stage=stage,
            payload={"thread": thread.pk, **_place(thread)},
        )
        if resolved:
            NotificationEvent.objects.record(
                EventKind.RESOLVED, stage, number=entry.pk, comment=thread
            )
    thread.refresh_from_db()
    return True


def _place(comment: LineComment) -> dict[str, object]:
    return {"path": comment.path, "side": comment.side, "line": comment.line}


def get_thread(stage: StagedVersion, thread_id: int) -> LineComment | None:
    return LineComment.objects.filter(stage=stage, pk=thread_id, thread__isnull=True).first()


@dataclass
class Thread:
    root: LineComment
    replies: list[LineComment] = field(default_factory=list)
    outdated: bool = False  # the file's side differs from the one it was written on

    @property
    def comments(self) -> list[LineComment]:
        return [self.root, *self.replies]

    @property
    def resolved(self) -> bool:
        return self.root.resolved_at is not None

    @property
    def path_html(self) -> SafeString:
        return mark_safe(escape_and_mark(self.root.path))  # noqa: S308 (escaped here)

    @property
    def entries(self) -> list[tuple[LineComment, SafeString]]:
        """Each comment with its text as HTML, for the templates."""
        return [(comment, render_text(comment.body)) for comment in self.comments]


def threads(stage: StagedVersion, path: str | None = None) -> list[Thread]:
    """The stage's threads (of one file, with `path`), oldest first."""
    comments = LineComment.objects.filter(stage=stage).select_related("resolved_by")
    if path is not None:
        comments = comments.filter(path=path)
    roots: dict[int, Thread] = {}
    replies: defaultdict[int, list[LineComment]] = defaultdict(list)
    for comment in comments.order_by("created_at", "id"):
        if comment.thread_id is None:
            roots[comment.pk] = Thread(comment)
        else:
            replies[comment.thread_id].append(comment)
    for thread_id, found in replies.items():
        if thread_id in roots:
            roots[thread_id].replies = found
    return list(roots.values())


def mark_outdated(found: list[Thread], analysis: Analysis | None) -> list[Thread]:
    """Mark each thread whose side of its file is not, in `analysis`, what it was written on."""
    if analysis is None:
        for thread in found:
            thread.outdated = True
        return found
    paths = {thread.root.path for thread in found}
    rows = {
        row.path: row for row in FileChangeRow.objects.filter(analysis=analysis, path__in=paths)
    }
    for thread in found:
        row = rows.get(thread.root.path)
        thread.outdated = row is None or side_digest(row, thread.root.side) != (
            thread.root.file_sha256
        )
    return found


def unresolved_count(stage: StagedVersion) -> int:
    return LineComment.objects.filter(
        stage=stage, thread__isnull=True, resolved_at__isnull=True
    ).count()


def threads_on_lines(
    stage: StagedVersion, row: FileChangeRow
) -> dict[tuple[str, int], list[Thread]]:
    """The threads drawn in this file's diff, by (side, line): those written on the same
    content of that side."""
    placed: defaultdict[tuple[str, int], list[Thread]] = defaultdict(list)
    for thread in threads(stage, row.path):
        if thread.root.file_sha256 == side_digest(row, thread.root.side):
            placed[(thread.root.side, thread.root.line)].append(thread)
    return dict(placed)


# -- Files viewed ---------------------------------------------------------------------------------


def file_anchor(path: str) -> str:
    """An id for a file on the all-files page that no file name can break out of."""
    return "f-" + hashlib.sha256(path.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def file_digest(row: FileChangeRow) -> str:
    return row.sha256 or row.old_sha256


def set_viewed(stage: StagedVersion, user: User, row: FileChangeRow, viewed: bool) -> None:
    """Tick (or untick) a file as viewed by this person, for the content it has now: if the
    file changes, the tick no longer counts."""
    if viewed:
        FileViewed.objects.update_or_create(
            stage=stage,
            user=user,
            path=row.path,
            defaults={"file_sha256": file_digest(row), "viewed_at": timezone.now()},
        )
    else:
        FileViewed.objects.filter(stage=stage, user=user, path=row.path).delete()


def viewed_paths(stage: StagedVersion, user: User | None, analysis: Analysis) -> set[str]:
    """The paths this person ticked whose content is still what they viewed."""
    if user is None:
        return set()
    ticks = dict(
        FileViewed.objects.filter(stage=stage, user=user).values_list("path", "file_sha256")
    )
    if not ticks:
        return set()
    rows = FileChangeRow.objects.filter(analysis=analysis, path__in=list(ticks)).values_list(
        "path", "sha256", "old_sha256"
    )
    return {path for path, new, old in rows if ticks.get(path) == (new or old)}
