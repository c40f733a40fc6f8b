"""`{% pending_releases %}`: the dashboard's releases (pending stages that belong together),
each one expandable row with a button that starts a batch of it (reviews.decide.releases)."""

from __future__ import annotations

from typing import Any

from django import template

from reviews.decide import releases
from reviews.models import StagedVersion
from reviews.teams.access import visible_stages

register = template.Library()

# Releases are looked for among this many of the newest pending stages.
MAX_PENDING = 500


@register.inclusion_tag("reviews/_releases.html", takes_context=True)
def pending_releases(context: template.Context) -> dict[str, Any]:
    request = context["request"]
    stages = (
        visible_stages(request.user)
        .filter(state=StagedVersion.State.PENDING)
        .select_related("tarball")
        .order_by("-staged_at", "-id")[:MAX_PENDING]
    )
    return {"releases": releases.releases(stages), "csrf_token": context.get("csrf_token")}
