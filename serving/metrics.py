"""Prometheus metrics of the serving process (one registry per app, so tests can build many apps).

Exposed at ``GET /metrics``:

* ``streamrec_stage_seconds{stage}``: latency per stage (candidates, features, score, mmr, total);
* ``streamrec_candidates_total{source}``: candidates contributed per source, after dedupe;
* ``streamrec_fallbacks_total{reason}``: degraded answers and ranker fallbacks;
* ``streamrec_impressions_total{outcome}``: impressions sent / dropped (buffer full) / failed sends;
* ``streamrec_model_info{version}``: 1 for the model currently serving;
* ``streamrec_requests_total{endpoint,status}``.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

STAGES = ("candidates", "features", "score", "mmr", "total")
BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0)


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.stage = Histogram("streamrec_stage_seconds", "serving latency per stage", ["stage"], registry=r,
                               buckets=BUCKETS)
        self.candidates = Counter("streamrec_candidates_total", "candidates per source (after dedupe)", ["source"],
                                  registry=r)
        self.fallbacks = Counter("streamrec_fallbacks_total", "degraded answers and ranker fallbacks", ["reason"],
                                 registry=r)
        self.impressions = Counter("streamrec_impressions_total", "impression events by outcome", ["outcome"],
                                   registry=r)
        self.impression_queue = Gauge("streamrec_impression_queue", "impressions waiting to be sent", registry=r)
        self.model = Gauge("streamrec_model_info", "1 for the model version serving now", ["version"], registry=r)
        self.index_items = Gauge("streamrec_ann_items", "items in the serving ANN index", registry=r)
        self.requests = Counter("streamrec_requests_total", "requests by endpoint and status", ["endpoint", "status"],
                                registry=r)
        self._version: str | None = None
        self._stage_children = {s: self.stage.labels(stage=s) for s in STAGES}
        self._source_children: dict[str, Counter] = {}

    def count_sources(self, sources: list[str]) -> None:
        """Count candidates per source (one increment per source, not per candidate)."""
        for name, n in collections.Counter(sources).items():
            child = self._source_children.get(name)
            if child is None:
                child = self._source_children[name] = self.candidates.labels(source=name)
            child.inc(n)

    def count_source_totals(self, counts: dict[str, int]) -> None:
        """:meth:`count_sources` from the candidates per source."""
        for name, n in counts.items():
            child = self._source_children.get(name)
            if child is None:
                child = self._source_children[name] = self.candidates.labels(source=name)
            child.inc(n)

    def observe(self, stage: str, seconds: float) -> None:
        self._stage_children[stage].observe(seconds)

    def set_model(self, version: str) -> None:
        if self._version is not None and self._version != version:
            self.model.remove(self._version)
        self._version = version
        self.model.labels(version=version).set(1)

    def dropped_impressions(self) -> float:
        return float(self.registry.get_sample_value("streamrec_impressions_total", {"outcome": "dropped"}) or 0.0)

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))
