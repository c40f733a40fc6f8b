"""The settings page's API-token section, owned by reviews.api.

The settings page (reviews.decide) cannot import the API room, which sits above it; the template
asks for this section instead, and the API room's views pass a new token (shown once) or an
invalid form in the page's context.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.contrib.auth.models import User

from reviews.api import tokens
from reviews.api.forms import ApiTokenForm

register = template.Library()


@register.inclusion_tag("reviews/_api_tokens.html", takes_context=True)
def api_tokens(context: template.Context) -> dict[str, Any]:
    user = context["request"].user
    return {
        "tokens": tokens.tokens_of(user) if isinstance(user, User) else [],
        "api_token_form": context.get("api_token_form") or ApiTokenForm(),
        "new_api_token": context.get("new_api_token"),
        "csrf_token": context.get("csrf_token"),
    }
