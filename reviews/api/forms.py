"""The settings page's form for a new API token."""

from __future__ import annotations

from django import forms

from reviews.api.tokens import MAX_EXPIRY_DAYS

DEFAULT_EXPIRY_DAYS = 90


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        label="Name",
        help_text="What it is for, e.g. “release workflow of acme/ui”.",
    )
    expires_in_days = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_EXPIRY_DAYS,
        initial=DEFAULT_EXPIRY_DAYS,
        label="Expires after (days)",
        help_text="Leave it empty for a token that never expires.",
    )
