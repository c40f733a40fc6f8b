"""Staff manage teams here; every change is audited like the same change in the portal."""

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.forms import BaseInlineFormSet, ModelForm
from django.http import HttpRequest

from reviews.audit import trail as audit
from reviews.audit.trail import Action, Actor
from reviews.models import AuditEvent, Membership, PackagePattern, Role, Team
from reviews.teams import changes
from reviews.teams.access import is_valid_pattern, other_teams_patterns, overlaps_of


class PackagePatternForm(ModelForm[PackagePattern]):
    def clean_pattern(self) -> str:
        pattern: str = self.cleaned_data["pattern"].strip().lower()
        if not is_valid_pattern(pattern):
            raise ValidationError("Use a package name, or one with * wildcards (@acme/*).")
        return pattern


class PackagePatternInline(admin.TabularInline[PackagePattern, Team]):
    model = PackagePattern
    form = PackagePatternForm
    fields = ["pattern"]
    extra = 1


class MembershipInline(admin.TabularInline[Membership, Team]):
    model = Membership
    fields = ["user", "role"]
    extra = 1
    autocomplete_fields = ["user"]


def role_label(value: Any) -> str | None:
    return Role(int(value)).label if value not in (None, "") else None


def audit_inline_change(obj: Any, kind: str, old: dict[str, Any], actor: Actor) -> None:
    """One audit entry per membership or pattern that an admin inline added, changed or deleted
    (a pattern's also on every team whose packages it overlaps)."""
    if isinstance(obj, PackagePattern):
        if kind in ("changed", "deleted"):
            old_pattern = old.get("pattern", obj.pattern)
            changes.record_pattern_change(obj.team, old_pattern, actor, added=False)
        if kind in ("added", "changed"):
            changes.record_pattern_change(obj.team, obj.pattern, actor, added=True)
    elif isinstance(obj, Membership):
        target = f"team:{obj.team.slug}"
        payload = {
            "member": obj.user.get_username(),
            "old": role_label(old.get("role")),
            "new": role_label(obj.role),
        }
        if kind == "deleted":
            audit.record(
                Action.MEMBER_REMOVED, actor, target=target, payload={**payload, "new": None}
            )
        else:
            audit.record(Action.MEMBER_ROLE_SET, actor, target=target, payload=payload)


def warn_about_overlaps(request: HttpRequest, team: Team, patterns: list[PackagePattern]) -> None:
    others = other_teams_patterns(team)
    for pattern in patterns:
        for overlap in overlaps_of(pattern.pattern, others):
            messages.warning(
                request,
                f"{pattern.pattern} overlaps {overlap.team.name}'s {overlap.pattern} (both match "
                f"{overlap.example}): members of both teams see those packages.",
            )


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin[Team]):
    list_display = ["name", "slug", "created_at"]
    fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    search_fields = ["name", "slug"]
    inlines = [PackagePatternInline, MembershipInline]

    def save_model(
        self, request: HttpRequest, obj: Team, form: ModelForm[Team], change: bool
    ) -> None:
        super().save_model(request, obj, form, change)
        if not change:
            audit.record(
                Action.TEAM_CREATED,
                Actor.from_request(request),
                target=f"team:{obj.slug}",
                payload={"name": obj.name},
            )

    def delete_model(self, request: HttpRequest, obj: Team) -> None:
        actor = Actor.from_request(request)
        for pattern in obj.patterns.all():  # the teams it overlapped see their exposure end
            changes.record_pattern_change(obj, pattern.pattern, actor, added=False)
        audit.record(
            Action.TEAM_DELETED,
            actor,
            target=f"team:{obj.slug}",
            payload={"name": obj.name},
        )
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Team]) -> None:
        # "Delete selected" would skip delete_model, and with it the audit entries.
        with transaction.atomic():
            for team in queryset:
                self.delete_model(request, team)

    def save_formset(
        self,
        request: HttpRequest,
        form: Any,
        formset: BaseInlineFormSet[Any, Any, Any],
        change: bool,
    ) -> None:
        before = {f.instance.pk: dict(f.initial) for f in formset.forms if f.instance.pk}
        super().save_formset(request, form, formset, change)
        actor = Actor.from_request(request)
        for obj in formset.new_objects:
            audit_inline_change(obj, "added", {}, actor)
        for obj, _fields in formset.changed_objects:
            audit_inline_change(obj, "changed", before.get(obj.pk, {}), actor)
        for obj in formset.deleted_objects:
            audit_inline_change(obj, "deleted", before.get(obj.pk, {}), actor)
        if formset.model is PackagePattern:
            added = [*formset.new_objects, *(obj for obj, _ in formset.changed_objects)]
            warn_about_overlaps(request, form.instance, added)


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin[AuditEvent]):
    """Read-only: the trail is append-only, and the admin may not change or delete entries."""

    list_display = ["id", "created_at", "action", "username", "package_name", "version", "target"]
    list_filter = ["action"]
    search_fields = ["package_name", "username", "target", "stage_uuid"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
