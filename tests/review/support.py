"""Building reviewed stages for the page tests: through a live dev registry (stage, sync,
download, analyse, as the tasks do), or straight from tarball bytes when no registry matters."""

from __future__ import annotations

import base64
import hashlib
import io
import uuid
from typing import Any

from django.core.management import call_command
from django.utils import timezone

from devregistry.testing import LiveRegistry
from reviews.mirror import sync
from reviews.mirror.registry import DownloadedTarball, RegistryClient
from reviews.mirror.tarballs import store_tarball
from reviews.models import (
    Analysis,
    PublishedTarball,
    StageBaseline,
    StagedVersion,
    Tarball,
)
from reviews.review import analysis, risk
from tests.support import packages

MAINTAINER = "alice"


class Registry:
    """The registry side: a maintainer who publishes and stages, and the portal's sync token."""

    def __init__(self, live: LiveRegistry) -> None:
        self.live = live
        self.url = live.url
        live.add_user(MAINTAINER)
        self.token = live.token(MAINTAINER)
        self.sync_token = live.token(MAINTAINER, read_only=True)

    def publish(
        self, name: str, version: str, files: dict[str, Any] | None = None, **kwargs: Any
    ) -> bytes:
        tarball = kwargs.pop("tarball", None) or packages.build_tarball(
            name, version, files, kwargs.pop("manifest", None)
        )
        packages.publish(self.url, self.token, name, version, tarball=tarball, **kwargs)
        return tarball

    def stage(
        self,
        name: str,
        version: str,
        files: dict[str, Any] | None = None,
        *,
        tarball: bytes | None = None,
        tag: str = "latest",
        manifest: dict[str, Any] | None = None,
        analyse: bool = True,
    ) -> StagedVersion:
        """Stage at the registry (as CI does), then sync, download and analyse (as the tasks
        do, by calling their functions)."""
        tarball = (
            tarball
            if tarball is not None
            else packages.build_tarball(name, version, files, manifest)
        )
        stage_id = packages.stage(self.url, self.token, name, version, tarball=tarball, tag=tag)
        with RegistryClient(self.url, self.sync_token, timeout=5) as client:
            recorded = sync.record_new_stage(client.get_stage(stage_id))
            assert recorded is not None
            sync.download_stage(recorded.pk, client)
            if analyse:
                analysis.analyse_stage(recorded.pk, client=client)
        return StagedVersion.objects.get(pk=recorded.pk)

    def stage_only(self, name: str, version: str, *, tarball: bytes | None = None) -> str:
        """Stage at the registry and nothing more: the portal finds it on its next pass."""
        tarball = tarball if tarball is not None else packages.build_tarball(name, version)
        return packages.stage(self.url, self.token, name, version, tarball=tarball)

    def sync_pass(self) -> str:
        """What beat and the workers do: `manage.py sync_stages` (one pass and the downloads),
        then the analysis of every stage that needs one. The command's output line."""
        out = io.StringIO()
        call_command("sync_stages", stdout=out)
        with self.client() as client:
            for staged_version_id in analysis.stages_needing_analysis():
                analysis.analyse_stage(staged_version_id, client=client)
        return out.getvalue()

    def client(self) -> RegistryClient:
        return RegistryClient(self.url, self.sync_token, timeout=5)


def stored(data: bytes) -> Tarball:
    """Tarball bytes saved as a downloaded tarball would be."""
    downloaded = DownloadedTarball(
        io.BytesIO(data),
        len(data),
        hashlib.sha1(data, usedforsecurity=False).hexdigest(),
        hashlib.sha256(data).hexdigest(),
        "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode(),
    )
    return store_tarball(downloaded)


def make_stage(name: str, version: str) -> StagedVersion:
    return StagedVersion.objects.create(
        stage_id=uuid.uuid4(),
        package_name=name,
        version=version,
        tag="latest",
        actor="ci",
        shasum="0" * 40,
        staged_at=timezone.now(),
    )


def reviewed(
    stage: StagedVersion,
    staged: bytes,
    baseline: bytes | None = None,
    *,
    baseline_version: str = "1.0.0",
) -> Analysis:
    """Give the stage these tarball bytes and a baseline, analysed by the real pipeline
    (no registry: the baseline is recorded as the highest published version below)."""
    staged_tarball = stored(staged)
    stage.tarball = staged_tarball
    stage.integrity = StagedVersion.Integrity.VERIFIED
    stage.save(update_fields=["tarball", "integrity"])
    baseline_tarball = stored(baseline) if baseline is not None else None
    if baseline_tarball is not None:
        PublishedTarball.objects.update_or_create(
            package_name=stage.package_name,
            version=baseline_version,
            defaults={
                "tarball": baseline_tarball,
                "verdict": StagedVersion.Integrity.VERIFIED,
                "reason": "dist.integrity and dist.shasum and package.json match",
            },
        )
    found = analysis.analysis_for(baseline_tarball, staged_tarball)
    analysis.run_analysis(found.pk)
    StageBaseline.objects.update_or_create(
        stage=stage,
        defaults={
            "staged_tarball": staged_tarball,
            "version": baseline_version if baseline is not None else "",
            "rule": "below" if baseline is not None else "none",
            "published": [baseline_version] if baseline is not None else [],
            "analysis": found,
        },
    )
    risk.record_stage_risk(stage, None)  # no packument: no release findings
    found.refresh_from_db()
    return found
