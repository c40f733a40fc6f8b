"""The demo registry (`python -m devregistry seed`) through the whole pipeline: sync, download,
analyse. Each of its six stages must show the findings a reviewer needs (issue 15): the .env in
@demo/widgets, tiny-colors' setup script that reads NPM_TOKEN, sends it over HTTPS and runs the
answer, fmt-kit's native binary and its main switched to a minified file, date-tools' tag
downgrade."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import LazySettings
from django.urls import reverse

from devregistry import seed
from devregistry.testing import LiveRegistry
from reviews.inspect.rules import Finding, Severity, Status
from reviews.mirror import sync
from reviews.models import AuditEvent, StageBaseline, StagedVersion
from reviews.review import analysis
from reviews.review.risk import stage_findings
from tests.personas import World

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(tmp_path: Path, settings: LazySettings) -> Iterator[dict[str, StagedVersion]]:
    data = tmp_path / "registry"
    seeded = seed.seed(data)
    with LiveRegistry(data) as live:
        settings.GREENROOM_REGISTRY_URL = live.url
        settings.GREENROOM_SYNC_TOKEN = seeded.sync_token
        sync.sync_stages()
        for stage in StagedVersion.objects.all():
            assert sync.download_stage(stage.pk) == "verified"
            analysis.analyse_stage(stage.pk)
        yield {s.package_name: s for s in StagedVersion.objects.all()}


def findings(stage: StagedVersion) -> list[Finding]:
    chosen = StageBaseline.objects.select_related("analysis").get(stage=stage)
    return stage_findings(chosen.analysis, chosen.release_findings)


def new(stage: StagedVersion) -> set[tuple[str, str, Severity]]:
    return {(f.rule, f.where, f.severity) for f in findings(stage) if f.status is Status.NEW}


def test_the_demo_stages_show_what_a_reviewer_must_catch(demo):
    assert ("content.secret-file", ".env", Severity.HIGH) in new(demo["@demo/widgets"])
    assert ("content.trojan-source", "index.js:3", Severity.HIGH) in new(demo["@demo/widgets"])

    tiny = new(demo["tiny-colors"])
    assert ("code.exfiltration", "scripts/setup.js:4", Severity.CRITICAL) in tiny
    assert ("code.env-token", "scripts/setup.js:3", Severity.MEDIUM) in tiny
    assert ("code.child-process", "scripts/setup.js:7", Severity.HIGH) in tiny
    assert ("lifecycle.install-script", "package.json:8", Severity.HIGH) in tiny
    assert ("release.new-publisher", "package", Severity.MEDIUM) in tiny  # ci-bot after alice

    fmt = new(demo["fmt-kit"])
    assert ("content.native-binary", "native/fmt.node", Severity.HIGH) in fmt
    assert ("manifest.entry-point", "package.json:5", Severity.HIGH) in fmt

    assert ("release.tag-downgrade", "package", Severity.HIGH) in new(demo["date-tools"])
    assert {f.status for f in findings(demo["brand-new-thing"])} <= {Status.NEW}


def test_each_stage_has_its_risk_and_an_audit_entry(demo):
    risks = {name: StageBaseline.objects.get(stage=stage).risk for name, stage in demo.items()}

    assert risks == {
        "tiny-colors": "critical",
        "fmt-kit": "high",
        "@demo/widgets": "high",
        "date-tools": "high",
        "brand-new-thing": "",
        "query-lens": "",
    }
    entry = AuditEvent.objects.get(stage=demo["tiny-colors"], action="stage.analysed")
    assert entry.payload["risk"] == "critical"
    assert entry.payload["findings"]["critical"] == 1
    assert entry.payload["findings"]["high"] >= 3
    assert entry.payload["baseline"] == "1.2.0"


def test_analysing_again_records_no_second_audit_entry(demo):
    stage = demo["tiny-colors"]

    analysis.analyse_stage(stage.pk)

    assert AuditEvent.objects.filter(stage=stage, action="stage.analysed").count() == 1


def test_the_stage_page_leads_with_the_risk(demo, client, world: World):
    client.force_login(world.staff)
    stage = demo["tiny-colors"]

    html = client.get(reverse("reviews:stage", args=[stage.stage_id])).content.decode()

    assert html.index('id="risk"') < html.index('class="integrity')
    assert 'Risk: <span class="risk-badge risk-badge-critical">critical</span>' in html
    assert "scripts/setup.js:4</code></a>" in html


def test_fmt_kit_counts_the_same_changed_files_in_the_summary_and_the_tree(
    demo, client, world: World
):
    """Issue 17: the summary said 6 files (the staged package's) while the tree listed 7
    changed ones (the removed lib/ file is only in the baseline). Both now count changed files,
    and the title carries the tag."""
    client.force_login(world.staff)
    stage = demo["fmt-kit"]

    html = client.get(reverse("reviews:stage", args=[stage.stage_id])).content.decode()

    rows = html.count('<li class="gr-file ')
    assert f"<strong>{rows}</strong> changed files:" in html
    assert f"{rows} changed files." in html
    assert "The staged package holds 6 files" in html
    h1 = html[html.index("<h1>") : html.index("</h1>")]
    assert "latest" in h1
