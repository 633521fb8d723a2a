"""In-process check of how the ranker orders serving's candidate mix for users with history (no services).

    python -m bench.ranker_mix_check END_FRACTION N_QUERIES "VARIANT;VARIANT;..." [OUT.json]
    e.g. python -m bench.ranker_mix_check 0.6 2000 "hard=150;hold=0.3,samp=uniform" bench/results/ranker_mix.json

MovieLens-100K: trains as ``streamrec eval stream`` does at the 50 % split (retrieval selection, final fit),
then takes ``N_QUERIES`` random with-history positives (rating >= 4) from 50 % to ``END_FRACTION`` of the
stream, with the user's history as of the start of the query's 250-rating chunk (as the eval asks them),
builds serving's candidate mix (ANN top 150 by the mean of the 10 latest history vectors, plus the 100
most popular items, the user's rated items excluded; no neighbours / trending / fresh), computes
point-in-time features for every candidate at the chunk start, and reports HR@10 / NDCG@10 of: the
cosine (retrieval) order, popularity, a fixed cosine + 0.2 log(1 + count) blend, and one LambdaRank
ranker per VARIANT (``key=value`` pairs: ``hard``/``pop`` negatives per group, ``hold`` holdout
fraction, ``samp`` latest|uniform, ``bf`` max groups, ``cols=few`` = only retrieval_score and
popularity_prior_by_item).  Only the pure training code runs; no broker, Redis or API.
"""
import sys, time, json
from dataclasses import replace
from pathlib import Path
import numpy as np
from offline.movielens import load
from offline.snapshot import write_snapshot, TimeRange
from offline.dataset import load_training_data
from offline.retrieval import select, fit_final
from offline.candidate_groups import popularity_prior
from offline.ranker_data import build_ranker_data, RankerDataConfig
from offline.ranker_train import train_lambdarank
from offline.train_demo import DEMO_CONFIG
from offline.pit_features import Query, features_at, names as pit_names
from streamrec.movielens_events import metadata_events, rating_events

frac_end = float(sys.argv[1]); n_eval = int(sys.argv[2]); variants = sys.argv[3].split(";")
ml = load(); R = ml.ratings; n = len(R); split = n // 2; end = int(n * frac_end)
events = list(rating_events(ml)); meta = list(metadata_events(ml))
import tempfile
root = Path(tempfile.mkdtemp(prefix="ranker_mix_"))
snap = write_snapshot(root / "snap", meta + events[:split], [], TimeRange(None, None), "harness")
data = load_training_data(snap, 3)
cfg = DEMO_CONFIG
sel = select(data, cfg.retrieval, log=print)
final = fit_final(sel.name, data, cfg.retrieval)
iv = final.item_vectors().astype(np.float64); iu = iv / np.linalg.norm(iv, axis=1, keepdims=True)
I = {i: k for k, i in enumerate(data.item_ids)}
counts = np.bincount(data.positives.items, minlength=len(data.item_ids)).astype(float)
prior_all = counts / counts.max()
popular = np.lexsort((np.arange(len(counts)), -counts))[:100]
# queries: with-history positives in [split, end), chunk-stale history
seen, hist = {}, {}
for r in R[:split]:
    seen.setdefault(r.user_id, set()).add(r.item_id)
    if r.rating >= 3: hist.setdefault(r.user_id, []).append(r.item_id)
qs = []
hist_c, seen_c = {}, {}
for k, r in enumerate(R[split:end]):
    if k % 250 == 0:
        hist_c = {u: list(v) for u, v in hist.items()}; seen_c = {u: set(v) for u, v in seen.items()}
        chunk_ts = events[split + k].ts.timestamp()
    u = r.user_id
    if r.rating >= 4 and u in seen_c and hist_c.get(u):
        h = [I[i] for i in hist_c[u][-10:] if i in I]
        if h and r.item_id in I:
            qs.append((u, I[r.item_id], set(I[i] for i in seen.get(u, set()) if i in I), h, chunk_ts))
    seen.setdefault(u, set()).add(r.item_id)
    if r.rating >= 3: hist.setdefault(u, []).append(r.item_id)
rng = np.random.default_rng(0)
qs = [qs[j] for j in sorted(rng.choice(len(qs), min(n_eval, len(qs)), replace=False))]
cands, pqs = [], []
for u, tgt, ex, h, ts in qs:
    q = iu[h].mean(0); q /= np.linalg.norm(q)
    s = iu @ q; s2 = s.copy(); s2[list(ex)] = -np.inf
    ann = np.argsort(-s2)[:150]
    c = list(dict.fromkeys(list(ann) + [p for p in popular if p not in ex]))
    cands.append((np.array(c), s[c]))
    pqs.append(Query(u, tuple(data.item_ids[i] for i in c), ts))
t = time.process_time()
feats = features_at(meta + events[:end], pqs)
print("features cpu", round(time.process_time() - t, 1), "rows", sum(len(c) for c, _ in cands))
stream = pit_names()
results: dict = {"end_fraction": frac_end, "n_queries": len(qs), "variants": variants, "scores": {}}
def hr(scorefn, name):
    h = nd = 0.0
    for (u, tgt, ex, hh, ts), (c, s), f in zip(qs, cands, feats):
        sc = scorefn(c, s, f)
        order = c[np.argsort(-sc, kind="stable")][:10]
        w = np.flatnonzero(order == tgt)
        if w.size: h += 1; nd += 1 / np.log2(w[0] + 2)
    print(f"{name:30s} HR@10 {h/len(qs):.4f} NDCG@10 {nd/len(qs):.4f} n {len(qs)}")
    results["scores"][name] = {"hr@10": h / len(qs), "ndcg@10": nd / len(qs), "n": len(qs)}
hr(lambda c, s, f: s, "cosine order")
hr(lambda c, s, f: prior_all[c], "popularity")
hr(lambda c, s, f: s + 0.2 * np.log1p(counts[c]), "cos + 0.2 log pop")
built = {}
from offline.train_pipeline import ranker_retrieval
from offline.ranking_metrics import ndcg_report
for v in variants:
    kv = dict(x.split("=") for x in v.split(","))
    rcfg = replace(cfg.ranker_data, n_hard_negatives=int(kv.get("hard", 150)), n_popular_negatives=int(kv.get("pop", 100)),
                   holdout_fraction=float(kv["hold"]) if "hold" in kv else None, sampling=kv.get("samp", "latest"),
                   max_backfill_groups=int(kv.get("bf", 2000)))
    fs = kv.get("cols", "")
    t = time.process_time()
    key = (rcfg.n_hard_negatives, rcfg.n_popular_negatives, rcfg.holdout_fraction, rcfg.sampling, rcfg.max_backfill_groups)
    if key not in built:
        m, cut = ranker_retrieval(data, sel, replace(cfg, ranker_data=rcfg), print)
        built[key] = build_ranker_data(snap, data, m, cut, rcfg)
    rd = built[key]
    names = list(rd.feature_names)
    if fs == "few":
        cols = [names.index("retrieval_score"), names.index("popularity_prior_by_item")]
    else:
        cols = list(range(len(names)))
    tr = train_lambdarank(rd.X[:, cols], rd.y, rd.group_ids, rd.times, [names[j] for j in cols], cfg.ranker, rd.valid_eligible)
    kept = [stream.index(nm) for nm in rd.feature_names[:-2]]
    va = tr.valid_rows
    ro = ndcg_report(rd.X[va, names.index("retrieval_score")], rd.y[va], rd.group_ids[va])
    print(v, len(cols), "cols; cpu", round(time.process_time() - t, 1), "groups", rd.n_backfill_groups, "valid ndcg@10", round(tr.metrics["ndcg@10"], 4), "retrieval order", round(ro["ndcg@10"], 4), "best", tr.best_iteration)
    imp = tr.feature_importance["gain"]; print("  top gain:", sorted(imp, key=imp.get, reverse=True)[:6])
    def rank(c, s, f, tr=tr, kept=kept, cols=cols):
        X = np.hstack([f[:, kept], s[:, None], prior_all[c][:, None]])[:, cols]
        return tr.booster.predict(X, num_iteration=tr.best_iteration)
    hr(rank, f"ranker {v}")
if len(sys.argv) > 4:
    Path(sys.argv[4]).parent.mkdir(parents=True, exist_ok=True)
    Path(sys.argv[4]).write_text(json.dumps(results, indent=2) + "\n")
