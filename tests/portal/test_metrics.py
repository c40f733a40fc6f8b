"""`/metrics`: Prometheus' text format for staff or a scraper's token, computed from what every
process shares, so the web tier speaks for the workers."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from portal.observability import task_failed
from reviews import tasks
from reviews.audit import trail as audit
from reviews.audit.trail import Action
from reviews.mirror.sync import SyncSummary, record_pass
from reviews.models import StagedVersion
from reviews.notify import dispatch
from tests.personas import World

pytestmark = pytest.mark.django_db

TOKEN = "scraper-token-0123456789"


def samples(response) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def staff_client(world: World) -> Client:
    client = Client()
    client.force_login(world.staff)
    return client


def test_staff_read_every_metric(world: World) -> None:
    found = samples(staff_client(world).get(reverse("metrics")))
    names = {name for name, _ in found}
    assert {
        "greenroom_sync_lag_seconds",
        "greenroom_pending_stages",
        "greenroom_pending_downloads",
        "greenroom_analysis_duration_seconds_count",
        "greenroom_task_failures_total",
        "greenroom_decisions_total",
    } <= names


def test_the_figures_come_from_the_shared_state(world: World, eager, monkeypatch) -> None:
    client = staff_client(world)
    before = samples(client.get(reverse("metrics")))
    StagedVersion.objects.create(
        stage_id=uuid.uuid4(),
        package_name="@acme/extra",
        version="1.0.0",
        shasum="0" * 40,
        staged_at=timezone.now(),
    )
    record_pass(timezone.now(), SyncSummary(complete=True))
    audit.record(Action.STAGE_APPROVED, stage=world.acme_stage)
    # A fault at one seam: the sweep's first step breaks, so the task fails for good.
    monkeypatch.setattr(dispatch, "dispatch_events", _broken)
    tasks.notifications_sweep_task.delay()

    after = samples(client.get(reverse("metrics")))

    pending = ("greenroom_pending_stages", ())
    assert after[pending] == before[pending] + 1
    assert 0 <= after[("greenroom_sync_lag_seconds", ())] < 60
    assert after[("greenroom_decisions_total", (("outcome", "approved"),))] == 1
    failures = ("greenroom_task_failures_total", (("task", tasks.notifications_sweep_task.name),))
    assert after[failures] == before[failures] + 1


def _broken() -> None:
    raise RuntimeError("injected: the sweep broke")


def test_queue_depths_are_read_from_the_broker(world: World, settings) -> None:
    found = samples(staff_client(world).get(reverse("metrics")))
    queues = {dict(labels)["queue"] for name, labels in found if name == "greenroom_queue_depth"}
    assert queues == {settings.CELERY_TASK_DEFAULT_QUEUE, settings.GREENROOM_ANALYSIS_QUEUE}


def test_a_failure_is_counted_per_task() -> None:
    task_failed(sender=SimpleNamespace(name="reviews.tasks.digests_task"))
    task_failed(sender=SimpleNamespace(name="reviews.tasks.digests_task"))
    found = samples(_scraper(TOKEN).get(reverse("metrics")))
    assert found[("greenroom_task_failures_total", (("task", "reviews.tasks.digests_task"),))] >= 2


@pytest.fixture(autouse=True)
def metrics_token(settings) -> None:
    settings.GREENROOM_METRICS_TOKEN = TOKEN


def _scraper(token: str) -> Client:
    return Client(headers={"Authorization": f"Bearer {token}"})


def test_a_scraper_with_the_token_reads_them(db) -> None:
    assert _scraper(TOKEN).get(reverse("metrics")).status_code == 200


def test_a_wrong_token_is_sent_to_login(db) -> None:
    response = _scraper("not-the-token").get(reverse("metrics"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_no_token_setting_means_no_token_works(db, settings) -> None:
    settings.GREENROOM_METRICS_TOKEN = ""
    assert _scraper("").get(reverse("metrics")).status_code == 302
    assert _scraper(TOKEN).get(reverse("metrics")).status_code == 302


def test_signed_in_non_staff_get_404(world: World) -> None:
    client = Client()
    client.force_login(world.acme_admin)
    assert client.get(reverse("metrics")).status_code == 404
