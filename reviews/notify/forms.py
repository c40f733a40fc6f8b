"""The forms of the notification pages: a person's choice per team, a team's settings."""

from __future__ import annotations

from django import forms

from reviews.models import NotificationMode
from reviews.notify import webhooks


class PreferenceForm(forms.Form):
    mode = forms.ChoiceField(choices=NotificationMode.choices)


class TeamNotificationForm(forms.Form):
    reminder_after_days = forms.IntegerField(
        min_value=0,
        max_value=90,
        label="Remind approvers about stages pending longer than (days, 0 for never)",
    )
    reminder_every_days = forms.IntegerField(
        min_value=1, max_value=30, label="and again every (days)"
    )
    webhook_url = forms.CharField(
        required=False,
        max_length=webhooks.MAX_URL,
        label="Webhook URL (Slack-compatible)",
        # Never rendered back: a webhook URL is a credential.
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )
    remove_webhook = forms.BooleanField(required=False, label="Remove the webhook")

    def clean_webhook_url(self) -> str:
        url: str = self.cleaned_data["webhook_url"].strip()
        if not url:
            return ""
        try:
            return webhooks.validate_url(url)
        except webhooks.WebhookUrlError as e:
            raise forms.ValidationError(str(e)) from None
