from datetime import timedelta
from unittest import mock

import pytest
from django.db import OperationalError
from django.urls import reverse
from django.utils import timezone

from reviews.mirror.sync import SyncSummary, record_pass
from reviews.models import SyncStatus


def test_healthy_when_database_and_broker_answer(client, db):
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    assert response.json() == {
        "ok": True,
        "database": True,
        "broker": True,
        "sync_lag_seconds": None,  # no sync pass has completed yet
    }


def test_reports_the_sync_lag_since_the_last_complete_pass(client, db):
    started = timezone.now() - timedelta(seconds=90)
    record_pass(started, SyncSummary(listed=3, complete=True))
    record_pass(timezone.now(), SyncSummary(listed=3, error="the registry answered 502"))

    lag = client.get(reverse("healthz")).json()["sync_lag_seconds"]

    assert 90 <= lag < 120  # an incomplete pass since does not count
    assert SyncStatus.objects.get().last_error == "the registry answered 502"


def test_a_slower_older_pass_does_not_move_the_completion_back(db):
    newer = timezone.now()
    record_pass(newer, SyncSummary(complete=True))
    record_pass(newer - timedelta(minutes=5), SyncSummary(complete=True))
    assert SyncStatus.objects.get().last_completed_at == newer


def test_unhealthy_when_broker_is_unreachable(client, db, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    response = client.get(reverse("healthz"))
    assert response.status_code == 503
    assert response.json()["broker"] is False


@pytest.mark.django_db
def test_unhealthy_when_database_fails(client):
    with mock.patch("portal.health.connection.cursor", side_effect=OperationalError("down")):
        response = client.get(reverse("healthz"))
    assert response.status_code == 503
    assert response.json()["database"] is False


def test_only_get(client, db):
    assert client.post(reverse("healthz")).status_code == 405
