"""Fault injection for tests: rules in a JSON file, re-read on every request.

A rule (every key optional but `path`):
  {"method": "GET", "path": "<regex, re.search on the URL path without the query>",
   "delay": 1.5, "status": 500 | 502 | 429, "retry_after": 2,
   "malformed": true, "truncate": true, "times": 3}

The first rule that matches and still has `times` left applies. `delay` sleeps first, then
`status` answers that error, `malformed` answers 200 with a broken JSON body, `truncate`
lets the request run but sends only half of the body it announced. Hit counts live in memory,
keyed by rule index and the file's mtime, so rewriting the file starts them again.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Fault:
    delay: float = 0.0
    status: int | None = None
    retry_after: int | None = None
    malformed: bool = False
    truncate: bool = False


class FaultRules:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._hits: dict[tuple[int, int], int] = {}
        self._cache: tuple[int, list[dict[str, Any]]] | None = None

    def match(self, method: str, path: str) -> Fault | None:
        with self._lock:
            loaded = self._load()
            if loaded is None:
                return None
            mtime, rules = loaded
            for index, rule in enumerate(rules):
                if not _matches(rule, method, path):
                    continue
                key = (mtime, index)
                times = rule.get("times")
                if times is not None and self._hits.get(key, 0) >= int(times):
                    continue
                self._hits[key] = self._hits.get(key, 0) + 1
                return Fault(
                    delay=float(rule.get("delay", 0)),
                    status=int(rule["status"]) if "status" in rule else None,
                    retry_after=int(rule["retry_after"]) if "retry_after" in rule else None,
                    malformed=bool(rule.get("malformed", False)),
                    truncate=bool(rule.get("truncate", False)),
                )
            return None

    def _load(self) -> tuple[int, list[dict[str, Any]]] | None:
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return None
        if self._cache is None or self._cache[0] != mtime:
            try:
                rules = json.loads(self.path.read_text())
            except (OSError, ValueError) as exc:
                print(
                    f"devregistry: ignoring unreadable fault file {self.path}: {exc}",
                    file=sys.stderr,
                )
                return None
            if not isinstance(rules, list):
                print(f"devregistry: fault file {self.path} must hold a JSON list", file=sys.stderr)
                return None
            self._cache = (mtime, [r for r in rules if isinstance(r, dict)])
        return self._cache


def _matches(rule: dict[str, Any], method: str, path: str) -> bool:
    wanted = rule.get("method")
    if wanted and str(wanted).upper() != method.upper():
        return False
    try:
        return re.search(str(rule.get("path", "")), path) is not None
    except re.error:
        return False
