"""Logins and failed logins go to the audit trail (never the password Django hands us)."""

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest

from reviews.audit import trail as audit
from reviews.audit.trail import Action, Actor


@receiver(user_logged_in)
def record_login(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    actor = Actor.from_request(request) if request is not None else Actor(user=user)
    audit.record(Action.LOGIN, Actor(user=user, ip=actor.ip, user_agent=actor.user_agent))


@receiver(user_login_failed)
def record_failed_login(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    actor = Actor.from_request(request) if request is not None else audit.SYSTEM
    attempted = str(credentials.get("username", ""))[:150]
    audit.record(
        Action.LOGIN_FAILED,
        Actor(ip=actor.ip, user_agent=actor.user_agent),
        payload={"attempted_username": attempted},
    )
