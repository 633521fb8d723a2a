"""Open impressions are packed losslessly, deterministically, and far smaller than their JSON."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.codec import encode
from schemas.events import Impression
from streams.open_impression import MAGIC, pack_impression, unpack_impression

T = datetime(2025, 6, 1, 12, tzinfo=timezone.utc)
ids = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x2FFF, exclude_categories=("Cs", "Cc")),
              min_size=1, max_size=12)
finite = st.floats(allow_nan=False, allow_infinity=False)


@st.composite
def impressions(draw: st.DrawFn) -> Impression:
    items = draw(st.lists(ids, min_size=1, max_size=8))
    with_features = draw(st.booleans())
    names = draw(st.lists(ids, max_size=6)) if with_features else None
    feats = draw(st.lists(st.lists(finite, max_size=6), max_size=len(items))) if with_features else None
    return Impression(event_id=draw(ids), ts=T + timedelta(microseconds=draw(st.integers(0, 10**12))),
                      user_id=draw(ids), request_id=draw(ids), model_version=draw(ids), item_ids=items,
                      feature_names=names, features=feats)


@settings(max_examples=300, deadline=None)
@given(impressions())
def test_unpack_gives_back_the_same_impression_bit_for_bit(imp: Impression) -> None:
    packed = pack_impression(imp)
    assert packed.startswith(MAGIC) and packed == pack_impression(imp.model_copy())  # deterministic
    got = unpack_impression(packed)
    assert got == imp
    assert got is not None and encode(got) == encode(imp)  # floats identical, -0.0 and 5e-324 included


def _serving_shaped(seed: int = 0) -> Impression:
    rng = np.random.default_rng(seed)
    x = (np.abs(rng.normal(size=(20, 71))) * 37).astype(np.float32).astype(np.float64)
    x[:, ::9] = -1e30  # serving's missing-feature sentinel
    return Impression(event_id="e", ts=T, user_id="u1", request_id="r1", model_version="m1",
                      item_ids=[f"i{k}" for k in range(20)], feature_names=[f"feature_{k}_by_item" for k in range(71)],
                      features=x.tolist())


def test_a_serving_impression_packs_to_under_a_third_of_its_json() -> None:
    imp = _serving_shaped()
    assert len(pack_impression(imp)) * 3 < len(encode(imp))


def test_values_of_earlier_versions_still_read() -> None:
    imp = _serving_shaped(1)
    assert unpack_impression(encode(imp)) == imp


@pytest.mark.parametrize("raw", [None, b"", b"{not json", b'{"type": "click"}', MAGIC, MAGIC + b"garbage"])
def test_unreadable_values_are_refused(raw: bytes | None) -> None:
    assert unpack_impression(raw) is None


def test_truncated_or_inconsistent_packs_are_refused() -> None:
    import cramjam

    packed = pack_impression(_serving_shaped(2))
    assert unpack_impression(packed[:-7]) is None
    body = bytes(cramjam.zstd.decompress(packed[len(MAGIC):]))
    short = MAGIC + bytes(cramjam.zstd.compress(body[:-8], level=1))  # one feature value missing
    assert unpack_impression(short) is None
    odd = MAGIC + bytes(cramjam.zstd.compress(body + b"\x01", level=1))
    assert unpack_impression(odd) is None
