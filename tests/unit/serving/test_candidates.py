import numpy as np

from serving.candidates import SourceList, merge, neighbour_source, ranked_scores
from serving.item_index import ItemVectors


def test_merge_dedupes_across_sources_first_source_wins() -> None:
    out = merge([SourceList("ann", [("a", 0.9), ("b", 0.8)]), SourceList("trending", [("b", 0.5), ("c", 0.4)])],
                {"ann": 5, "trending": 5}, limit=10)
    assert [(c.item_id, c.source) for c in out] == [("a", "ann"), ("b", "ann"), ("c", "trending")]


def test_merge_respects_quotas_limit_and_exclusions() -> None:
    ann = SourceList("ann", [(f"a{i}", 1.0) for i in range(10)])
    tr = SourceList("trending", ranked_scores([f"t{i}" for i in range(10)]))
    out = merge([ann, tr], {"ann": 3, "trending": 4}, limit=100, exclude={"a0", "t1"})
    assert [c.item_id for c in out] == ["a1", "a2", "a3", "t0", "t2", "t3", "t4"]
    assert len(merge([ann, tr], {"ann": 3, "trending": 4}, limit=5)) == 5
    assert merge([ann], {}, limit=5) == []  # no quota, no candidates


def test_neighbours_are_nearest_items_of_history() -> None:
    vecs = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], dtype=np.float32)
    iv = ItemVectors.build(["a", "b", "c", "d"], vecs, "v1")
    got = [i for i, _ in neighbour_source(iv, ["a"], 5, 2).items]
    assert got[:2] == ["a", "b"]


def test_fresh_items_added_to_a_copy_without_touching_the_original() -> None:
    iv = ItemVectors.build(["a", "b"], np.eye(2, dtype=np.float32), "v1")
    new, added = iv.with_items(["c", "a"], np.array([[1, 1], [0, 1]], dtype=np.float32), "v1+fresh")
    assert added == 1 and len(new) == 3 and len(iv) == 2
    assert new.search(np.array([[1, 1]], dtype=np.float32), 1)[0][0][0] == "c"
