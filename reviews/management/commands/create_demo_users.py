"""Create portal users matching the dev registry's seeded users (for `make run` only)."""

import json
import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = "Create demo portal users from a dev registry seed.json (refuses unless DEBUG is on)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("seed_file", type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("demo users are for local runs only; DEBUG is off")
        seed = json.loads(options["seed_file"].read_text())
        for user in seed["users"]:
            self.ensure_user(user["name"], user["password"], user.get("email", ""), staff=False)
        admin_password = os.environ.get("GREENROOM_DEMO_ADMIN_PASSWORD", "greenroom-admin")
        self.ensure_user("admin", admin_password, "admin@localhost", staff=True)

    def ensure_user(self, name: str, password: str, email: str, *, staff: bool) -> None:
        user_model = get_user_model()
        user, created = user_model.objects.get_or_create(
            username=name, defaults={"email": email, "is_staff": staff, "is_superuser": staff}
        )
        if created:
            user.set_password(password)
            user.save(update_fields=["password"])
            self.stdout.write(f"created portal user {name}")
