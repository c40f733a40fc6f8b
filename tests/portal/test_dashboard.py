from django.urls import reverse

from reviews.models import StagedVersion

DASHBOARD = reverse("reviews:dashboard")


def test_anonymous_is_sent_to_login(client, db):
    response = client.get(DASHBOARD)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_lists_pending_stages_with_their_metadata(member_client, make_stage):
    make_stage(
        package_name="left-pad",
        version="1.4.0",
        tag="next",
        actor="ci-bot",
        actor_type="trusted automation",
        integrity=StagedVersion.Integrity.VERIFIED,
    )
    response = member_client.get(DASHBOARD)
    body = response.content.decode()
    assert response.status_code == 200
    for text in ("left-pad", "1.4.0", "next", "ci-bot (trusted automation)", "Verified", " ago)"):
        assert text in body


def test_actor_without_type_shows_only_the_name(member_client, make_stage):
    make_stage(actor="alice", actor_type="")
    body = member_client.get(DASHBOARD).content.decode()
    assert "alice" in body
    assert "alice (" not in body


def test_resolved_stages_are_hidden_by_default_and_reachable(member_client, make_stage):
    make_stage(package_name="gone-pkg", state=StagedVersion.State.APPROVED)
    assert "gone-pkg" not in member_client.get(DASHBOARD).content.decode()
    assert "gone-pkg" in member_client.get(DASHBOARD, {"state": "approved"}).content.decode()
    assert "gone-pkg" in member_client.get(DASHBOARD, {"state": "all"}).content.decode()


def test_filters_by_package(member_client, make_stage):
    make_stage(package_name="@acme/ui")
    make_stage(package_name="left-pad")
    body = member_client.get(DASHBOARD, {"package": "acme"}).content.decode()
    assert "@acme/ui" in body
    assert "left-pad" not in body


def test_unknown_state_falls_back_to_pending(member_client, make_stage):
    make_stage(package_name="waiting")
    response = member_client.get(DASHBOARD, {"state": "<bogus>"})
    assert "waiting" in response.content.decode()
    assert "&lt;bogus&gt;" not in response.content.decode()


def test_paginates_newest_first(member_client, make_stage):
    for _ in range(55):
        make_stage()
    newest = StagedVersion.objects.order_by("-staged_at")[0]
    oldest = StagedVersion.objects.order_by("staged_at")[0]
    first = member_client.get(DASHBOARD).content.decode()
    second = member_client.get(DASHBOARD, {"page": 2}).content.decode()
    assert f">{newest.package_name}<" in first
    assert f">{oldest.package_name}<" not in first
    assert f">{oldest.package_name}<" in second
    assert "Page 2 of 2 (55 stages)" in second


def test_query_count_does_not_grow_with_stages(
    member_client, make_stage, django_assert_max_num_queries
):
    make_stage()
    with django_assert_max_num_queries(10) as few:
        member_client.get(DASHBOARD)
    for _ in range(40):
        make_stage()
    with django_assert_max_num_queries(len(few.captured_queries)):
        member_client.get(DASHBOARD)


def test_registry_text_is_escaped(member_client, make_stage):
    make_stage(actor="<script>alert(1)</script>", tag="<b>x</b>")
    body = member_client.get(DASHBOARD).content.decode()
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
