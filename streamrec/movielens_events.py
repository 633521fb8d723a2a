"""MovieLens-100K as streamrec events (pure mapping, documented in the README).

* every movie  -> one ``item`` event: categories = genres, attributes = title and
  release year, ``created_at`` = 1 January of the release year;
* every user   -> one ``user`` event: age, gender, occupation, zip code;
* every rating -> one ``rate`` event with the 1-5 stars kept as ``rating``, at
  the rating's own timestamp.  MovieLens records only explicit ratings, so no
  view/click is invented; label rules treat ``rating >= 4`` as a high rating.

Metadata is stamped one second before the first rating so that it precedes
every interaction.  Event ids are deterministic (``ml100k-r-<user>-<item>``), so
publishing twice is deduplicated downstream.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Iterator

from offline.movielens import MovieLens
from schemas.events import Event, ItemMeta, Rate, UserMeta


def _dt(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def metadata_events(ml: MovieLens) -> Iterator[Event]:
    first = min((r.ts for r in ml.ratings), default=0)
    ts = _dt(max(first - 1, 0))
    for m in ml.movies:
        attrs: dict[str, str | int | float | bool] = {"title": m.title[:256]}
        if m.year is not None:
            attrs["year"] = m.year
        yield ItemMeta(
            event_id=f"ml100k-item-{m.item_id}",
            ts=ts,
            item_id=m.item_id,
            categories=list(m.genres),
            attributes=attrs,
            created_at=datetime(m.year, 1, 1, tzinfo=timezone.utc) if m.year else None,
        )
    for u in ml.users:
        yield UserMeta(
            event_id=f"ml100k-user-{u.user_id}",
            ts=ts,
            user_id=u.user_id,
            attributes={"age": u.age, "gender": u.gender, "occupation": u.occupation, "zip": u.zip_code},
        )


def rating_events(ml: MovieLens) -> Iterator[Event]:
    for r in ml.ratings:
        yield Rate(
            event_id=f"ml100k-r-{r.user_id}-{r.item_id}",
            ts=_dt(r.ts),
            user_id=r.user_id,
            item_id=r.item_id,
            rating=r.rating,
        )
