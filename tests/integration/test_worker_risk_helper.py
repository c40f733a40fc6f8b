"""In a real Celery worker, the risk rules' forked helper (`reviews.inspect.rules.forked`)
parses part of a release's code and the stored findings are the ones one process finds: a fork
from a worker with other threads running answers, and nothing it found is lost."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from reviews.inspect.rules import ScanLimits
from tests.inspect.builders import make_tarball
from tests.inspect.rules_support import scan_tarballs, with_manifest
from tests.inspect.test_rules_helper import NEW, OLD
from tests.integration.conftest import SharedDatabase, Worker, wait_for
from tests.mirror.live import Registry

pytestmark = pytest.mark.integration

NAME = "forked-rules"
SYNC_TASK = "reviews.tasks.sync_stages_task"
ANALYSIS = (
    "SELECT a.status, a.risk_findings FROM reviews_analysis a"
    " JOIN reviews_stagebaseline b ON a.id = b.analysis_id"
    " JOIN reviews_stagedversion s ON s.id = b.stage_id"
    " WHERE s.package_name = %s"
)


def stored(db: SharedDatabase) -> dict[str, Any] | None:
    rows = db.rows(ANALYSIS, (NAME,))
    return rows[0] if rows and rows[0]["status"] in ("done", "failed") else None


@pytest.fixture
def worker(start_worker: Any) -> Worker:
    # every release with two files to parse shares them with a helper
    worker: Worker = start_worker(GREENROOM_RULES_HELPER_SHARE_BYTES="1")
    return worker


def test_the_workers_stored_findings_are_those_of_one_process(
    registry: Registry, shared_db: SharedDatabase, worker: Worker
) -> None:
    old = make_tarball(with_manifest(OLD, "1.0.0", name=NAME))
    new = make_tarball(with_manifest(NEW, "1.1.0", name=NAME))
    registry.publish(NAME, "1.0.0", tarball=old)
    registry.stage(NAME, "1.1.0", tarball=new)

    worker.send(SYNC_TASK)
    wait_for(lambda: stored(shared_db) is not None, 90, "the analysis", worker.output)

    row = stored(shared_db)
    assert row is not None
    assert row["status"] == "done", worker.output()
    findings = row["risk_findings"]
    findings = json.loads(findings) if isinstance(findings, str) else findings
    alone = scan_tarballs(old, new, ScanLimits(helper_share_bytes=0)).findings
    assert findings == [finding.to_data() for finding in alone]
    assert {f["rule"] for f in findings} >= {"code.child-process", "code.dynamic-code"}
    assert not [f for f in findings if f["rule"] == "scan.not-scanned"]
    # and the helper did take files (with a refused fork, the worker scans them all alike)
    said = re.search(r"(\d+) scanned by the helper", worker.output())
    assert said is not None, worker.output()
    assert int(said.group(1)) >= 1
