"""Settings for the test suite: the local defaults, plus whatever the environment sets
(CI sets DATABASE_URL and REDIS_URL to run the same suite on PostgreSQL and Redis)."""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("GREENROOM_VAR_DIR", tempfile.mkdtemp(prefix="greenroom-test-"))
# The download throttle is tested on its own (tests/mirror/test_throttle.py); elsewhere it must
# neither slow the suite nor let one test's slots (or a killed worker's) hold up the next.
os.environ.setdefault("GREENROOM_DOWNLOAD_CONCURRENCY", "64")
os.environ.setdefault("GREENROOM_DOWNLOAD_PAUSE", "0")

from portal.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
Path(STATIC_ROOT).mkdir(parents=True, exist_ok=True)  # noqa: F405 (WhiteNoise warns when absent)
