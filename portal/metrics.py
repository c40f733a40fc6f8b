"""`/metrics`: Prometheus' text format, computed when scraped, from what every process shares
(the database, the broker, the cache), so one scrape of the web tier speaks for the workers too.

Not public: staff sessions may read it, and so may a scraper sending
`Authorization: Bearer <GREENROOM_METRICS_TOKEN>` when that setting is set; anyone else signed
in gets a 404 (the URL is not advertised), an anonymous visitor the login page.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.cache import cache
from django.db.models import Count, Q, Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from kombu import Connection
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from portal.observability import FAILURES_KEY
from reviews.models import Analysis, AuditEvent, StagedVersion, SyncStatus

logger = logging.getLogger(__name__)

BROKER_TIMEOUT_SECONDS = 2
ANALYSIS_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
DECISION_OUTCOMES = {
    "stage.approved": "approved",
    "stage.rejected": "rejected",
    "decision.refused": "refused",
    "decision.failed": "failed",
    "decision.wrong_code": "wrong_code",
    "decision.cancelled": "cancelled",
}
COUNTED_TASKS = (
    "reviews.tasks.sync_stages_task",
    "reviews.tasks.download_stage_tarball_task",
    "reviews.tasks.analyse_stage_task",
    "reviews.tasks.notifications_sweep_task",
    "reviews.tasks.reminders_task",
    "reviews.tasks.digests_task",
    "reviews.tasks.send_notification_task",
    "reviews.tasks.deliver_webhook_task",
    "reviews.tasks.verify_published_digest_task",
)


class GreenroomCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        yield sync_lag()
        yield from pending_work()
        queues = queue_depths()
        if queues is not None:
            yield queues
        yield analysis_durations()
        yield task_failures()
        yield decision_outcomes()


def sync_lag() -> GaugeMetricFamily:
    lag = SyncStatus.lag_seconds()
    metric = GaugeMetricFamily(
        "greenroom_sync_lag_seconds",
        "Seconds since the last sync pass that listed the whole registry began (NaN: never).",
    )
    metric.add_metric([], float("nan") if lag is None else lag)
    return metric


def pending_work() -> Iterator[GaugeMetricFamily]:
    counts = StagedVersion.objects.filter(state=StagedVersion.State.PENDING).aggregate(
        stages=Count("id"),
        downloads=Count("id", filter=Q(integrity=StagedVersion.Integrity.PENDING)),
    )
    stages = GaugeMetricFamily("greenroom_pending_stages", "Stages waiting for a decision.")
    stages.add_metric([], counts["stages"])
    yield stages
    downloads = GaugeMetricFamily(
        "greenroom_pending_downloads", "Pending stages whose tarball has no verdict yet."
    )
    downloads.add_metric([], counts["downloads"])
    yield downloads


def queue_depths() -> GaugeMetricFamily | None:
    """Messages waiting in each Celery queue; None (left out) when the broker does not answer."""
    metric = GaugeMetricFamily(
        "greenroom_queue_depth", "Messages waiting in a Celery queue.", labels=["queue"]
    )
    names = (settings.CELERY_TASK_DEFAULT_QUEUE, settings.GREENROOM_ANALYSIS_QUEUE)
    broker = Connection(
        settings.CELERY_BROKER_URL,
        transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS,
        connect_timeout=BROKER_TIMEOUT_SECONDS,
    )
    try:
        broker.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_SECONDS)
        channel: Any = broker.default_channel  # a kombu virtual channel (Redis, filesystem)
        for name in names:
            try:
                waiting = channel.queue_declare(queue=name, passive=True).message_count
            except broker.channel_errors:
                waiting = 0  # a queue the broker never saw holds nothing
            metric.add_metric([name], waiting)
    except Exception as e:  # a broker that does not answer: said by the metric's absence
        logger.warning("metrics: queue depth unavailable: %s", type(e).__name__)
        return None
    finally:
        broker.release()
    return metric


def analysis_durations() -> HistogramMetricFamily:
    finished = Analysis.objects.filter(seconds__isnull=False)
    buckets = finished.aggregate(
        total=Sum("seconds"),
        count=Count("id"),
        **{
            f"le_{i}": Count("id", filter=Q(seconds__lte=b)) for i, b in enumerate(ANALYSIS_BUCKETS)
        },
    )
    metric = HistogramMetricFamily(
        "greenroom_analysis_duration_seconds", "How long whole-package analyses took."
    )
    points = [(str(b), buckets[f"le_{i}"]) for i, b in enumerate(ANALYSIS_BUCKETS)]
    points.append(("+Inf", buckets["count"]))
    metric.add_metric([], points, sum_value=buckets["total"] or 0.0)
    return metric


def task_failures() -> CounterMetricFamily:
    metric = CounterMetricFamily(
        "greenroom_task_failures",
        "Celery tasks that failed for good (after their retries), since the cache was cleared.",
        labels=["task"],
    )
    found = cache.get_many([FAILURES_KEY.format(name) for name in COUNTED_TASKS])
    for name in COUNTED_TASKS:
        metric.add_metric([name], float(found.get(FAILURES_KEY.format(name), 0)))
    return metric


def decision_outcomes() -> CounterMetricFamily:
    metric = CounterMetricFamily(
        "greenroom_decisions",
        "Approve and reject attempts made in the portal, by outcome (from the audit trail).",
        labels=["outcome"],
    )
    counted = dict(
        AuditEvent.objects.filter(action__in=DECISION_OUTCOMES)
        .values_list("action")
        .annotate(n=Count("id"))
        .values_list("action", "n")
    )
    for action, outcome in DECISION_OUTCOMES.items():
        metric.add_metric([outcome], float(counted.get(action, 0)))
    return metric


def allowed(request: HttpRequest) -> bool:
    expected = settings.GREENROOM_METRICS_TOKEN
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if expected and scheme.lower() == "bearer" and token:
        return hmac.compare_digest(token.strip().encode(), expected.encode())
    return bool(request.user.is_authenticated and request.user.is_staff)


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not allowed(request):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        raise Http404("No such page")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GreenroomCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
