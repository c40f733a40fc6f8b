from __future__ import annotations

import sqlite3
from typing import Any

from django.apps import AppConfig
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created


def use_sqlites_real_variable_limit(
    sender: object, connection: BaseDatabaseWrapper, **kwargs: Any
) -> None:
    """Django 5.2 assumes SQLite's old limit of 999 variables per statement, which splits a
    bulk insert of one listing page into several; SQLite 3.32+ allows 32,766 (Django 6 asks
    SQLite too). One page is then one INSERT on SQLite as on PostgreSQL."""
    if connection.vendor != "sqlite" or connection.connection is None:
        return
    limit = connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    connection.features.max_query_params = limit


class ReviewsConfig(AppConfig):
    name = "reviews"
    verbose_name = "Reviews"

    def ready(self) -> None:
        from reviews import signals  # noqa: F401 (connects the audit receivers)

        connection_created.connect(use_sqlites_real_variable_limit)
