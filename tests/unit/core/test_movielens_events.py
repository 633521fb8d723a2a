"""The documented MovieLens -> events mapping, on the real files from the recbole wheel."""

from __future__ import annotations

from collections import Counter

from offline.movielens import load
from schemas.codec import Rejection, decode, encode
from schemas.events import ItemMeta, Rate, UserMeta
from streamrec.movielens_events import metadata_events, rating_events


def test_mapping_covers_every_row_in_time_order() -> None:
    ml = load()
    meta = list(metadata_events(ml))
    rates = list(rating_events(ml))
    assert Counter(e.type for e in meta) == {"item": 1682, "user": 943}
    assert len(rates) == 100_000 and all(isinstance(e, Rate) for e in rates)
    ts = [e.ts for e in rates]
    assert ts == sorted(ts)
    assert max(e.ts for e in meta) < ts[0]  # metadata precedes every interaction
    assert len({e.event_id for e in rates}) == len(rates)  # deterministic, unique ids
    stars = Counter(e.rating for e in rates)  # type: ignore[attr-defined]
    assert set(stars) == {1, 2, 3, 4, 5}


def test_metadata_content_and_wire_round_trip() -> None:
    ml = load(limit=10)
    meta = list(metadata_events(ml))
    toy = next(e for e in meta if isinstance(e, ItemMeta) and e.item_id == "1")
    assert toy.categories == ["Animation", "Children's", "Comedy"]
    assert toy.attributes["year"] == 1995 and toy.created_at is not None and toy.created_at.year == 1995
    user = next(e for e in meta if isinstance(e, UserMeta) and e.user_id == "1")
    assert user.attributes == {"age": 24, "gender": "M", "occupation": "technician", "zip": "85711"}
    now = max(e.ts for e in rating_events(ml))
    for e in meta[:50] + list(rating_events(ml)):
        back = decode(encode(e), now)
        assert not isinstance(back, Rejection) and back == e
