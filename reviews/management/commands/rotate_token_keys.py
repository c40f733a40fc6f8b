"""Re-encrypt every linked npm token and team webhook URL with the first key of
GREENROOM_TOKEN_KEYS.

Rotation: put the new key first (keep the old ones after it), deploy, run this, then remove
the old keys. A token no configured key can read is named (by row) and fails the command.
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from reviews.decide import npm_tokens
from reviews.notify import webhooks


class Command(BaseCommand):
    help = "Re-encrypt npm tokens and webhook URLs with the first key of GREENROOM_TOKEN_KEYS."

    def handle(self, *args: Any, **options: Any) -> None:
        rotation = npm_tokens.rotate_keys()
        self.stdout.write(f"Re-encrypted {rotation.rotated} npm tokens with the first key.")
        webhook_urls = webhooks.rotate_keys()
        self.stdout.write(f"Re-encrypted {webhook_urls} team webhook URLs with the first key.")
        if rotation.unreadable:
            rows = ", ".join(str(pk) for pk in rotation.unreadable)
            raise CommandError(
                f"{len(rotation.unreadable)} tokens could not be read with any configured key "
                f"(NpmToken rows {rows}); their owners must link them again."
            )
