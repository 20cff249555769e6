"""The proxy's command line: which mode, and what it refuses."""

from __future__ import annotations

import argparse

import pytest

from mcp_proxy import cli


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_stdio_options_and_the_command_after_the_separator() -> None:
    args = _parse("--name", "x", "--capture-arguments", "full", "--", "npx", "-y", "server", "--flag")
    assert args.command[-4:] == ["npx", "-y", "server", "--flag"]
    options = cli.options_from(args)
    assert options.policy.arguments == "full" and options.policy.results is False


@pytest.mark.parametrize(
    "argv",
    [(), ("--http", "127.0.0.1:1"), ("--http", "127.0.0.1:1", "--config", "c.json", "--", "cmd")],
)
def test_a_mode_must_be_chosen_and_complete(argv: tuple[str, ...]) -> None:
    assert cli.run(_parse(*argv)) == 2
