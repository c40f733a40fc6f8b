"""The portal's mirror of the registry's staged versions and the tarballs it downloaded."""

from __future__ import annotations

from django.conf import settings
from django.db import models
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
    # A download claim: set by the worker that fetches the tarball, so two workers never both do.
    download_claimed_at = models.DateTimeField(null=True, blank=True)
    download_attempts = models.PositiveIntegerField(default=0)

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


class Team(models.Model):
    """A group of people who own a set of packages, named by patterns."""

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

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
    """One append-only, hash-chained entry of the audit trail. Written only by reviews.audit."""

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
    """A person's own registry token, encrypted at rest (reviews.npm_tokens), never shown again."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, related_name="npm_token", on_delete=models.CASCADE
    )
    npm_user = models.CharField(max_length=214, db_index=True)
    encrypted = models.TextField(help_text="Fernet ciphertext; keys in GREENROOM_TOKEN_KEYS")
    linked_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"npm user {self.npm_user} for {self.user}"


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
