import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

application = get_wsgi_application()

# What a worker loads once (Django, the app and its imports, the URLconf's views: about
# 120,000 objects) lives as long as the worker. Frozen, the collector's full passes skip it;
# unfrozen, each full pass walked it all, about 100 ms of CPU falling on whichever request
# tripped it (a file's first view allocates enough to: bench/view_figures.py).
get_resolver().url_patterns  # noqa: B018 (imports every view now, not on the first request)
gc.collect()
gc.freeze()
