"""Backfilled ranker groups from serving's candidate mix, and the popularity they draw on.

:func:`hard_negative_groups`: each positive that serving would have retrieved (the user's ANN top
``candidate_k`` at that time, or one of the ``popular_k`` most popular items) with hard negatives
from that top, popular negatives and a few random items (never a known positive), shuffled within
the group.  :func:`history_queries` is serving's ANN query at a (user, time);
:func:`popular_items` and :func:`popularity_prior` are the training twins of serving's ``popular``
source and its ``popularity_prior_by_item`` column.  Pure: numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.where(n > 0, n, 1.0)


def history_queries(item_vectors: np.ndarray, user_vectors: np.ndarray, hist_users: np.ndarray,
                    hist_items: np.ndarray, hist_times: np.ndarray, users: np.ndarray, times: np.ndarray,
                    seeds: int) -> np.ndarray:
    """Serving's ANN query at each (user, time): unit mean of the unit vectors of the user's ``seeds``
    latest positives strictly before ``time``; the user's own unit vector when there are none."""
    v, u = _unit(np.asarray(item_vectors, np.float64)), _unit(np.asarray(user_vectors, np.float64))
    order = np.lexsort((hist_times, hist_users))
    hu, hi, ht = hist_users[order], hist_items[order], hist_times[order]
    lo = np.searchsorted(hu, users, side="left")
    hi_user = np.searchsorted(hu, users, side="right")
    out = np.empty((len(users), v.shape[1]))
    for g, (a, b, t) in enumerate(zip(lo, hi_user, times)):
        end = a + int(np.searchsorted(ht[a:b], t, side="left"))  # strictly before t
        seen = hi[max(a, end - seeds):end]
        out[g] = v[seen].mean(axis=0) if seen.size and seeds > 0 else u[users[g]]
    result: np.ndarray = _unit(out)
    return result


@dataclass(frozen=True, eq=False)
class CandidateGroups:
    """Rows of backfilled groups (shuffled within each group), with their retrieval scores."""

    group_ids: np.ndarray
    user_ids: np.ndarray
    item_ids: np.ndarray
    times: np.ndarray
    labels: np.ndarray  # the positive's graded label; 0 for negatives
    retrieval: npt.NDArray[np.float32]
    hard: np.ndarray  # True for hard negatives (the retrieval model's top candidates)
    source_rows: np.ndarray  # per group: the index of its positive in the inputs
    n_not_retrieved: int  # positives skipped: not in the retrieval top candidate_k


def hard_negative_groups(users: np.ndarray, items: np.ndarray, times: np.ndarray, labels: np.ndarray,
                         queries: np.ndarray, item_vectors: np.ndarray, known_users: np.ndarray,
                         known_items: np.ndarray, n_hard: int, n_random: int, seed: int,
                         candidate_k: int = 150, max_groups: int | None = None,
                         group_id_start: int = 0, chunk: int = 256, popular: np.ndarray | None = None,
                         n_popular: int = 0) -> CandidateGroups:
    """Groups from positives ``(users[g], items[g], times[g], labels[g])``, the latest ``max_groups`` (by
    input order) whose item is among the ``candidate_k`` items scoring highest against ``queries[g]``
    (other known positives of the user not counted): the positive, ``n_hard`` items sampled from that top
    ``candidate_k`` and ``n_random`` uniformly random items, none of them a known positive of the user
    (``known_users``/``known_items``: every positive pair in the history, so a later positive is never a
    negative).  ``retrieval`` = cosine of the query and the item.  Rows are shuffled within a group.

    ``popular`` (item indices, best first: serving's ``popular`` source) widens the candidate mix as serving's
    does: a positive among them counts as retrieved too, and ``n_popular`` negatives are sampled from them
    (marked ``hard``), so the ranker sees popular-but-not-chosen items with the same ``retrieval`` definition."""
    rng = np.random.default_rng(seed)
    v = _unit(np.asarray(item_vectors, np.float64))
    n_items = v.shape[0]
    queries = np.asarray(queries, np.float64)
    by_user: dict[int, np.ndarray] = {}
    ku, ki = np.asarray(known_users), np.asarray(known_items)
    o = np.argsort(ku, kind="stable")
    uniq, starts = np.unique(ku[o], return_index=True)
    for u_, a, b in zip(uniq, starts, np.r_[starts[1:], o.size]):
        by_user[int(u_)] = ki[o[a:b]]
    rows: list[tuple[int, int, int, float, bool]] = []  # (group, item, label, score, hard)
    limit = len(users) if max_groups is None else max(0, int(max_groups))
    taken: list[int] = []
    skipped = 0
    empty = np.zeros(0, np.int64)
    pop = np.zeros(0, np.int64) if popular is None else np.asarray(popular, np.int64)
    hi_end = len(users)
    while hi_end > 0 and len(taken) < limit:  # latest first, a chunk of groups at a time (bounded memory)
        lo_end = max(0, hi_end - chunk)
        gs = np.arange(lo_end, hi_end)
        raw = queries[gs] @ v.T  # (chunk, items)
        s = raw.copy()
        known_rows = [by_user.get(int(users[g]), empty) for g in gs]
        r_idx = np.repeat(np.arange(gs.size), [k.size for k in known_rows])
        s[r_idx, np.concatenate(known_rows) if known_rows else empty] = -np.inf
        pos_items = np.asarray(items)[gs]
        pos_score = raw[np.arange(gs.size), pos_items]
        s[np.arange(gs.size), pos_items] = -np.inf
        retrieved = (s > pos_score[:, None]).sum(axis=1) < candidate_k  # serving would have retrieved it
        retrieved |= np.isin(pos_items, pop)
        k = min(candidate_k, n_items - 1)
        tops = np.argpartition(-s, k - 1, axis=1)[:, :k] if k > 0 else np.zeros((gs.size, 0), np.int64)
        for r in range(gs.size - 1, -1, -1):
            if len(taken) >= limit:
                break
            g = int(gs[r])
            if not retrieved[r]:
                skipped += 1
                continue
            taken.append(g)
            top = tops[r][np.isfinite(s[r, tops[r]])]  # fewer than k allowed items: drop the blocked ones
            hard = rng.choice(top, size=min(max(0, n_hard), top.size), replace=False) if top.size else empty
            blocked = set(known_rows[r].tolist()) | {int(pos_items[r])} | set(hard.tolist())
            pop_ok = [int(i) for i in pop.tolist() if int(i) not in blocked]
            pop_neg = rng.choice(pop_ok, size=min(max(0, n_popular), len(pop_ok)), replace=False).tolist() \
                if pop_ok and n_popular > 0 else []
            blocked.update(pop_neg)
            hard = np.concatenate([hard, np.asarray(pop_neg, np.int64)]) if pop_neg else hard
            rnd: list[int] = []
            for cand in rng.integers(0, n_items, size=4 * max(0, n_random) + 8).tolist():
                if len(rnd) >= n_random:
                    break
                if cand not in blocked:
                    blocked.add(cand)
                    rnd.append(cand)
            if len(rnd) < n_random:  # rare: a user who likes most of the catalogue
                rest = np.setdiff1d(np.arange(n_items), np.fromiter(blocked, np.int64))
                rnd += rng.choice(rest, size=min(n_random - len(rnd), rest.size), replace=False).tolist()
            group = [(int(pos_items[r]), int(labels[g]), False)] + [(int(i), 0, True) for i in hard] + \
                    [(int(i), 0, False) for i in rnd]
            for j in rng.permutation(len(group)):
                it, lab, is_hard = group[j]
                rows.append((g, it, lab, float(raw[r, it]), is_hard))
        hi_end = lo_end
    order = np.array(taken[::-1], dtype=np.int64)  # back to input (time) order
    new_id = np.empty(len(users), dtype=np.int64)
    new_id[order] = np.arange(order.size)
    rows.sort(key=lambda r: new_id[r[0]])  # stable: keeps the shuffled order within a group
    gi = np.array([r[0] for r in rows], dtype=np.int64)
    return CandidateGroups(
        group_ids=new_id[gi] + group_id_start, user_ids=np.asarray(users)[gi],
        item_ids=np.array([r[1] for r in rows], np.int64), times=np.asarray(times, np.float64)[gi],
        labels=np.array([r[2] for r in rows], np.int64), retrieval=np.array([r[3] for r in rows], np.float32),
        hard=np.array([r[4] for r in rows], bool), source_rows=order, n_not_retrieved=skipped)


def popular_items(items: np.ndarray, times: np.ndarray, before: float, n_items: int, k: int) -> np.ndarray:
    """The ``k`` items with the most positives strictly before ``before``, most first (ties: lower index);
    what the training run at that time publishes as ``item_popularity.npy`` for serving's ``popular`` source."""
    counts = np.bincount(np.asarray(items)[np.asarray(times) < before], minlength=n_items)
    order = np.lexsort((np.arange(n_items), -counts))
    out: np.ndarray = order[counts[order] > 0][:k]
    return out


def popularity_prior(items: np.ndarray, times: np.ndarray, before: float, n_items: int) -> np.ndarray:
    """``popularity_prior_by_item`` of every item: positives strictly before ``before`` over the most
    popular item's (0 when there are none) -- what serving computes from the training run's
    ``item_popularity.npy`` (``serving.item_index.ItemVectors.popularity_share``)."""
    counts = np.bincount(np.asarray(items)[np.asarray(times) < before], minlength=n_items).astype(np.float64)
    top = counts.max() if counts.size else 0.0
    out: np.ndarray = counts / top if top > 0 else counts
    return out
