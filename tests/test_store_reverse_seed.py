"""`Store.seed_reversed`: the failback row the reverse direction starts from."""

from __future__ import annotations

from pathlib import Path

from dbsync.model import Applied, Resource
from dbsync.store import Store


def test_a_seeded_row_is_pending_adopted_and_counts_as_lag(tmp_path: Path) -> None:
    """The next cycle rewrites the seeded target in place, failback never deletes it, and lag shows until then."""
    store = Store(tmp_path / "reverse.db")
    try:
        store.seed_reversed("jobs", "9", "nightly", "1", {"reverse_seed": True})
        prior = store.prior("jobs", "9")
        assert prior is not None
        assert (prior.status, prior.target_key, prior.origin, prior.target_version) == ("pending", "1", "adopted", None)
        assert prior.fingerprint != Resource("jobs", "9", payload={"name": "nightly"}).fingerprint
        assert store.oldest_unsynced_change("jobs") is not None
    finally:
        store.close()


def test_seeding_again_resets_an_applied_row(tmp_path: Path) -> None:
    """A re-seed (`reverse --force` on a store that ran) makes the row pending again, keeping its adoption."""
    store = Store(tmp_path / "reverse.db")
    try:
        store.record_applied(Resource("jobs", "9", payload={"name": "nightly"}), Applied("1", adopted=False))
        store.seed_reversed("jobs", "9", "nightly", "2", {"reverse_seed": True})
        prior = store.prior("jobs", "9")
        assert (prior.status, prior.target_key, prior.origin) == ("pending", "2", "adopted")
    finally:
        store.close()
