"""Model registry on local disk, and the promotion gate.

Layout under the registry root (e.g. ``.streamrec/models``)::

    versions/<version>/<artifact>       each written to a temp file, fsynced, then os.replace'd
    versions/<version>/manifest.json    written last (same way): no manifest = partial version
    CURRENT                             name of the promoted version (atomic replace)
    history.json                        {"stack": promoted versions, oldest first, "log": [...]}

``manifest.json`` records, per version: metrics, feature names, data range,
training time, and the sha256 and size of every artifact.  :meth:`verify`
recomputes them; a partial or corrupt version is never promoted, rolled back
to, or loaded.  ``rollback`` returns to the version promoted before the
current one.  One writer at a time is assumed (the training job).
Versions are ``<UTC time>-<8 hex of the content hash>``, so they sort by time.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal, Mapping

from pydantic import BaseModel, ConfigDict, ValidationError

from offline.durable_files import FileEntry, atomic_write, read_chunks, sha256_file
from serving.ranker import LightGBMRanker

MANIFEST = "manifest.json"
GATE_METRIC = "ndcg@10"


class RegistryError(RuntimeError):
    pass


class CorruptVersion(RegistryError):
    """A version is partial or fails its checksums; it must not be promoted or served."""


class NoCurrentModel(RegistryError):
    pass


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    format: Literal[1] = 1
    version: str
    created_at: datetime
    trained_at: datetime
    training_seconds: float
    data_start: datetime
    data_end: datetime
    metrics: dict[str, float]
    feature_names: list[str]
    model_file: str
    files: dict[str, FileEntry]
    notes: dict[str, str] = {}


@dataclass(frozen=True)
class ModelMeta:
    metrics: Mapping[str, float]
    feature_names: tuple[str, ...]
    data_start: datetime
    data_end: datetime
    trained_at: datetime
    training_seconds: float
    model_file: str = "model.txt"  # the artifact holding the LightGBM text model
    notes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str


def gate(
    candidate_metrics: Mapping[str, float],
    current_metrics: Mapping[str, float] | None,
    margin: float = 0.0,
    metric: str = GATE_METRIC,
) -> GateDecision:
    """Promote only if candidate[metric] >= current[metric] + margin; with no current model, promote."""
    cand = candidate_metrics.get(metric)
    if cand is None or cand != cand:  # missing or NaN
        return GateDecision(False, f"candidate has no valid {metric} (got {cand}); not promoted")
    if current_metrics is None:
        return GateDecision(True, f"no current model; promoting candidate ({metric}={cand:.4f})")
    cur = current_metrics.get(metric)
    if cur is None or cur != cur:
        return GateDecision(
            False, f"current model has no recorded {metric}; compare by hand and use `streamrec models promote`"
        )
    need = cur + margin
    if cand >= need:
        return GateDecision(True, f"candidate {metric}={cand:.4f} >= current {cur:.4f} + margin {margin:g}")
    return GateDecision(
        False, f"candidate {metric}={cand:.4f} < current {cur:.4f} + margin {margin:g}; current model stays"
    )


def _check_name(name: str) -> None:
    if not name or name != Path(name).name or name.startswith(".") or name == MANIFEST:
        raise RegistryError(f"artifact name {name!r} must be a plain file name (not hidden, not {MANIFEST})")


class ModelRegistry:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.versions_dir = self.root / "versions"

    # -- publishing and checking ------------------------------------------------------------
    def publish(self, artifact_files: Mapping[str, str | Path], meta: ModelMeta, now: datetime) -> str:
        """Copy the artifacts into a new version directory, manifest last; returns the version."""
        for name in artifact_files:
            _check_name(name)
        if meta.model_file not in artifact_files:
            raise RegistryError(f"model_file {meta.model_file!r} is not among the artifacts {sorted(artifact_files)}")
        sources = {name: sha256_file(Path(p)) for name, p in sorted(artifact_files.items())}
        content = hashlib.sha256("".join(f"{n}:{e.sha256};" for n, e in sources.items()).encode()).hexdigest()
        version = f"{now:%Y%m%dT%H%M%S}Z-{content[:8]}"
        vdir = self.versions_dir / version
        if (vdir / MANIFEST).exists():
            raise RegistryError(f"version {version} is already published")
        if vdir.exists():  # leftovers of a publish that failed part-way
            shutil.rmtree(vdir)
        vdir.mkdir(parents=True)
        files = {name: atomic_write(vdir / name, read_chunks(Path(p))) for name, p in sorted(artifact_files.items())}
        for name, entry in files.items():
            if entry != sources[name]:
                raise RegistryError(f"artifact {name} changed while it was being published; publish again")
        manifest = Manifest(
            version=version,
            created_at=now,
            trained_at=meta.trained_at,
            training_seconds=meta.training_seconds,
            data_start=meta.data_start,
            data_end=meta.data_end,
            metrics=dict(meta.metrics),
            feature_names=list(meta.feature_names),
            model_file=meta.model_file,
            files=files,
            notes=dict(meta.notes),
        )
        atomic_write(vdir / MANIFEST, [manifest.model_dump_json(indent=2).encode()])
        return version

    def manifest(self, version: str) -> Manifest:
        """The parsed manifest (no checksum check); raises CorruptVersion if partial or unreadable."""
        vdir = self.versions_dir / version
        if not version or version != Path(version).name or not vdir.is_dir():
            raise RegistryError(f"unknown model version {version!r}; known: {self.list_versions()}")
        path = vdir / MANIFEST
        if not path.exists():
            raise CorruptVersion(f"version {version} is partial (no {MANIFEST}: its publish did not finish)")
        try:
            m = Manifest.model_validate_json(path.read_bytes())
        except ValidationError as err:
            raise CorruptVersion(f"version {version} has an unreadable {MANIFEST}: {err}") from err
        if m.version != version:
            raise CorruptVersion(f"version {version}'s manifest names another version ({m.version})")
        return m

    def verify(self, version: str) -> Manifest:
        """Recompute every checksum; raise CorruptVersion saying which file is wrong."""
        m = self.manifest(version)
        for name, expected in m.files.items():
            path = self.versions_dir / version / name
            if not path.is_file():
                raise CorruptVersion(f"version {version} is missing artifact {name}")
            got = sha256_file(path)
            if got.size != expected.size:
                raise CorruptVersion(
                    f"version {version}: artifact {name} has {got.size} bytes, manifest says {expected.size} "
                    "(truncated or partial); it will not be promoted or served"
                )
            if got.sha256 != expected.sha256:
                raise CorruptVersion(
                    f"version {version}: artifact {name} fails its sha256 checksum (corrupt); "
                    "it will not be promoted or served"
                )
        return m

    def list_versions(self) -> list[str]:
        """Version directory names, oldest first (including partial ones; verify tells them apart)."""
        if not self.versions_dir.is_dir():
            return []
        return sorted(p.name for p in self.versions_dir.iterdir() if p.is_dir() and not p.name.startswith("."))

    # -- the pointer ------------------------------------------------------------------------
    def current(self) -> str | None:
        try:
            text = (self.root / "CURRENT").read_text().strip()
        except FileNotFoundError:
            return None
        return text or None

    def _history(self) -> dict[str, list]:  # type: ignore[type-arg]
        try:
            data = json.loads((self.root / "history.json").read_text())
        except FileNotFoundError:
            return {"stack": [], "log": []}
        return {"stack": list(data.get("stack", [])), "log": list(data.get("log", []))}

    def _write(self, name: str, data: bytes) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write(self.root / name, [data])

    def history(self) -> list[str]:
        """Promoted versions, oldest first; the last one is normally CURRENT."""
        return list(self._history()["stack"])

    def promote(self, version: str, now: datetime) -> None:
        """Verify ``version`` and point CURRENT at it; a corrupt version raises and changes nothing."""
        self.verify(version)
        if self.current() == version:
            return
        hist = self._history()
        hist["stack"].append(version)
        hist["log"].append({"action": "promote", "version": version, "at": now.isoformat()})
        self._write("history.json", json.dumps(hist, indent=2).encode())
        self._write("CURRENT", version.encode())

    def rollback(self, now: datetime) -> str:
        """Point CURRENT back at the version promoted before it (verified first); returns it."""
        cur = self.current()
        hist = self._history()
        stack = hist["stack"]
        if cur is not None and cur in stack:
            while stack and stack[-1] != cur:  # entries of a promote that crashed before CURRENT moved
                stack.pop()
        if cur is not None and stack and stack[-1] == cur:
            stack.pop()
        if not stack:
            raise RegistryError(f"nothing to roll back to: no version was promoted before {cur}")
        target = str(stack[-1])
        try:
            self.verify(target)
        except CorruptVersion as err:
            raise CorruptVersion(
                f"cannot roll back to {target}: {err}. Promote a good version with `streamrec models promote`"
            ) from err
        hist["log"].append({"action": "rollback", "version": target, "from": cur, "at": now.isoformat()})
        self._write("CURRENT", target.encode())
        self._write("history.json", json.dumps(hist, indent=2).encode())
        return target


def publish_and_gate(
    registry: ModelRegistry,
    artifact_files: Mapping[str, str | Path],
    meta: ModelMeta,
    now: datetime,
    margin: float = 0.0,
    current_metrics: Mapping[str, float] | None = None,
) -> tuple[str, GateDecision]:
    """Publish a candidate and promote it if it passes :func:`gate`.

    ``current_metrics`` should be the current model scored on the candidate's
    validation data when possible; by default the current manifest's metrics are used.
    """
    version = registry.publish(artifact_files, meta, now)
    cur = registry.current()
    if current_metrics is None and cur is not None:
        current_metrics = registry.manifest(cur).metrics
    decision = gate(meta.metrics, current_metrics if cur is not None else None, margin)
    if decision.promote:
        registry.promote(version, now)
    return version, decision


def load_ranker(registry: ModelRegistry, version: str, num_threads: int = 1) -> LightGBMRanker:
    """Load a verified version; the model bytes are hashed once more as they are read."""
    m = registry.verify(version)
    data = (registry.versions_dir / version / m.model_file).read_bytes()
    if hashlib.sha256(data).hexdigest() != m.files[m.model_file].sha256:
        raise CorruptVersion(f"version {version}: {m.model_file} changed after verification; refusing to load")
    ranker = LightGBMRanker.from_string(data.decode("utf-8"), version, num_threads)
    if list(ranker.feature_names) != m.feature_names:
        raise CorruptVersion(
            f"version {version}: the model's features {list(ranker.feature_names)} differ from the manifest's "
            f"{m.feature_names}"
        )
    return ranker


def load_current_ranker(registry: ModelRegistry, num_threads: int = 1) -> LightGBMRanker:
    """The promoted model, verified; raises NoCurrentModel or CorruptVersion."""
    cur = registry.current()
    if cur is None:
        raise NoCurrentModel(f"no model has been promoted in {registry.root}; serve with the HeuristicRanker")
    return load_ranker(registry, cur, num_threads)
