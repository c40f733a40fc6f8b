import uuid

from django.urls import reverse

from reviews.models import StagedVersion, Tarball


def stage_url(stage: StagedVersion) -> str:
    return reverse("reviews:stage", args=[stage.stage_id])


def test_anonymous_is_sent_to_login(client, make_stage):
    response = client.get(stage_url(make_stage()))
    assert response.status_code == 302


def test_unknown_stage_is_404(member_client, db):
    response = member_client.get(reverse("reviews:stage", args=[uuid.uuid4()]))
    assert response.status_code == 404


def test_shows_metadata_and_verified_tarball(member_client, make_stage):
    tarball = Tarball.objects.create(
        sha256="a" * 64,
        sha1="b" * 40,
        integrity="sha512-xyz",
        size=2048,
        storage_name="sha256/aa/x.tgz",
    )
    stage = make_stage(
        package_name="@acme/ui",
        version="2.0.0-rc.1",
        tag="next",
        integrity=StagedVersion.Integrity.VERIFIED,
        tarball=tarball,
    )
    body = member_client.get(stage_url(stage)).content.decode()
    for text in (
        "@acme/ui@2.0.0-rc.1",
        str(stage.stage_id),
        "next",
        "Integrity: Verified",
        "sha512-xyz",
        "2 KiB",  # binary units everywhere (issue 17)
        stage.shasum,
    ):
        assert text in body


def test_mismatch_is_shown_loudly_with_its_reason(member_client, make_stage):
    stage = make_stage(
        integrity=StagedVersion.Integrity.MISMATCH,
        integrity_reason="SHA-1 of the tarball is 1234, the registry said 5678",
    )
    body = member_client.get(stage_url(stage)).content.decode()
    assert "integrity-mismatch" in body
    assert "SHA-1 of the tarball is 1234, the registry said 5678" in body


def test_approved_elsewhere_with_differing_published_digest(member_client, make_stage):
    stage = make_stage(
        state=StagedVersion.State.APPROVED,
        resolved_elsewhere=True,
        published_shasum="f" * 40,
        published_shasum_matches=False,
    )
    body = member_client.get(stage_url(stage)).content.decode()
    assert "Approved outside Greenroom" in body
    assert "differs from the staged tarball" in body
