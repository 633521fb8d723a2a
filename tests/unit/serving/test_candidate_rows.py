"""serving.candidate_rows (candidates on integer codes) against the string reference in serving.candidates."""

import numpy as np
import pytest

from serving import candidate_rows as rows
from serving import candidates as cands
from serving.item_index import ItemVectors


def _catalogue(rng: np.random.Generator, n: int = 300, dim: int = 8) -> ItemVectors:
    ids = [f"i{j:04d}" for j in rng.permutation(n)]  # row order != id order, so id ties are exercised
    vecs = rng.normal(size=(n, dim)).astype(np.float32)
    vecs[rng.integers(0, n, 20)] = vecs[0]  # repeated vectors: equal similarities, ordered by item id
    pop = rng.integers(0, 4, n).astype(np.float32)
    return ItemVectors.build(ids, vecs, "v1", popularity=pop)


def _ids(rng: np.random.Generator, iv: ItemVectors, k: int, outside: float = 0.2) -> list[str]:
    """k ids, some repeated, some not in the catalogue."""
    out = []
    for _ in range(k):
        out.append(f"new{rng.integers(0, 30)}" if rng.random() < outside else iv.ids[int(rng.integers(0, len(iv)))])
    return out


@pytest.mark.parametrize("seed", range(40))
def test_merge_on_codes_equals_the_string_merge(seed: int) -> None:
    rng = np.random.default_rng(seed)
    iv = _catalogue(rng)
    history = list(dict.fromkeys(_ids(rng, iv, int(rng.integers(0, 30)))))
    client_exclude = _ids(rng, iv, int(rng.integers(0, 5)))
    trending, fresh = _ids(rng, iv, int(rng.integers(0, 120))), _ids(rng, iv, int(rng.integers(0, 40)), 0.6)
    quotas = {"ann": int(rng.integers(0, 80)), "popular": int(rng.integers(0, 50)),
              "neighbours": int(rng.integers(0, 60)), "trending": int(rng.integers(0, 80)),
              "fresh": int(rng.integers(0, 30))}
    limit, seeds = int(rng.integers(1, 250)), int(rng.integers(1, 12))
    exclude = set(client_exclude) | set(history)

    query = cands.user_vector(iv, history, seeds)
    ref = cands.merge_ranked([
        cands.ann_ranked(iv, history, seeds, quotas["ann"] + len(exclude), query),
        cands.popular_ranked(iv, quotas["popular"] + len(exclude)),
        cands.neighbour_ranked(iv, history, seeds, quotas["neighbours"]),
        cands.Ranked("trending", trending, cands.rank_scores(len(trending))),
        cands.Ranked("fresh", fresh, cands.rank_scores(len(fresh), 0.25))], quotas, limit, exclude)

    book = rows.Codebook(iv)
    hist = book.codes(history)
    excluded = np.concatenate([hist, book.codes(client_exclude)])
    seed_rows = rows.seed_rows(hist, book.n, seeds)
    q = rows.user_vector(iv, seed_rows)
    assert (q is None) == (query is None) and (q is None or np.array_equal(q, query))
    got = rows.merge_coded([
        rows.ann_coded(iv, q, quotas["ann"] + len(exclude)),
        rows.popular_coded(iv, quotas["popular"] + len(exclude)),
        rows.neighbour_coded(iv, seed_rows, quotas["neighbours"]),
        rows.Coded("trending", book.codes(trending), rows.rank_scores(len(trending))),
        rows.Coded("fresh", book.codes(fresh), rows.rank_scores(len(fresh), 0.25))], quotas, limit, excluded, book.size)

    assert book.ids(got.codes) == ref.ids
    assert got.sources == ref.sources
    assert got.scores.tolist() == ref.scores
    assert np.array_equal(book.rows(got.codes), iv.positions(ref.ids))
    assert got.counts == {s: ref.sources.count(s) for s in set(ref.sources)}


def test_each_index_source_on_rows_equals_its_string_twin() -> None:
    rng = np.random.default_rng(7)
    iv = _catalogue(rng)
    history = [iv.ids[r] for r in (5, 0, 17, 5, 42)]
    seed_rows = rows.seed_rows(rows.Codebook(iv).codes(history), len(iv), 4)
    ref = cands.neighbour_ranked(iv, history, 4, 50)
    got = rows.neighbour_coded(iv, seed_rows, 50)
    assert [iv.ids[r] for r in got.codes.tolist()] == list(ref.ids) and got.scores.tolist() == list(ref.scores)
    ref_ann = cands.ann_ranked(iv, history, 4, 30)
    got_ann = rows.ann_coded(iv, rows.user_vector(iv, seed_rows), 30)
    assert [iv.ids[r] for r in got_ann.codes.tolist()] == list(ref_ann.ids)
    assert got_ann.scores.tolist() == list(ref_ann.scores)
    assert [iv.ids[r] for r in rows.popular_coded(iv, 25).codes.tolist()] == list(cands.popular_ranked(iv, 25).ids)


def test_codebook_gives_ids_outside_the_catalogue_their_own_codes() -> None:
    iv = ItemVectors.build(["a", "b"], np.eye(2, dtype=np.float32), "v1")
    book = rows.Codebook(iv)
    codes = book.codes(["b", "x", "a", "x", "y"])
    assert codes.tolist() == [1, 2, 0, 2, 3] and book.size == 4
    assert book.ids(codes) == ["b", "x", "a", "x", "y"]
    assert book.rows(codes).tolist() == [1, -1, 0, -1, -1]
    merged = rows.merge_coded([rows.Coded("fresh", codes, np.arange(5.0))], {"fresh": 10}, 10,
                              book.codes(["a"]), book.size)
    assert book.ids(merged.codes) == ["b", "x", "y"] and merged.scores.tolist() == [0.0, 1.0, 4.0]


def test_remembered_ann_search_equals_the_search_and_is_per_index_version() -> None:
    rng = np.random.default_rng(3)
    iv = _catalogue(rng)
    for seeds in ([4], [9, 2, 9], list(range(0, 300, 37))):
        s = np.asarray(seeds, dtype=np.int64)
        q = rows.user_vector(iv, s)
        fresh = rows.ann_coded(iv, q, 40)
        first, again = rows.ann_coded(iv, q, 40, s), rows.ann_coded(iv, q, 40, s)
        for got in (first, again):
            assert got.codes.tolist() == fresh.codes.tolist() and got.scores.tolist() == fresh.scores.tolist()
        assert again.codes is first.codes  # remembered
        assert rows.ann_coded(iv, q, 12, s).codes.tolist() == fresh.codes.tolist()[:12]  # k is part of the key
    # a new index version (fresh items added) answers from its own index: a fresh item can be found
    new, _ = iv.with_items(["fresh-1"], iv.vectors[[4]] * 2.0, "v1+fresh")
    s = np.asarray([4], dtype=np.int64)
    got = rows.ann_coded(new, rows.user_vector(new, s), 2, s)
    assert new.ids[int(got.codes[1])] == "fresh-1" or new.ids[int(got.codes[0])] == "fresh-1"


def test_remembered_ann_searches_are_bounded_by_answers_and_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    import serving.item_index as item_index

    iv = _catalogue(np.random.default_rng(11))
    monkeypatch.setattr(item_index, "SEARCH_CACHE_ROWS", 100)
    for r in range(5):
        iv.search_seeded([r], 40)  # 40 rows each: the third would pass 100, so the cache starts over
    assert len(iv._searches) == 1 and iv._searched_rows[0] == 40
    monkeypatch.setattr(item_index, "SEARCH_CACHE", 3)
    monkeypatch.setattr(item_index, "SEARCH_CACHE_ROWS", 10_000)
    for r in range(5, 12):
        iv.search_seeded([r], 5)
    assert 1 <= len(iv._searches) <= 3
    got = iv.search_seeded([11], 5)
    assert got[0].tolist() == rows.ann_coded(iv, rows.user_vector(iv, np.array([11])), 5).codes.tolist()
