import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _connect_observability() -> None:
    # Imported late: portal.observability reads Django's settings and cache.
    from portal import observability

    signals.setup_logging.connect(observability.configure_worker_logging, weak=False)
    signals.task_prerun.connect(observability.task_started, weak=False)
    signals.task_postrun.connect(observability.task_ended, weak=False)
    signals.task_failure.connect(observability.task_failed, weak=False)


_connect_observability()


def _count_lines_with_numpy(**_kwargs: object) -> None:
    # Imported late, as the app loads before Django. A worker analyses package after package:
    # numpy's import (about 0.1 s, once) pays for itself within the first few.
    from reviews.inspect.archive import count_lines_with_numpy

    count_lines_with_numpy()


signals.worker_init.connect(_count_lines_with_numpy, weak=False)
