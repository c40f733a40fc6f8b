"""Notifications: events, emails, digests, reminders and team webhooks."""
