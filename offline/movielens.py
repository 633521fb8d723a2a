"""MovieLens-100K, loaded from the installed ``recbole`` wheel (never copied into this repo).

The licence of MovieLens forbids redistribution, so the files are read from
``recbole/dataset_example/ml-100k/`` of the installed package.  Install it with
``pip install --no-deps recbole==1.2.1`` (``make`` does this for you).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class DatasetMissing(RuntimeError):
    pass


@dataclass(frozen=True)
class Rating:
    user_id: str
    item_id: str
    rating: int
    ts: int  # unix seconds


@dataclass(frozen=True)
class Movie:
    item_id: str
    title: str
    year: int | None
    genres: tuple[str, ...]


@dataclass(frozen=True)
class MLUser:
    user_id: str
    age: int
    gender: str
    occupation: str
    zip_code: str


@dataclass(frozen=True)
class MovieLens:
    ratings: tuple[Rating, ...]  # sorted by (ts, user, item)
    movies: tuple[Movie, ...]
    users: tuple[MLUser, ...]

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(user ids, item ids, ratings, timestamps) as numpy arrays of int64."""
        u = np.fromiter((int(r.user_id) for r in self.ratings), dtype=np.int64)
        i = np.fromiter((int(r.item_id) for r in self.ratings), dtype=np.int64)
        y = np.fromiter((r.rating for r in self.ratings), dtype=np.int64)
        t = np.fromiter((r.ts for r in self.ratings), dtype=np.int64)
        return u, i, y, t


def dataset_dir() -> Path:
    spec = importlib.util.find_spec("recbole")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetMissing(
            "MovieLens-100K comes from the recbole wheel, which is not installed: "
            "run `pip install --no-deps recbole==1.2.1` (or `make demo`, which does it)"
        )
    d = Path(list(spec.submodule_search_locations)[0]) / "dataset_example" / "ml-100k"
    if not (d / "ml-100k.inter").exists():
        raise DatasetMissing(f"{d}/ml-100k.inter not found: reinstall recbole==1.2.1 with --no-deps")
    return d


def _rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", errors="replace") as f:
        next(f)  # header
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]


def load(limit: int | None = None) -> MovieLens:
    d = dataset_dir()
    ratings = [
        Rating(r[0], r[1], int(float(r[2])), int(float(r[3]))) for r in _rows(d / "ml-100k.inter")
    ]
    ratings.sort(key=lambda r: (r.ts, int(r.user_id), int(r.item_id)))
    if limit is not None:
        ratings = ratings[:limit]
    movies = []
    for r in _rows(d / "ml-100k.item"):
        year = int(r[2]) if len(r) > 2 and r[2].isdigit() else None
        genres = tuple(r[3].split()) if len(r) > 3 and r[3] else ()
        movies.append(Movie(r[0], r[1] if len(r) > 1 else "", year, genres))
    users = [MLUser(r[0], int(r[1]), r[2], r[3], r[4]) for r in _rows(d / "ml-100k.user")]
    return MovieLens(tuple(ratings), tuple(movies), tuple(users))
