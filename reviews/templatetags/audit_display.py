"""The audit rows' cells: `{{ event.action|action_words }}`, `{% audit_value value %}` (a
digest shortened, its full value in title and data-copy) and `{% audit_summary event %}`
(the one-line preview of the details). Everything is escaped: payloads carry names from
tarballs and text people typed."""

from __future__ import annotations

import json
from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import Truncator

from reviews.audit import words
from reviews.models import AuditEvent
from reviews.templatetags.marks import visible

register = template.Library()

PREVIEW_ITEMS = 3
PREVIEW_CHARS = 32


@register.filter
def action_words(code: str) -> str:
    return words.action_words(code)


def as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


@register.simple_tag
def audit_value(value: Any) -> SafeString:
    if words.is_digest(value):
        return digest_html(value)
    return format_html('<span class="kv-value">{}</span>', visible(as_text(value)))


@register.simple_tag
def digest_html(value: str) -> SafeString:
    return format_html(
        '<code class="hash" title="{}" data-copy="{}">{}…</code>',
        value,
        value,
        words.short_digest(value),
    )


@register.simple_tag
def audit_summary(event: AuditEvent) -> str:
    """`status 401 · decision=approve · factor=code …`: enough to know whether to open it."""
    parts = [f"status {event.registry_status}"] if event.registry_status else []
    for key, value in list(event.payload.items())[:PREVIEW_ITEMS]:
        shown = words.short_digest(value) + "…" if words.is_digest(value) else as_text(value)
        parts.append(f"{key}={Truncator(visible(shown)).chars(PREVIEW_CHARS)}")
    more = len(event.payload) - PREVIEW_ITEMS
    return " · ".join(parts) + (f" · {more} more" if more > 0 else "")
