"""`streamrec eval stream` argument checks (no services started)."""

from __future__ import annotations

import doctest

import pytest

import streamrec.eval_stream_cli as cli_mod
from streamrec.cli import build_parser, main


def test_doctests() -> None:
    assert doctest.testmod(cli_mod).failed == 0


def test_defaults() -> None:
    a = build_parser().parse_args(["eval", "stream", "--dataset", "ml-100k", "--json", "out.json"])
    assert (a.what, a.chunk, a.retrain_every, a.concurrency, a.limit, a.mmr_lambda) == ("stream", 250, 0.1, 4, None, 1.0)


@pytest.mark.parametrize("argv", [["--chunk", "0"], ["--retrain-every", "0"], ["--retrain-every", "1.5"],
                                  ["--limit", "x"]])
def test_bad_options_are_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["eval", "stream", *argv])
    assert exc.value.code == 2
    assert "expected" in capsys.readouterr().err


def test_unknown_dataset_is_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "stream", "--dataset", "ml-1m"]) == 2
    assert "only ml-100k is supported" in capsys.readouterr().err
