"""`sentinel audit`'s own parts: durations, the trace link, the table."""

from __future__ import annotations

import argparse
from datetime import timedelta

import pytest

from sentinel import settings
from sentinel_cli.commands.audit import since, trace_url
from sentinel_cli.main import build_parser
from sentinel_cli.table import render


def test_since_reads_the_usual_units() -> None:
    assert since("90s") == timedelta(seconds=90)
    assert since("15m") == timedelta(minutes=15)
    assert since("1h") == timedelta(hours=1)
    assert since("2d") == timedelta(days=2)
    assert since("1.5w") == timedelta(weeks=1.5)
    with pytest.raises(argparse.ArgumentTypeError):
        since("yesterday")


def test_trace_url_points_at_the_trace_ui() -> None:
    assert trace_url("ab" * 16) == f"{settings.JAEGER_QUERY_URL}/trace/{'ab' * 16}"


def test_render_aligns_columns_and_right_aligns_numbers() -> None:
    text = render(["tool", "calls", "link"], [["read", 5, "http://x/1"], ["write_file", 120, "http://x/2"]])
    assert text.splitlines() == [
        "tool        calls  link",
        "read            5  http://x/1",
        "write_file    120  http://x/2",
    ]


def test_every_question_is_a_subcommand() -> None:
    parser = build_parser()
    for argv in (
        ["audit", "tools"],
        ["audit", "errors", "--server", "s"],
        ["audit", "slow", "--tool", "t"],
        ["audit", "session", "abc"],
        ["audit", "calls", "--server", "s", "--tool", "t", "--since", "1h", "--json"],
    ):
        args = parser.parse_args(argv)
        assert args.question == argv[1]
    assert parser.parse_args(["audit", "calls", "--since", "2h"]).since == timedelta(hours=2)
