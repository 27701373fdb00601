"""Registered model versions keep their numbers through placeholders, and a placeholder is never taken for a version.

A source version deleted leaves a gap; dbsync creates a placeholder version on the target to use up that number,
then deletes it. A run that dies in between leaves the placeholder behind: the next cycle deletes it and makes the
real version, instead of taking the placeholder (a wrong number and artifact) for it for good.
"""

from __future__ import annotations

from conftest import Pair
from databricks.sdk import WorkspaceClient
from databricks.sdk.service import ml

KINDS = ["registered_models"]


def _source_with_a_gap(pair: Pair) -> None:
    """Source model `churn` with versions 1 and 3 (2 was deleted)."""
    pair.src.model_registry.create_model("churn")
    for i in range(1, 4):
        pair.src.model_registry.create_model_version("churn", f"dbfs:/models/churn/{i}", description=f"v{i}")
    pair.src.model_registry.delete_model_version("churn", "2")


def _versions(w: WorkspaceClient) -> dict[str, tuple[str, str, dict[str, str]]]:
    """{number: (artifact source, description, tags)} of the target's `churn` versions."""
    return {
        v.version or "": (v.source or "", v.description or "", {t.key or "": t.value or "" for t in v.tags or []})
        for v in w.model_registry.search_model_versions(filter="name='churn'")
    }


def test_a_placeholder_left_by_a_failed_delete_is_removed_and_the_real_version_made(pair: Pair) -> None:
    _source_with_a_gap(pair)
    # The placeholder for number 2 is created, then its delete fails: the cycle ends with it on the target.
    pair.target.set_faults(rate_500=1, path_prefix="/api/2.0/mlflow/model-versions/delete", max_faults=1)
    first = pair.sync(only=KINDS)["registered_models"]
    pair.target.set_faults()
    assert first.errors == 1, first
    assert sorted(_versions(pair.dst)) == ["1", "2"]

    report = pair.sync(only=KINDS)["registered_models"]

    assert report.errors == 0, report
    versions = _versions(pair.dst)
    assert sorted(versions) == ["1", "3"]  # `models:/churn/3` is the same version on both sides
    source, description, tags = versions["3"]
    assert (source, description, tags["dbsync_source_version"]) == ("dbfs:/models/churn/3", "v3", "3")
    pair.reset_stats()
    pair.sync(only=KINDS)
    assert pair.target_writes() == 0


def test_a_placeholder_an_older_dbsync_tagged_as_the_real_version_is_not_adopted(pair: Pair) -> None:
    """Before placeholders had their own tag, the one left behind carried the real version's number as its tag."""
    _source_with_a_gap(pair)
    pair.dst.model_registry.create_model("churn")
    for number, tag in (("1", "1"), ("2", "3")):
        tags = [ml.ModelVersionTag(key="dbsync_source_version", value=tag)]
        pair.dst.model_registry.create_model_version("churn", f"dbfs:/models/churn/{number}", tags=tags)

    report = pair.sync(only=KINDS)["registered_models"]

    assert report.errors == 0, report
    versions = _versions(pair.dst)
    assert sorted(versions) == ["1", "3"]
    assert versions["3"][0] == "dbfs:/models/churn/3"


def test_a_placeholder_that_reached_its_number_becomes_that_version(pair: Pair) -> None:
    """The target's numbers had a gap of their own: the placeholder got the source's number, then the run died."""
    _source_with_a_gap(pair)
    pair.dst.model_registry.create_model("churn")
    tags = [ml.ModelVersionTag(key="dbsync_source_version", value="1")]
    pair.dst.model_registry.create_model_version("churn", "dbfs:/models/churn/1", tags=tags)
    pair.dst.model_registry.create_model_version("churn", "dbfs:/models/churn/3", description="scratch")
    pair.dst.model_registry.delete_model_version("churn", "2")
    placeholder = [ml.ModelVersionTag(key="dbsync_placeholder", value="3")]
    pair.dst.model_registry.create_model_version("churn", "dbfs:/models/churn/3", tags=placeholder)

    report = pair.sync(only=KINDS)["registered_models"]

    assert report.errors == 0, report
    versions = _versions(pair.dst)
    assert sorted(versions) == ["1", "3"]
    source, description, tags = versions["3"]
    assert (source, description, tags) == ("dbfs:/models/churn/3", "v3", {"dbsync_source_version": "3"})
