import pytest

from serving.cursor import BadCursor, Cursor, CursorCodec


def test_round_trip_and_next_accumulates_served() -> None:
    c = CursorCodec(b"k" * 32, max_served=10)
    first = c.next(None, "u1", "seed", ["a", "b"])
    assert first is not None
    cur = c.decode(first, "u1")
    assert cur == Cursor("u1", "seed", ("a", "b"))
    second = c.decode(c.next(cur, "u1", "other", ["c"]) or "", "u1")
    assert second.served == ("a", "b", "c") and second.seed == "seed"


def test_tampered_foreign_and_malformed_cursors_are_refused() -> None:
    c = CursorCodec(b"k" * 32)
    tok = c.encode(Cursor("u1", "s", ("a",)))
    body, _, mac = tok.partition(".")
    with pytest.raises(BadCursor, match="signature"):
        c.decode(body + "x." + mac, "u1")
    with pytest.raises(BadCursor, match="another user"):
        c.decode(tok, "u2")
    with pytest.raises(BadCursor, match="malformed"):
        c.decode("nodot", "u1")
    with pytest.raises(BadCursor, match="signature"):
        CursorCodec(b"other-key").decode(tok, "u1")


def test_no_next_cursor_past_the_cap_or_for_an_empty_page() -> None:
    c = CursorCodec(b"k", max_served=3)
    assert c.next(None, "u", "s", []) is None
    cur = c.decode(c.next(None, "u", "s", ["a", "b", "c"]) or "", "u")
    assert c.next(cur, "u", "s", ["d"]) is None
