"""Create the demo's portal people from a dev registry seed.json (for `make run` only).

Each person gets the same name and password as their registry account, a role in one "Demo"
team that owns every package, and their npm token linked (checked with whoami, so the dev
registry must be running). Machine accounts (the CI bot, the sync account) get no portal login.
The Demo team asks for two approving reviews before the final approve.

With `--reviews` (after the first sync has analysed the stages): bob has already requested
changes on tiny-colors 1.3.0, with a comment on the line of its postinstall script that sends
the npm token out.
"""

import json
import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser

from reviews.audit.trail import SYSTEM, Actor
from reviews.decide import npm_tokens
from reviews.models import FileChangeRow, Membership, PackagePattern, Role, StagedVersion, Team
from reviews.review import discussion
from reviews.review.analysis import current_baseline
from reviews.teams import policy

DEMO_ROLES = {"alice": Role.ADMIN, "carol": Role.APPROVER, "bob": Role.REVIEWER}
DEMO_REQUIRED_APPROVALS = 2
# The stage the demo shows under review, and the line bob asked about.
REVIEWED = ("tiny-colors", "1.3.0", "scripts/setup.js", 4)
REVIEW_TEXT = (
    "The new postinstall script downloads code and runs it, and sends NPM_TOKEN to "
    "telemetry.example on the way. Please drop it before this goes out."
)
COMMENT_TEXT = "Why does line 4 send the npm token to https://telemetry.example?"


class Command(BaseCommand):
    help = "Create demo portal users from a dev registry seed.json (refuses unless DEBUG is on)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("seed_file", type=Path)
        parser.add_argument(
            "--reviews",
            action="store_true",
            help="after the first sync: a stage already under review (a verdict, a comment)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("demo users are for local runs only; DEBUG is off")
        if options["reviews"]:
            self.add_demo_review()
            return
        seed = json.loads(options["seed_file"].read_text())
        team, created = Team.objects.get_or_create(slug="demo", defaults={"name": "Demo"})
        if created:
            policy.set_policy(
                team,
                SYSTEM,
                required_approvals=DEMO_REQUIRED_APPROVALS,
                no_self_approval=True,
                acknowledge_findings=True,
            )
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

    def add_demo_review(self) -> None:
        """bob's review and line comment on the demo's risky stage, once."""
        package, version, path, line = REVIEWED
        stage = StagedVersion.objects.filter(package_name=package, version=version).first()
        bob = User.objects.filter(username="bob").first()
        if stage is None or bob is None or stage.reviews.exists():
            return
        chosen = current_baseline(stage)
        row = (
            FileChangeRow.objects.filter(analysis=chosen.analysis, path=path).first()
            if chosen and chosen.analysis
            else None
        )
        as_bob = Actor(user=bob)
        discussion.submit_review(stage, bob, "request_changes", REVIEW_TEXT, as_bob)
        if row is not None:
            against = chosen.version if chosen else ""
            discussion.add_comment(
                stage, bob, row, "new", line, COMMENT_TEXT, as_bob, against=against
            )
        self.stdout.write(f"bob reviewed {package}@{version} (changes requested, a line comment)")
