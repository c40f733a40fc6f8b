"""Make an API token for a person and print it (once): for a CI job's secret store, or for a
person who cannot reach the settings page. Audited like a token made on that page."""

from argparse import ArgumentParser
from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError

from reviews.api import tokens
from reviews.audit.trail import SYSTEM


class Command(BaseCommand):
    help = "Make an API token for USER and print it; only its digest is stored."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("user", help="the Greenroom user name the token acts as")
        parser.add_argument("--name", default="made with manage.py", help="what it is for")
        parser.add_argument(
            "--expires-days",
            type=int,
            default=None,
            help=f"expire after this many days (1 to {tokens.MAX_EXPIRY_DAYS}); default never",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"There is no user {options['user']!r}.")
        if not user.is_active:
            raise CommandError(f"{user.username} is not active: their token would be refused.")
        name = options["name"].strip()
        if not name or len(name) > 100:
            raise CommandError("--name must be 1 to 100 characters.")
        try:
            new = tokens.create(user, name, SYSTEM, expires_in_days=options["expires_days"])
        except ValueError as e:
            raise CommandError(str(e)) from None
        self.stderr.write(
            f"API token {new.record.name!r} for {user.username}; it is not shown again:"
        )
        self.stdout.write(new.secret)
