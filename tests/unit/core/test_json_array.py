"""schemas.json_array: a JSON array's top-level elements, against orjson's own reading of them."""

from __future__ import annotations

import orjson
from hypothesis import given, settings, strategies as st

from schemas.json_array import split_array

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),  # quotes, backslashes, brackets and commas inside strings included
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(json_values, max_size=8), st.sampled_from([b"", b" ", b"\n\t "]))
def test_elements_are_what_orjson_reads_in_the_array(values: list[object], ws: bytes) -> None:
    parts = [orjson.dumps(v) for v in values]
    raw = ws + b"[" + ws + (b"," + ws).join(p + ws for p in parts) + b"]" + ws
    got = split_array(raw)
    assert got is not None
    assert [orjson.loads(g) for g in got] == orjson.loads(raw) == values
    assert got == [p for p in parts]


def test_strings_hide_brackets_commas_and_escaped_quotes() -> None:
    raw = b'[{"a": "x,]}\\"["}, "\\\\", [1, [2]]]'
    assert split_array(raw) == [b'{"a": "x,]}\\"["}', b'"\\\\"', b"[1, [2]]"]


def test_deep_elements_are_split_without_a_depth_limit() -> None:
    deep = b'{"a":' * 5000 + b"1" + b"}" * 5000
    assert split_array(b"[" + deep + b", {}]") == [deep, b"{}"]


def test_broken_structure_is_none() -> None:
    for raw in (b"", b"{}", b"[", b"[1,", b"[1,]", b"[,1]", b"[1,,2]", b"[{]", b"[{]}", b"[1]]", b"[1] x",
                b'["abc]', b"[1]\x00", b"[[1]"):
        assert split_array(raw) is None, raw
    assert split_array(b"[]") == [] and split_array(b" [ ] ") == []
