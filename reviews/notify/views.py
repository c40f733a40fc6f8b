"""Choosing what one hears (per team), the signed unsubscribe link, and a team's reminder rate
and webhook (team admins)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core import signing
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from reviews.audit.trail import Actor
from reviews.models import Membership, NotificationMode
from reviews.notify import dispatch as notifications
from reviews.notify import webhooks
from reviews.notify.forms import PreferenceForm, TeamNotificationForm
from reviews.tasks import deliver_webhook_task
from reviews.teams.access import get_administered_team, get_visible_team, memberships_of
from reviews.teams.views import render_team


def the_user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)  # login_required ran first
    return request.user


@login_required
@require_POST
def set_preference(request: HttpRequest, slug: str) -> HttpResponse:
    user = the_user(request)
    team = get_visible_team(user, slug)
    if not Membership.objects.filter(team=team, user=user).exists():
        raise Http404("No such team membership")  # staff see every team but are in few
    form = PreferenceForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose every email, a daily digest or none.")
        return redirect("reviews:me")
    mode = NotificationMode(form.cleaned_data["mode"])
    if notifications.set_preference(user, team, mode, Actor.from_request(request)):
        messages.success(request, f"{team.name}: {mode.label.lower()} from now on.")
    return redirect("reviews:me")


# No login and no CSRF token: the signature is the authority, and mail clients' one-click
# unsubscribe (RFC 8058) POSTs here from outside any session.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    try:
        target = notifications.read_unsubscribe_token(token)
    except signing.BadSignature:
        response = render(request, "reviews/notifications_unsubscribe.html", {}, status=400)
        response["X-Robots-Tag"] = "noindex"
        return response
    ctx = {"target": target, "done": False}
    if request.method == "POST":
        actor = Actor.from_request(request)
        notifications.unsubscribe(target, Actor(target.user, actor.ip, actor.user_agent))
        ctx["done"] = True
    response = render(request, "reviews/notifications_unsubscribe.html", ctx)
    response["X-Robots-Tag"] = "noindex"
    return response


@sensitive_post_parameters("webhook_url")
@login_required
@require_POST
def team_settings(request: HttpRequest, slug: str) -> HttpResponse:
    team = get_administered_team(request.user, slug)
    form = TeamNotificationForm(request.POST)
    if not form.is_valid():
        return render_team(request, slug, invalid={"notification_form": form})
    actor = Actor.from_request(request)
    data = form.cleaned_data
    changed = notifications.update_reminders(
        team, data["reminder_after_days"], data["reminder_every_days"], actor
    )
    if data["remove_webhook"]:
        changed = webhooks.remove_webhook(team, actor) or changed
    elif data["webhook_url"]:
        webhooks.set_webhook(team, data["webhook_url"], actor)
        changed = True
    if changed:
        messages.success(request, "Notification settings saved.")
    return redirect("reviews:team", slug=team.slug)


@login_required
@require_POST
def team_webhook_test(request: HttpRequest, slug: str) -> HttpResponse:
    team = get_administered_team(request.user, slug)
    delivery = webhooks.queue_test(team)
    if delivery is None:
        messages.error(request, "Set a webhook URL first.")
    else:
        deliver_webhook_task.delay_on_commit(delivery.pk)
        messages.success(request, "A test message is on its way; its result appears below.")
    return redirect("reviews:team", slug=team.slug)


@login_required
def me(request: HttpRequest) -> HttpResponse:
    assert isinstance(request.user, User)  # login_required ran first
    ctx = {
        "memberships": memberships_of(request.user),
        "preferences": notifications.preference_rows(request.user),
        "modes": NotificationMode.choices,
    }
    return render(request, "reviews/me.html", ctx)
