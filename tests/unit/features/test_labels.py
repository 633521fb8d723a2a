"""Property tests of the label rules (streams/labels.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import (Click, Dismiss, Implement, Impression, InteractionEvent, Rate, Save,
                            Share, View)
from streams.labels import (DEFAULT_LABELS, Grade, LabelConfig, closes_at, grade, join,
                            label_count_writes, window_closed)

T0 = datetime(2025, 5, 1, 12, 0, tzinfo=timezone.utc)
POOL = ["a", "b", "c", "d", "e", "f"]
TYPES = ["view", "click", "save", "share", "rate", "implement", "dismiss"]
CLASSES: dict[str, Any] = {"click": Click, "save": Save, "share": Share, "implement": Implement,
                           "dismiss": Dismiss}


def make(kind: str, k: int, user: str, item: str, offset_s: float, extra: int = 0) -> InteractionEvent:
    base = dict(event_id=f"x{k}", ts=T0 + timedelta(seconds=offset_s), user_id=user, item_id=item)
    if kind == "view":
        return View(**base, dwell_ms=extra * 1000)
    if kind == "rate":
        return Rate(**base, rating=1 + extra % 5)
    ev: InteractionEvent = CLASSES[kind](**base)
    return ev


interaction = st.tuples(st.sampled_from(TYPES), st.sampled_from(["u0", "u0", "u0", "u1"]),
                        st.sampled_from(POOL), st.floats(-3600, 7200), st.integers(0, 120))
impression = st.lists(st.sampled_from(POOL), min_size=1, max_size=8)
label_cfg = st.builds(LabelConfig,
                      window_s=st.sampled_from([600.0, 1800.0]),
                      window_by_type=st.dictionaries(st.sampled_from(TYPES), st.sampled_from([60.0, 3600.0]),
                                                     max_size=2),
                      dismiss_overrides=st.booleans())


def imp_of(items: list[str]) -> Impression:
    feats = [[float(k), float(k) / 2] for k in range(len(items))]
    return Impression(event_id="imp", ts=T0, user_id="u0", request_id="req-1", item_ids=items,
                      model_version="m7", feature_names=["f1", "f2"], features=feats)


def reference_grade(imp: Impression, item: str, evs: list[InteractionEvent], cfg: LabelConfig) -> int:
    gs = []
    for e in evs:
        dt = (e.ts - imp.ts).total_seconds()
        if e.user_id == imp.user_id and e.item_id == item and 0 <= dt <= cfg.window_by_type.get(e.type, cfg.window_s):
            gs.append(grade(e, cfg))
    if not gs:
        return 0
    if cfg.dismiss_overrides and -1 in gs:
        return -1
    return max(gs)


def test_grade_ordering_is_total_and_as_specified() -> None:
    ladder = [make("implement", 0, "u", "i", 0), make("save", 0, "u", "i", 0),
              make("share", 0, "u", "i", 0), make("click", 0, "u", "i", 0),
              make("view", 0, "u", "i", 0, 30), make("view", 0, "u", "i", 0, 29)]
    grades = [grade(e) for e in ladder] + [int(Grade.NOTHING), grade(make("dismiss", 0, "u", "i", 0))]
    assert grades == sorted(grades, reverse=True) and len(set(grades)) == len(grades)
    assert grade(make("rate", 0, "u", "i", 0, 3)) == grade(make("share", 0, "u", "i", 0))  # rating 4
    assert grade(make("rate", 0, "u", "i", 0, 2)) < grade(make("click", 0, "u", "i", 0))  # rating 3


@given(st.integers(0, 200), st.integers(0, 200), st.integers(0, 10), st.integers(0, 10))
def test_grade_is_monotone_in_dwell_and_rating(d1: int, d2: int, r1: int, r2: int) -> None:
    lo, hi = sorted((d1, d2))
    assert grade(make("view", 0, "u", "i", 0, lo)) <= grade(make("view", 0, "u", "i", 0, hi))
    lo, hi = sorted((r1 % 5, r2 % 5))
    assert grade(make("rate", 0, "u", "i", 0, lo)) <= grade(make("rate", 0, "u", "i", 0, hi))


@settings(max_examples=300, deadline=None)
@given(impression, st.lists(interaction, max_size=25), label_cfg)
def test_join_matches_reference_one_row_per_item(items: list[str], raw: list[Any], cfg: LabelConfig) -> None:
    imp = imp_of(items)
    evs = [make(k_, n, u, i, off, x) for n, (k_, u, i, off, x) in enumerate(raw)]
    rows = join(imp, evs, cfg)
    distinct = list(dict.fromkeys(items))
    assert [r.item_id for r in rows] == distinct
    assert all(r.group_id == "req-1" and r.model_version == "m7" for r in rows)
    for r in rows:
        assert r.position == items.index(r.item_id)
        assert r.features == (float(r.position), r.position / 2) and r.feature_names == ("f1", "f2")
        assert r.grade == reference_grade(imp, r.item_id, evs, cfg)
        assert r.relevance == max(r.grade, 0) and -1 <= r.grade <= 6
    assert sum(int(w.b) for w in label_count_writes(rows)) == len(rows)


@settings(max_examples=200, deadline=None)
@given(impression, st.lists(interaction, max_size=15), interaction)
def test_irrelevant_interactions_change_nothing(items: list[str], raw: list[Any], extra: Any) -> None:
    imp = imp_of(items)
    evs = [make(k_, n, u, i, off, x) for n, (k_, u, i, off, x) in enumerate(raw)]
    kind, _, item, off, x = extra
    window = DEFAULT_LABELS.window_s
    for noise in (make(kind, 999, "u0", item, -abs(off) - 0.001, x),          # before the impression
                  make(kind, 999, "u0", item, window + 1 + abs(off), x),      # after the window
                  make(kind, 999, "other", item, abs(off) % window, x),        # another user
                  make(kind, 999, "u0", "not-shown", abs(off) % window, x)):   # not impressed
        assert join(imp, evs + [noise]) == join(imp, evs)


@settings(max_examples=200, deadline=None)
@given(impression, st.lists(interaction, max_size=15), interaction)
def test_max_is_taken_and_dismiss_overrides(items: list[str], raw: list[Any], extra: Any) -> None:
    imp = imp_of(items)
    evs = [make(k_, n, u, i, off, x) for n, (k_, u, i, off, x) in enumerate(raw)]
    kind, _, _, off, x = extra
    target = items[0]
    new = make(kind, 999, "u0", target, abs(off) % 1800, x)
    before = {r.item_id: r.grade for r in join(imp, evs)}
    after = {r.item_id: r.grade for r in join(imp, evs + [new])}
    if kind == "dismiss":
        assert after[target] == -1
    elif before[target] != -1:
        assert after[target] == max(before[target], grade(new))
    else:
        assert after[target] == -1  # an earlier dismiss still overrides
    assert {k: v for k, v in after.items() if k != target} == {
        k: v for k, v in before.items() if k != target}


def test_dismiss_without_override_only_when_nothing_positive() -> None:
    cfg = LabelConfig(dismiss_overrides=False)
    imp = imp_of(["a", "b"])
    evs = [make("dismiss", 1, "u0", "a", 10), make("dismiss", 2, "u0", "b", 10),
           make("click", 3, "u0", "b", 20)]
    got = {r.item_id: r.grade for r in join(imp, evs, cfg)}
    assert got == {"a": -1, "b": int(Grade.CLICK)}
    assert {r.item_id: r.grade for r in join(imp, evs)} == {"a": -1, "b": -1}


def test_unlabelled_items_are_zero_and_window_closes_after_longest_type_window() -> None:
    cfg = LabelConfig(window_s=1800, window_by_type={"implement": 7200})
    imp = imp_of(["a", "b"])
    assert [r.grade for r in join(imp, [], cfg)] == [0, 0]
    assert closes_at(imp, cfg) == T0 + timedelta(hours=2)
    assert not window_closed(imp, T0 + timedelta(hours=2), cfg)
    assert window_closed(imp, T0 + timedelta(hours=2, seconds=1), cfg)
    late_implement = make("implement", 1, "u0", "a", 5000)
    late_click = make("click", 2, "u0", "b", 5000)
    got = {r.item_id: r.grade for r in join(imp, [late_implement, late_click], cfg)}
    assert got == {"a": int(Grade.IMPLEMENT), "b": 0}
