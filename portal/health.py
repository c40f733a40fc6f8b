"""`/healthz`: 200 when the database and the Celery broker answer, 503 otherwise; it also says
how far behind the registry the mirror may be (`sync_lag_seconds`: since the last complete sync
pass began; null if none ever completed). Lag alone does not make it fail: a registry that is
down is not the portal's fault, and /metrics is where to alert on it."""

import logging

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from kombu import Connection

from reviews.models import SyncStatus

logger = logging.getLogger(__name__)

BROKER_TIMEOUT_SECONDS = 2


def database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return bool(cursor.fetchone() == (1,))
    except Exception:
        logger.exception("healthz: database check failed")
        return False


def broker_ok() -> bool:
    broker = Connection(
        settings.CELERY_BROKER_URL,
        transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS,
        connect_timeout=BROKER_TIMEOUT_SECONDS,
    )
    try:
        broker.ensure_connection(max_retries=1, interval_start=0, timeout=BROKER_TIMEOUT_SECONDS)
        return True
    except Exception:
        # The message names the failing host; the URL itself may carry a password.
        logger.warning("healthz: broker check failed", exc_info=True)
        return False
    finally:
        broker.release()


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"database": database_ok(), "broker": broker_ok()}
    status = 200 if all(checks.values()) else 503
    return JsonResponse(
        {
            "ok": status == 200,
            **checks,
            "sync_lag_seconds": sync_lag() if checks["database"] else None,
        },
        status=status,
    )


def sync_lag() -> float | None:
    try:
        lag = SyncStatus.lag_seconds()
    except Exception:
        logger.exception("healthz: the sync status could not be read")
        return None
    return None if lag is None else round(lag, 1)
