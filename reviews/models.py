"""The portal's mirror of the registry's staged versions and the tarballs it downloaded."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone


class Tarball(models.Model):
    """One tarball's bytes, stored once under its SHA-256 whatever stage or release it came from."""

    sha256 = models.CharField(max_length=64, unique=True)
    sha1 = models.CharField(max_length=40, db_index=True)
    integrity = models.CharField(max_length=100, help_text="sha512 SRI string, as npm writes it")
    size = models.BigIntegerField()
    storage_name = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"tarball {self.sha256[:12]}"


class StagedVersion(models.Model):
    """A version waiting (or once waiting) in the registry's holding area."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    class Integrity(models.TextChoices):
        PENDING = "pending", "Not checked yet"
        VERIFIED = "verified", "Verified"
        MISMATCH = "mismatch", "Mismatch"
        UNAVAILABLE = "unavailable", "Unavailable"

    stage_id = models.UUIDField(unique=True)
    package_name = models.CharField(max_length=214, db_index=True)
    version = models.CharField(max_length=256)
    tag = models.CharField(max_length=256, blank=True)
    actor = models.CharField(max_length=214, blank=True)
    actor_type = models.CharField(max_length=64, blank=True)
    access = models.CharField(max_length=16, blank=True)
    shasum = models.CharField(max_length=40)
    staged_at = models.DateTimeField()

    first_seen_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)

    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_elsewhere = models.BooleanField(default=False)
    # After an approval: the packument's dist.shasum, and whether it equals the staged shasum.
    published_shasum = models.CharField(max_length=40, blank=True)
    published_shasum_matches = models.BooleanField(null=True)

    integrity = models.CharField(
        max_length=16, choices=Integrity.choices, default=Integrity.PENDING
    )
    integrity_reason = models.TextField(blank=True)
    tarball = models.ForeignKey(Tarball, null=True, blank=True, on_delete=models.PROTECT)
    # A download claim: set by the worker that fetches the tarball, so two workers never both do;
    # its heartbeat keeps the time fresh (reviews.mirror.leases), the token says whose it is.
    download_claimed_at = models.DateTimeField(null=True, blank=True)
    download_claim = models.CharField(max_length=32, blank=True)
    download_attempts = models.PositiveIntegerField(default=0)
    # A tarball that could not be downloaded (or one a person asked to check again) is
    # downloaded again by the sync pass once this time has come; None: no check is planned.
    next_check_at = models.DateTimeField(null=True, blank=True)
    # Checks in a row that ended unavailable for a transient reason: how long the next waits.
    failed_checks = models.PositiveIntegerField(default=0)
    # When the download (or the analysis) was last handed to the workers: a sync pass queues
    # it again only once this is older than a lease, so passes never multiply the queue.
    download_queued_at = models.DateTimeField(null=True, blank=True)
    analysis_queued_at = models.DateTimeField(null=True, blank=True)

    # A decision made in the portal, with the deciding person's own npm token.
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    decided_npm_user = models.CharField(max_length=214, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)
    decided_in_portal = models.BooleanField(default=False)
    # A decision claim: set before the approve/reject request goes out, so one is sent at a time.
    decision_claimed_at = models.DateTimeField(null=True, blank=True)
    # After a portal approval: the packument's dist.integrity, compared with the reviewed tarball.
    published_integrity = models.CharField(max_length=200, blank=True)
    published_integrity_matches = models.BooleanField(null=True)
    published_checked_at = models.DateTimeField(null=True, blank=True)
    # What batches need from the staged package.json, read once from the downloaded tarball
    # (reviews.decide.releases): {"gitHead": str, "dependencies": {name: range}}; None: not
    # read yet.
    release_facts = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-staged_at", "-id"]
        indexes = [
            models.Index(fields=["state", "-staged_at"]),
            models.Index(fields=["package_name", "state"]),
        ]

    def __str__(self) -> str:
        return f"{self.package_name}@{self.version}"

    @property
    def actor_label(self) -> str:
        """'alice (user)', or just 'alice' when the registry did not say which kind of actor."""
        if self.actor_type:
            return f"{self.actor} ({self.actor_type})"
        return self.actor

    def unread_tarball(self) -> str:
        """Why Greenroom could not read the whole staged tarball, in a sentence; "" when it read
        it whole, or has not finished trying.

        Then what the review shows is incomplete (an install script may hide in what was not
        read): the stage page leads with it and approving needs an acknowledgement.
        """
        if self.tarball_id is None:
            if self.integrity == self.Integrity.UNAVAILABLE:
                return f"It could not be downloaded: {self.integrity_reason}"
            return ""
        chosen = (
            StageBaseline.objects.select_related("analysis")
            .filter(stage=self, staged_tarball_id=self.tarball_id)
            .first()
        )
        if chosen is None:
            return ""
        if chosen.problem:
            return f"It was not analysed. {chosen.problem}"
        analysis = chosen.analysis
        if analysis is None:
            return ""
        return analysis.unread_staged_tarball()


class SyncStatus(models.Model):
    """The sync's last pass (one row): how far behind the registry the mirror may be, for
    /healthz and /metrics. Written by reviews.mirror.sync at the end of every pass."""

    last_started_at = models.DateTimeField(null=True, blank=True)
    # Of the last pass whose listing reached its end: everything the registry had was seen.
    last_completed_at = models.DateTimeField(null=True, blank=True)
    last_listed = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        verbose_name_plural = "sync status"

    def __str__(self) -> str:
        return f"sync completed at {self.last_completed_at}"

    @classmethod
    def lag_seconds(cls, now: datetime | None = None) -> float | None:
        """Seconds since the last complete pass began; None if none ever completed. (A pass
        records when it began: whatever it listed was true at least then.)"""
        completed = cls.objects.filter(pk=1).values_list("last_completed_at", flat=True).first()
        if completed is None:
            return None
        lag: float = ((now or timezone.now()) - completed).total_seconds()
        return max(0.0, lag)


class Team(models.Model):
    """A group of people who own a set of packages, named by patterns."""

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    # The team's review policy (reviews.teams.policy): where several teams own a package, the
    # strictest of their policies governs it. 0 approving reviews keeps the one-person approve.
    required_approvals = models.PositiveSmallIntegerField(default=0)
    no_self_approval = models.BooleanField(default=True)
    acknowledge_findings = models.BooleanField(default=True)
    policy_changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class PackagePattern(models.Model):
    """`left-pad`, `@acme/*` or `@acme/ui-*`: `*` stands for any run of characters."""

    team = models.ForeignKey(Team, related_name="patterns", on_delete=models.CASCADE)
    pattern = models.CharField(max_length=214)

    class Meta:
        ordering = ["pattern"]
        constraints = [
            models.UniqueConstraint(fields=["team", "pattern"], name="unique_team_pattern")
        ]

    def __str__(self) -> str:
        return self.pattern


class Role(models.IntegerChoices):
    """Ordered: each role may do everything the ones below it may."""

    VIEWER = 10, "Viewer"
    REVIEWER = 20, "Reviewer"
    APPROVER = 30, "Approver"
    ADMIN = 40, "Team admin"


class Membership(models.Model):
    team = models.ForeignKey(Team, related_name="memberships", on_delete=models.CASCADE)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, related_name="memberships", on_delete=models.CASCADE
    )
    role = models.PositiveSmallIntegerField(choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["team__name", "user__username"]
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="unique_team_member")]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.get_role_display()})"


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def update(self, **kwargs: object) -> int:
        raise AuditLogIsAppendOnly("audit entries cannot be updated")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AuditLogIsAppendOnly("audit entries cannot be deleted")


class AuditLogIsAppendOnly(Exception):
    pass


class AuditEvent(models.Model):
    """One append-only, hash-chained entry of the audit trail.

    Written only by reviews.audit.trail."""

    created_at = models.DateTimeField()
    action = models.CharField(max_length=64, db_index=True)
    # Who: the portal person (kept as a name too, so the entry outlives the account).
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    username = models.CharField(max_length=150, blank=True, db_index=True)
    npm_user = models.CharField(max_length=214, blank=True)
    # What it was about: a stage (copied, so the entry stands on its own) or another target.
    stage = models.ForeignKey(
        StagedVersion,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="audit_events",
    )
    stage_uuid = models.CharField(max_length=36, blank=True, db_index=True)
    package_name = models.CharField(max_length=214, blank=True, db_index=True)
    version = models.CharField(max_length=256, blank=True)
    shasum = models.CharField(max_length=40, blank=True)
    target = models.CharField(max_length=300, blank=True)
    # From where, for web actions.
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=400, blank=True)
    # What the registry answered, when there was an answer.
    registry_status = models.PositiveSmallIntegerField(null=True, blank=True)
    registry_message = models.TextField(blank=True)
    payload = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["created_at"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action}"

    def save(self, *args: object, **kwargs: object) -> None:
        if not self._state.adding:
            raise AuditLogIsAppendOnly("audit entries cannot be changed")
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise AuditLogIsAppendOnly("audit entries cannot be deleted")


class NpmToken(models.Model):
    """A person's own registry token, encrypted at rest (reviews.decide.npm_tokens), never shown
    again."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, related_name="npm_token", on_delete=models.CASCADE
    )
    npm_user = models.CharField(max_length=214, db_index=True)
    encrypted = models.TextField(help_text="Fernet ciphertext; keys in GREENROOM_TOKEN_KEYS")
    linked_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    # Codes the registry refused lately (never the codes): registries lock an account out
    # after a few failures, so the page warns before that.
    code_failures = models.PositiveIntegerField(default=0)
    code_failures_since = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"npm user {self.npm_user} for {self.user}"


class ApiToken(models.Model):
    """A person's token for the JSON API (reviews.api.tokens). Only its SHA-256 is stored: the
    token itself is shown once, when it is made, and acts with its owner's access, never more."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, related_name="api_tokens", on_delete=models.CASCADE
    )
    name = models.CharField(max_length=100)
    digest = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the token, hex")
    hint = models.CharField(
        max_length=16, help_text="the token's first characters, to tell tokens apart in a list"
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"API token {self.name!r} of {self.user}"

    def is_expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    @property
    def is_live(self) -> bool:
        return self.revoked_at is None and not self.is_expired()


class WebAuthChallenge(models.Model):
    """A security-key challenge the registry opened for one person's approve or reject.

    The doneUrl is not a secret; the token it hands out is, and is never stored: it is sent
    with the one re-sent request in the same web request that fetched it.
    """

    class Decision(models.TextChoices):
        APPROVE = "approve", "Approve"
        REJECT = "reject", "Reject"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, related_name="+", on_delete=models.CASCADE)
    stage = models.ForeignKey(StagedVersion, related_name="+", on_delete=models.CASCADE)
    decision = models.CharField(max_length=8, choices=Decision.choices)
    reason = models.TextField(blank=True)
    # The approver ticked "I understand Greenroom could not read this whole tarball" on the
    # form that opened this challenge; the approval re-sent after the key carries it along.
    acknowledged_unread = models.BooleanField(default=False)
    auth_url = models.URLField(max_length=2000)
    done_url = models.URLField(max_length=2000)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    # Not before this: the registry's retry-after, and a claim on the next poll.
    next_poll_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "stage"], name="one_web_auth_per_user_stage")
        ]

    def __str__(self) -> str:
        return f"{self.decision} of {self.stage} by {self.user}"


class UnansweredDecision(models.Model):
    """An approve or reject the registry did not answer (a timeout, a dropped connection, a
    gateway's 502 or 504): it may have been applied. While this row exists the stage keeps its
    decision claim, so nobody sends a second decision; it is deleted in the transaction that
    records how the registry shows it ended (reviews.decide.outcomes)."""

    stage = models.OneToOneField(
        StagedVersion, related_name="unanswered_decision", on_delete=models.CASCADE
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, related_name="+", on_delete=models.SET_NULL
    )
    npm_user = models.CharField(max_length=214, blank=True)
    decision = models.CharField(max_length=8, choices=WebAuthChallenge.Decision.choices)
    reason = models.TextField(blank=True)
    factor = models.CharField(max_length=16, blank=True)
    sent_at = models.DateTimeField()
    checked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"unanswered {self.decision} of {self.stage}"


# -- The review: baselines, whole-package analyses and their file index ---------------------------


class PublishedTarball(models.Model):
    """A published version's tarball, downloaded to serve as a baseline and checked against the
    packument's `dist.shasum` / `dist.integrity` before it is used."""

    package_name = models.CharField(max_length=214)
    version = models.CharField(max_length=256)
    shasum = models.CharField(max_length=40, blank=True, help_text="the packument's dist.shasum")
    integrity = models.TextField(blank=True, help_text="the packument's dist.integrity")
    tarball = models.ForeignKey(
        Tarball, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    verdict = models.CharField(
        max_length=16,
        choices=StagedVersion.Integrity.choices,
        default=StagedVersion.Integrity.PENDING,
    )
    reason = models.TextField(blank=True)
    requested_at = models.DateTimeField(default=timezone.now)
    checked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["package_name", "version"], name="unique_published_tarball"
            )
        ]

    def __str__(self) -> str:
        return f"{self.package_name}@{self.version} (published)"


class Analysis(models.Model):
    """The whole-package comparison of one (baseline, staged) pair of tarballs.

    Keyed by the two tarballs (content-addressed), so every stage with the same pair shares it;
    `baseline` is None for a first release. Claimed with a lease on `claimed_at` (kept fresh by
    a heartbeat, owned by `claim_token`) so that two workers never analyse the same pair at once.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        REFUSED = "refused", "Refused"
        FAILED = "failed", "Failed"

    baseline = models.ForeignKey(
        Tarball, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    staged = models.ForeignKey(Tarball, on_delete=models.PROTECT, related_name="+")
    format_version = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    claimed_at = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=32, blank=True)  # whose claim (mirror.leases)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    seconds = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)
    # Over a limit: which tarball ("staged" or "baseline"), which limit, and the sentence.
    refusal_side = models.CharField(max_length=8, blank=True)
    refusal_reason = models.CharField(max_length=16, blank=True)
    refusal_message = models.TextField(blank=True)

    file_count = models.PositiveIntegerField(default=0)
    files_added = models.PositiveIntegerField(default=0)
    files_removed = models.PositiveIntegerField(default=0)
    files_modified = models.PositiveIntegerField(default=0)
    files_renamed = models.PositiveIntegerField(default=0)
    files_unchanged = models.PositiveIntegerField(default=0)
    binary_changed = models.PositiveIntegerField(default=0)
    old_size = models.BigIntegerField(default=0)
    new_size = models.BigIntegerField(default=0)
    lines_added = models.BigIntegerField(default=0)
    lines_removed = models.BigIntegerField(default=0)
    stats_complete = models.BooleanField(default=True)
    unpacked_bytes = models.BigIntegerField(default=0)
    # [{"side": "staged"|"baseline", "kind", "path", "detail"}], bounded by reviews.inspect.archive.
    findings = models.JSONField(default=list, blank=True)
    # reviews.inspect.manifest_diff.ManifestDiff as plain data (see reviews.review.analysis).
    manifest = models.JSONField(default=dict, blank=True)
    # Risk findings of the pair (reviews.inspect.rules.Finding.to_data() each, new first);
    # None: the rules did not run on this analysis. `risk`: the highest severity among new and
    # changed findings ("" for none). See reviews.review.risk.
    risk_findings = models.JSONField(null=True, blank=True)
    risk = models.CharField(max_length=8, blank=True)

    class Meta:
        verbose_name_plural = "analyses"
        constraints = [
            models.UniqueConstraint(
                fields=["baseline", "staged", "format_version"],
                condition=models.Q(baseline__isnull=False),
                name="unique_analysis_pair",
            ),
            models.UniqueConstraint(
                fields=["staged", "format_version"],
                condition=models.Q(baseline__isnull=True),
                name="unique_analysis_first_release",
            ),
        ]

    def __str__(self) -> str:
        return f"analysis {self.pk} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.REFUSED, self.Status.FAILED)

    @property
    def size_delta(self) -> int:
        return self.new_size - self.old_size

    def unread_staged_tarball(self) -> str:
        """Why this analysis did not read the whole staged tarball (see
        `StagedVersion.unread_tarball`); "" if it did, or has not finished."""
        if self.status == self.Status.REFUSED:
            if self.refusal_side == "baseline":
                return (
                    "The baseline tarball was refused, so none of the staged tarball's files "
                    f"are listed: {self.refusal_message}"
                )
            return f"Reading it stopped early: {self.refusal_message}"
        if self.status == self.Status.FAILED:
            return f"The analysis failed: {self.error}"
        manifest = self.manifest if isinstance(self.manifest, dict) else {}
        unreadable = manifest.get("staged_unreadable")
        if self.status == self.Status.DONE and unreadable:
            return str(unreadable)
        return ""


class FileChangeRow(models.Model):
    """One path of an analysis: the staged file (or the baseline's, when removed) and its fate.

    The page reads a whole analysis' rows in one query to draw the tree, and never re-reads a
    tarball for it.
    """

    analysis = models.ForeignKey(Analysis, on_delete=models.CASCADE, related_name="rows")
    ordinal = models.PositiveIntegerField(help_text="position in path order")
    path = models.TextField()
    old_path = models.TextField(blank=True, help_text="the baseline path of a renamed file")
    status = models.CharField(max_length=10)
    size = models.BigIntegerField(null=True, blank=True)
    old_size = models.BigIntegerField(null=True, blank=True)
    mode = models.PositiveIntegerField(null=True, blank=True)
    old_mode = models.PositiveIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    old_sha256 = models.CharField(max_length=64, blank=True)
    is_binary = models.BooleanField(default=False)
    line_count = models.PositiveIntegerField(null=True, blank=True)
    old_line_count = models.PositiveIntegerField(null=True, blank=True)
    lines_added = models.PositiveIntegerField(null=True, blank=True)
    lines_removed = models.PositiveIntegerField(null=True, blank=True)
    oversized = models.BooleanField(default=False)

    class Meta:
        ordering = ["analysis", "ordinal"]
        constraints = [
            models.UniqueConstraint(fields=["analysis", "ordinal"], name="unique_row_ordinal")
        ]

    def __str__(self) -> str:
        return f"{self.status} {self.path}"

    @property
    def size_delta(self) -> int:
        return (self.size or 0) - (self.old_size or 0)


class StageBaseline(models.Model):
    """Which published version a stage is compared with by default, the rule that chose it, and
    the analysis of that pair. Chosen again when the stage's tarball changes."""

    stage = models.OneToOneField(
        StagedVersion, on_delete=models.CASCADE, related_name="review_baseline"
    )
    staged_tarball = models.ForeignKey(Tarball, on_delete=models.PROTECT, related_name="+")
    version = models.CharField(max_length=256, blank=True, help_text="empty: a first release")
    rule = models.CharField(max_length=16, blank=True)
    tag = models.CharField(max_length=256, blank=True)
    published = models.JSONField(
        default=list, blank=True, help_text="published versions, highest first, for the picker"
    )
    problem = models.TextField(blank=True, help_text="why there is no analysis to show")
    analysis = models.ForeignKey(
        Analysis, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    chosen_at = models.DateTimeField(default=timezone.now)
    # What the release itself says (tag move, stager), as Finding data; and the stage's risk:
    # the highest severity among the analysis' new and changed findings and these, with its
    # rank (5 critical .. 1 info, 0 nothing found; None while not known) for the dashboard.
    release_findings = models.JSONField(default=list, blank=True)
    risk = models.CharField(max_length=8, blank=True)
    risk_rank = models.PositiveSmallIntegerField(null=True, blank=True, db_index=True)
    # The packument's `maintainers` names when the baseline was chosen (None: not read), so
    # the page can say before the click who the registry will let approve.
    maintainers = models.JSONField(null=True, blank=True)

    def __str__(self) -> str:
        return f"baseline of {self.stage_id}: {self.version or 'none'}"


# -- Team review: reviews, line comments, files viewed (reviews.review.discussion) ---------------


class Review(models.Model):
    """One person's verdict on a stage, with its text. A later review by the same person
    replaces their standing verdict; every review stays as history.

    Tied to the tarball it was given on (`shasum`): an approval of another tarball does not
    count. `baseline_version` says what it was compared with at the time."""

    class Verdict(models.TextChoices):
        APPROVE = "approve", "Approve"
        REQUEST_CHANGES = "request_changes", "Request changes"
        COMMENT = "comment", "Comment"

    stage = models.ForeignKey(StagedVersion, related_name="reviews", on_delete=models.CASCADE)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    author_name = models.CharField(max_length=150)
    verdict = models.CharField(max_length=16, choices=Verdict.choices)
    body = models.TextField(blank=True)
    shasum = models.CharField(max_length=40)
    tarball_sha256 = models.CharField(max_length=64, blank=True)
    baseline_version = models.CharField(max_length=256, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["stage", "author", "-id"])]

    def __str__(self) -> str:
        return f"{self.author_name}: {self.verdict} on stage {self.stage_id}"


class LineComment(models.Model):
    """A comment on one line of one side of a file's diff, or a reply in its thread.

    The first comment (`thread` None) carries the place and the resolution; replies point to
    it. `file_sha256` is the content of the side it was written on: where that file differs
    now, the thread is shown as outdated instead of on a line that says something else."""

    class Side(models.TextChoices):
        OLD = "old", "baseline"
        NEW = "new", "staged"

    stage = models.ForeignKey(StagedVersion, related_name="line_comments", on_delete=models.CASCADE)
    thread = models.ForeignKey(
        "self", null=True, blank=True, related_name="replies", on_delete=models.CASCADE
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    author_name = models.CharField(max_length=150)
    path = models.TextField()
    side = models.CharField(max_length=3, choices=Side.choices)
    line = models.PositiveIntegerField()
    file_sha256 = models.CharField(max_length=64, blank=True)
    baseline_version = models.CharField(max_length=256, blank=True)
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["stage", "thread"])]

    def __str__(self) -> str:
        return f"{self.author_name} on {self.path}:{self.side}{self.line}"


class FileViewed(models.Model):
    """One person ticked one file of one stage as viewed (its staged content, by digest)."""

    stage = models.ForeignKey(StagedVersion, related_name="+", on_delete=models.CASCADE)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, related_name="+", on_delete=models.CASCADE)
    path = models.TextField()
    file_sha256 = models.CharField(max_length=64, blank=True)
    viewed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["stage", "user", "path"], name="one_viewed_tick")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} viewed {self.path}"


class FindingsAcknowledgement(models.Model):
    """A person ticked "I have read the N critical/high findings" on the approve form; the
    decision checks it (and records N) at the moment of the click."""

    stage = models.ForeignKey(StagedVersion, related_name="+", on_delete=models.CASCADE)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, related_name="+", on_delete=models.CASCADE)
    count = models.PositiveIntegerField()
    shasum = models.CharField(max_length=40)
    acknowledged_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["stage", "user"], name="one_findings_ack")]

    def __str__(self) -> str:
        return f"{self.user_id} read {self.count} findings of {self.stage_id}"


class SecondFactor(models.TextChoices):
    """How a person last confirmed a decision at the registry (never the code itself)."""

    CODE = "code", "One-time code"
    SECURITY_KEY = "security key", "Security key"


class Profile(models.Model):
    """What a person tells the portal about themselves beyond their linked token: the npm user
    they stage with from CI (if another), so that no-self-approval knows them by it too; and
    the second factor they used last, so the approve page offers that one first."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, related_name="greenroom_profile", on_delete=models.CASCADE
    )
    staging_npm_user = models.CharField(max_length=214, blank=True)
    last_second_factor = models.CharField(max_length=16, blank=True, choices=SecondFactor.choices)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"profile of {self.user_id}"


# -- Notifications (reviews.notify.dispatch, reviews.notify.webhooks) ---------------------------


class NotificationMode(models.TextChoices):
    IMMEDIATE = "immediate", "Every email"
    DIGEST = "digest", "Daily digest"
    OFF = "off", "None"


class NotificationPreference(models.Model):
    """How one person hears about one team's stages; no row means every email."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, related_name="notification_preferences", on_delete=models.CASCADE
    )
    team = models.ForeignKey(Team, related_name="+", on_delete=models.CASCADE)
    mode = models.CharField(
        max_length=16, choices=NotificationMode.choices, default=NotificationMode.IMMEDIATE
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "team"], name="one_preference_per_user_team")
        ]

    def __str__(self) -> str:
        return f"{self.user} hears about {self.team}: {self.mode}"


class TeamNotificationSettings(models.Model):
    """A team's reminder rate and optional webhook. No row means the defaults and no webhook."""

    team = models.OneToOneField(
        Team, related_name="notification_settings", on_delete=models.CASCADE
    )
    # Approvers hear about a stage pending longer than this (0: never), then every N days.
    reminder_after_days = models.PositiveSmallIntegerField(default=3)
    reminder_every_days = models.PositiveSmallIntegerField(default=1)
    # A webhook URL is a secret (Slack's carry their credential in the path): Fernet-encrypted
    # like npm tokens, and only its scheme and host are ever shown again.
    webhook_url_encrypted = models.TextField(blank=True)
    webhook_url_hint = models.CharField(max_length=300, blank=True)
    webhook_set_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"notification settings of {self.team}"


class NotificationEventManager(models.Manager["NotificationEvent"]):
    """The outbox's one way in, so any room can report a fact without importing reviews.notify."""

    def record(
        self,
        kind: str,
        stage: StagedVersion | None,
        *,
        team: Team | None = None,
        number: int = 0,
        now: datetime | None = None,
        review: Review | None = None,
        comment: LineComment | None = None,
    ) -> NotificationEvent | None:
        """The event, written in the caller's transaction; None if it was already recorded."""
        key = notification_event_key(
            kind, stage.pk if stage else None, team.pk if team else None, number
        )
        with transaction.atomic():
            event, created = self.get_or_create(
                key=key,
                defaults={
                    "kind": kind,
                    "stage": stage,
                    "team": team,
                    "number": number,
                    "review": review,
                    "comment": comment,
                    "created_at": now or timezone.now(),
                },
            )
        return event if created else None

    def record_many(
        self, kind: str, stages: Iterable[StagedVersion], *, now: datetime | None = None
    ) -> None:
        """One event of `kind` (not a reminder) per stage, in one insert; a stage whose event
        is already recorded keeps it (its key is taken)."""
        created_at = now or timezone.now()
        self.bulk_create(
            [
                NotificationEvent(
                    key=notification_event_key(kind, stage.pk, None, 0),
                    kind=kind,
                    stage=stage,
                    created_at=created_at,
                )
                for stage in stages
            ],
            ignore_conflicts=True,
        )


# Events of which a stage has many (each review, comment, resolution, policy change): the key
# carries their number (the fact's own id), so each is its own event.
NUMBERED_EVENT_KINDS = (
    "stage.reminder",
    "review.submitted",
    "comment.added",
    "comment.replied",
    "comment.resolved",
    "team.policy_changed",
    "batch.decided",
)


def notification_event_key(
    kind: str, stage_pk: int | None, team_pk: int | None, number: int
) -> str:
    if kind in NUMBERED_EVENT_KINDS:
        return f"{kind}:{stage_pk}:{team_pk}:{number}"
    return f"{kind}:{stage_pk}"


class NotificationEvent(models.Model):
    """Something people hear about, written in the same transaction as the change it reports
    (an outbox): the dispatcher turns it into one email per person and one webhook per team."""

    class Kind(models.TextChoices):
        NEW_STAGE = "stage.new", "New stage"
        DECIDED = "stage.decided", "Stage decided"
        REMINDER = "stage.reminder", "Reminder"
        REVIEW = "review.submitted", "Review"
        COMMENT = "comment.added", "Line comment"
        REPLY = "comment.replied", "Reply"
        RESOLVED = "comment.resolved", "Thread resolved"
        POLICY = "team.policy_changed", "Team policy changed"
        # One event per batch of decisions (its number is the batch's id; its stage is the
        # batch's first decided stage, for the owning teams).
        BATCH_DECIDED = "batch.decided", "Batch decided"

    # One event per fact: `stage.new:<stage>`, `stage.decided:<stage>`,
    # `stage.reminder:<stage>:<team>:<number>`. A second sync pass finds the key taken.
    key = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    # None only for a team's own events (a policy change), which name the team instead.
    stage = models.ForeignKey(
        StagedVersion, null=True, blank=True, related_name="+", on_delete=models.CASCADE
    )
    review = models.ForeignKey(
        Review, null=True, blank=True, related_name="+", on_delete=models.CASCADE
    )
    comment = models.ForeignKey(
        LineComment, null=True, blank=True, related_name="+", on_delete=models.CASCADE
    )
    # Reminders belong to one team (each has its own rate); other events to every owning team.
    team = models.ForeignKey(
        Team, null=True, blank=True, related_name="+", on_delete=models.CASCADE
    )
    number = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    dispatched_at = models.DateTimeField(null=True, blank=True)

    objects = NotificationEventManager()

    class Meta:
        indexes = [
            models.Index(fields=["dispatched_at", "created_at"]),
            models.Index(fields=["kind", "stage", "team"]),
        ]

    def __str__(self) -> str:
        return self.key


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"


class Notification(models.Model):
    """One email to one person, sent at most once: the unique key is the event and the person
    (or the person and the day, for a digest), and a send is claimed before it goes out."""

    class Kind(models.TextChoices):
        NEW_STAGE = "stage.new", "New stage"
        DECIDED = "stage.decided", "Stage decided"
        REMINDER = "stage.reminder", "Reminder"
        DIGEST = "digest", "Daily digest"
        REVIEW = "review.submitted", "Review"
        COMMENT = "comment.added", "Line comment"
        REPLY = "comment.replied", "Reply"
        RESOLVED = "comment.resolved", "Thread resolved"
        POLICY = "team.policy_changed", "Team policy changed"
        # One event per batch of decisions (its number is the batch's id; its stage is the
        # batch's first decided stage, for the owning teams).
        BATCH_DECIDED = "batch.decided", "Batch decided"

    key = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, related_name="+", on_delete=models.CASCADE)
    # The team the email is sent for (its unsubscribe link stops that team's emails).
    team = models.ForeignKey(
        Team, null=True, blank=True, related_name="+", on_delete=models.CASCADE
    )
    event = models.ForeignKey(
        NotificationEvent, null=True, blank=True, related_name="+", on_delete=models.CASCADE
    )
    # A digest covers what happened in [window_start, window_end).
    window_start = models.DateTimeField(null=True, blank=True)
    window_end = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    message_id = models.CharField(max_length=200, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return self.key


class WebhookDelivery(models.Model):
    """One JSON message to one team's webhook, with what the endpoint answered (shown to the
    team admin). Claimed like an email; retried on timeouts, 429 and 5xx, a bounded number of
    times."""

    key = models.CharField(max_length=200, unique=True)
    team = models.ForeignKey(Team, related_name="webhook_deliveries", on_delete=models.CASCADE)
    event = models.ForeignKey(
        NotificationEvent, null=True, blank=True, related_name="+", on_delete=models.CASCADE
    )
    summary = models.CharField(max_length=300)
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.summary} to {self.team}'s webhook"


class Batch(models.Model):
    """Several stages approved (or rejected) in one sitting, in dependency order.

    The row and its items are where a batch stands: a reloaded page (or a crashed browser)
    shows it and continues. The typed code is never here: it lives in the request that sends.
    """

    class State(models.TextChoices):
        READY = "ready", "Ready"  # nothing sent yet
        RUNNING = "running", "Sending"
        NEEDS_CODE = "needs_code", "Waiting for a code"
        FINISHED = "finished", "Finished"
        REJECTED = "rejected", "Rejected"

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, related_name="+", on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now)
    title = models.CharField(max_length=300, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.READY)
    # The run claim: one request at a time sends this batch's approvals.
    running_since = models.DateTimeField(null=True, blank=True)
    message = models.TextField(blank=True)  # the last thing the registry or the portal said
    # Cycles found in the dependencies, and how they were broken, in words.
    cycles = models.JSONField(default=list, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"batch #{self.pk}"


class BatchItem(models.Model):
    class State(models.TextChoices):
        QUEUED = "queued", "To send"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"  # decided elsewhere meanwhile
        HELD = "held", "Held back"  # a stage it depends on failed
        EXCLUDED = "excluded", "Left out"  # this person may not approve it

    batch = models.ForeignKey(Batch, related_name="items", on_delete=models.CASCADE)
    stage = models.ForeignKey(StagedVersion, related_name="+", on_delete=models.CASCADE)
    position = models.PositiveIntegerField()  # dependency order
    # Positions of the items of this batch it depends on.
    after = models.JSONField(default=list, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    message = models.TextField(blank=True)  # the registry's words, or why it was left out
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["batch", "position"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "stage"], name="batch_item_once"),
            models.UniqueConstraint(fields=["batch", "position"], name="batch_item_position"),
        ]

    def __str__(self) -> str:
        return f"{self.batch} item {self.position}"
