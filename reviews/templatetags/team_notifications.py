"""The team page's notification section, owned by reviews.notify.

The team page (reviews.teams) cannot import the notify room, which sits above it; the template
asks for this section instead, and a re-rendered page with an invalid settings form passes that
form in its context.
"""

from __future__ import annotations

from typing import Any

from django import template

from reviews.models import Role
from reviews.notify import dispatch as notifications
from reviews.notify import webhooks
from reviews.notify.forms import TeamNotificationForm

register = template.Library()


@register.inclusion_tag("reviews/notifications_team.html", takes_context=True)
def team_notifications(context: template.Context) -> dict[str, Any]:
    team = context["team"]
    is_admin = bool(context.get("is_admin"))
    rate = notifications.team_settings(team)
    form = context.get("notification_form") or TeamNotificationForm(
        initial={
            "reminder_after_days": rate.reminder_after_days,
            "reminder_every_days": rate.reminder_every_days,
        }
    )
    return {
        "team": team,
        "is_admin": is_admin,
        "notification_settings": rate,
        "notification_form": form,
        "webhook_deliveries": webhooks.recent_deliveries(team) if is_admin else [],
        "csrf_token": context.get("csrf_token"),
        "request": context.get("request"),
        "roles": Role.choices,
    }
