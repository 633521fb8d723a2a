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


def test_popular_order_from_the_popularity_artifact_and_fresh_items_start_at_zero() -> None:
    from serving.candidates import popular_ranked

    iv = ItemVectors.build(["a", "b", "c", "d"], np.eye(4, dtype=np.float32), "v1",
                           popularity=np.array([2.0, 0.0, 5.0, 2.0], dtype=np.float32))
    assert iv.popular == ("c", "a", "d")  # zero popularity left out; ties by row
    got = popular_ranked(iv, 2)
    assert list(got.ids) == ["c", "a"] and got.scores[0] > got.scores[1]
    new, _ = iv.with_items(["e"], np.ones((1, 4), dtype=np.float32), "v1+fresh")
    assert new.popular == ("c", "a", "d") and new.popularity is not None and new.popularity[-1] == 0.0
    assert ItemVectors.build(["a"], np.eye(1, dtype=np.float32), "v").popular == ()
    assert list(popular_ranked(None, 5).ids) == []


def test_popularity_artifact_is_loaded_with_the_vectors_and_checked(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import pytest

    from serving.item_index import POPULARITY_FILE, artifact_signature, write_artifacts

    write_artifacts(tmp_path, ["a", "b"], np.eye(2, dtype=np.float32))
    before = artifact_signature(tmp_path)
    assert ItemVectors.load(tmp_path, "v").popular == ()  # type: ignore[union-attr]
    np.save(tmp_path / POPULARITY_FILE, np.array([1.0, 3.0], dtype=np.float32), allow_pickle=False)
    assert artifact_signature(tmp_path) != before  # a new popularity file is a change to reload
    assert ItemVectors.load(tmp_path, "v").popular == ("b", "a")  # type: ignore[union-attr]
    np.save(tmp_path / POPULARITY_FILE, np.array([1.0], dtype=np.float32), allow_pickle=False)
    with pytest.raises(ValueError, match="item_popularity"):
        ItemVectors.load(tmp_path, "v")


def test_query_scores_put_every_source_on_the_cosine_scale() -> None:
    from serving.candidates import query_scores

    iv = ItemVectors.build(["a", "b", "c"], np.array([[1, 0], [0, 2], [1, 1]], dtype=np.float32), "v1")
    got = query_scores(iv, np.array([[3.0, 0.0]]), ["b", "a", "zz", "c"])
    assert np.allclose(got, [0.0, 1.0, 0.0, np.sqrt(0.5)])  # unknown item: 0
    assert query_scores(iv, None, ["a"]).tolist() == [0.0]
    assert query_scores(None, np.ones(2), ["a", "b"]).tolist() == [0.0, 0.0]
    assert query_scores(iv, np.zeros(2), ["a"]).tolist() == [0.0]


def test_one_query_search_equals_the_batch_search() -> None:
    from serving.item_index import ItemVectors

    rng = np.random.default_rng(3)
    vec = ItemVectors.build([f"i{j}" for j in range(500)], rng.normal(size=(500, 8)), "v")
    queries = rng.normal(size=(4, 8)).astype(np.float32)
    rows, scores = vec.search_rows(queries, 37)
    for q in range(4):
        one_rows, one_scores = vec.search_rows(queries[q:q + 1], 37)
        np.testing.assert_array_equal(one_rows[0], rows[q])
        np.testing.assert_allclose(one_scores[0], scores[q], rtol=1e-6)
    assert vec.search_rows(queries[:1], 1000)[0].shape == (1, 500)
