from typing import Any

from django.core.management.base import BaseCommand, CommandError

from reviews.audit.trail import verify_chain


class Command(BaseCommand):
    help = "Walk the audit trail's hash chain; fail naming the first entry that was tampered with."

    def handle(self, *args: Any, **options: Any) -> None:
        report = verify_chain()
        if not report.ok:
            raise CommandError(
                f"audit trail broken after {report.count} good entries: {report.problem}"
            )
        self.stdout.write(f"ok: {report.count} entries")
