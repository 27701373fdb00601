"""The per-run key collections decide deletes and ACL targets: membership must be exact."""

from __future__ import annotations

import random
import string

from dbsync.compact import IdIndex, KeySet


def _paths(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    alphabet = string.ascii_letters + " éü'\"/"
    return [f"/Users/u{rng.randrange(50)}/" + "".join(rng.choices(alphabet, k=rng.randrange(1, 40))) for _ in range(n)]


def test_keyset_answers_exactly_like_a_set() -> None:
    listed = _paths(20_000, 1)
    absent = [p for p in _paths(5_000, 2) if p not in set(listed)]
    keys = KeySet()
    for path in listed:
        keys.add(path)
    assert all(path in keys for path in listed)
    assert not any(path in keys for path in absent)
    assert "" not in keys and None not in keys
    assert len(keys) == len(listed)


def test_keyset_keeps_answering_after_more_keys_are_added() -> None:
    keys = KeySet(["/a", "/b"])
    assert "/c" not in keys
    keys.add("/c")  # added after a lookup sorted it
    assert "/c" in keys and "/a" in keys and "/d" not in keys


def test_id_index_returns_the_id_of_that_path_only() -> None:
    paths = list(dict.fromkeys(_paths(10_000, 3)))
    index = IdIndex((p, 10**15 + i) for i, p in enumerate(paths))
    assert [index.get(p) for p in paths] == [10**15 + i for i in range(len(paths))]
    assert index.get("/not/there") is None
    assert IdIndex().get("/a") is None
