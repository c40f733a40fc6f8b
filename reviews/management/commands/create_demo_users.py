"""Create the demo's portal people from a dev registry seed.json (for `make run` only).

Each person gets the same name and password as their registry account, a role in one "Demo"
team that owns every package, and their npm token linked (checked with whoami, so the dev
registry must be running). Machine accounts (the CI bot, the sync account) get no portal login.
"""

import json
import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser

from reviews.audit.trail import SYSTEM
from reviews.decide import npm_tokens
from reviews.models import Membership, PackagePattern, Role, Team

DEMO_ROLES = {"alice": Role.ADMIN, "carol": Role.APPROVER, "bob": Role.REVIEWER}


class Command(BaseCommand):
    help = "Create demo portal users from a dev registry seed.json (refuses unless DEBUG is on)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("seed_file", type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("demo users are for local runs only; DEBUG is off")
        seed = json.loads(options["seed_file"].read_text())
        team, _ = Team.objects.get_or_create(slug="demo", defaults={"name": "Demo"})
        PackagePattern.objects.get_or_create(team=team, pattern="*")
        for account in seed["users"]:
            role = DEMO_ROLES.get(account["name"])
            if role is None:
                continue
            user = self.ensure_user(account["name"], account["password"], account["email"])
            Membership.objects.get_or_create(team=team, user=user, defaults={"role": role})
            if npm_tokens.linked(user) is None:
                npm_tokens.link(user, account["token"], SYSTEM)
        admin_password = os.environ.get("GREENROOM_DEMO_ADMIN_PASSWORD", "greenroom-admin")
        self.ensure_user("admin", admin_password, "admin@localhost", staff=True)

    def ensure_user(self, name: str, password: str, email: str, *, staff: bool = False) -> User:
        user, created = User.objects.get_or_create(
            username=name, defaults={"email": email, "is_staff": staff, "is_superuser": staff}
        )
        if created:
            user.set_password(password)
            user.save(update_fields=["password"])
            self.stdout.write(f"created portal user {name}")
        return user
