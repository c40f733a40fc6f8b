"""An email backend that fails on demand: the one seam where the mail server's faults are
injected (the SMTP integration test uses a real server)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from django.core.mail import EmailMessage
from django.core.mail.backends.locmem import EmailBackend


class FlakyBackend(EmailBackend):
    """Like locmem, but raises the queued errors first, one per send."""

    errors: ClassVar[list[Exception]] = []
    calls: ClassVar[int] = 0

    def send_messages(self, messages: Sequence[EmailMessage]) -> int:
        FlakyBackend.calls += 1
        if FlakyBackend.errors:
            raise FlakyBackend.errors.pop(0)
        return super().send_messages(messages)
