"""The JSON API for CI and release tools (django-ninja, /api/v1/), and the API tokens it takes."""
