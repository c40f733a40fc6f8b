from unittest import mock

import pytest
from django.db import OperationalError
from django.urls import reverse


def test_healthy_when_database_and_broker_answer(client, db):
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    assert response.json() == {"ok": True, "database": True, "broker": True}


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
