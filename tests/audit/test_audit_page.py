import csv
import io
import json
from typing import Any

from django.test import Client
from django.urls import reverse

from reviews.audit import trail as audit
from reviews.audit.trail import Action
from tests.personas import World


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def seed_trail(w: World) -> None:
    audit.record(Action.STAGE_SEEN, stage=w.acme_stage)
    audit.record(Action.TARBALL_VERIFIED, stage=w.acme_stage, payload={"sha1": "ab"})
    audit.record(Action.STAGE_SEEN, stage=w.pad_stage)
    audit.record(Action.STAGE_SEEN, stage=w.orphan_stage)
    audit.record(Action.PATTERN_ADDED, target="team:pad", payload={"pattern": "left-pad"})


def export(client: Client, fmt: str, **filters: str) -> list[dict[str, Any]]:
    response = client.get(reverse("reviews:audit-export", args=[fmt]), filters)
    body = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
    if fmt == "json":
        rows: list[dict[str, Any]] = json.loads(body)
        return rows
    return list(csv.DictReader(io.StringIO(body)))


def test_outsider_sees_no_entries_of_other_teams(world: World):
    seed_trail(world)
    client = login(world.outsider)
    body = client.get(reverse("reviews:audit")).content.decode()
    assert "left-pad" in body
    assert "@acme/ui" not in body
    assert "nobody-owns-this" not in body
    rows = export(client, "json")
    assert {row["package_name"] or row["target"] for row in rows} == {"left-pad", "team:pad"}


def test_staff_see_everything(world: World):
    seed_trail(world)
    rows = export(login(world.staff), "json")
    assert len([row for row in rows if row["action"] != "auth.login"]) == 5


def test_filters_apply_to_page_and_export_alike(world: World):
    seed_trail(world)
    client = login(world.approver)
    filters = {"package": "@acme/ui", "action": "tarball.verified"}
    body = client.get(reverse("reviews:audit"), filters).content.decode()
    rows = export(client, "json", **filters)
    assert [row["action"] for row in rows] == ["tarball.verified"]
    assert body.count("<code>tarball.verified</code>") == 1
    assert "<code>stage.seen</code>" not in body
    csv_rows = export(client, "csv", **filters)
    assert [row["hash"] for row in csv_rows] == [row["hash"] for row in rows]


def test_date_range_filter(world: World):
    seed_trail(world)
    client = login(world.staff)
    assert len(export(client, "json", since="2000-01-01", until="2000-12-31")) == 0
    assert len(export(client, "json", since="2000-01-01", action="stage.seen")) == 3


def test_stage_page_shows_its_history(world: World):
    seed_trail(world)
    url = reverse("reviews:stage", args=[world.acme_stage.stage_id])
    body = login(world.viewer).get(url).content.decode()
    assert "<code>tarball.verified</code>" in body
    assert body.count("<code>stage.seen</code>") == 1


def test_csv_cells_cannot_become_formulas(world: World):
    audit.record(Action.SETTINGS_CHANGED, target="=HYPERLINK(1)")
    rows = export(login(world.staff), "csv", action="settings.changed")
    assert rows[0]["target"] == "'=HYPERLINK(1)"


# --- the page for people: event names in words, folded details, short digests, paging -------


def test_every_action_has_words():
    from reviews.audit.words import ACTION_WORDS

    assert set(ACTION_WORDS) == set(Action)
    assert len(set(ACTION_WORDS.values())) == len(Action)  # no two read the same


def test_an_event_reads_as_words_with_its_details_folded(world: World):
    sha1 = "b" * 40
    integrity = "sha512-" + "Q" * 86 + "=="
    audit.record(
        Action.TARBALL_VERIFIED,
        stage=world.acme_stage,
        payload={"sha1": sha1, "integrity": integrity, "note": "<b>bold</b>"},
    )
    body = login(world.viewer).get(reverse("reviews:audit")).content.decode()

    assert '<span class="event-name">Tarball verified</span>' in body
    assert "<details>" in body
    assert "<dt>sha1</dt>" in body
    assert f'<code class="hash" title="{sha1}" data-copy="{sha1}">{"b" * 12}…</code>' in body
    assert f'title="{integrity}"' in body
    assert ">sha512-QQQQQQQQQQ…</code>" in body
    assert "&lt;b&gt;bold&lt;/b&gt;" in body
    assert "<b>bold</b>" not in body


def test_no_two_controls_or_columns_share_a_label(world: World):
    import re

    body = login(world.staff).get(reverse("reviews:audit")).content.decode()
    labels = [" ".join(text.split()) for text in re.findall(r"<label>([^<]+)<", body)]
    headers = re.findall(r"<th[^>]*>([^<]+)</th>", body)
    assert len(labels) == len(set(labels))
    assert set(labels) & set(headers) <= {"Event"}  # that filter is the column's own
    assert "From" not in labels + headers  # once both the IP column and a date filter
    assert "IP address" in headers


def test_fifty_entries_a_page(world: World):
    for _ in range(51):
        audit.record(Action.STAGE_SEEN, stage=world.acme_stage)
    client = login(world.viewer)

    first = client.get(reverse("reviews:audit")).content.decode()
    second = client.get(reverse("reviews:audit"), {"page": 2}).content.decode()

    assert first.count('<tr class="audit-event">') == 50
    assert "Page 1 of 2" in first
    assert second.count('<tr class="audit-event">') == 1
