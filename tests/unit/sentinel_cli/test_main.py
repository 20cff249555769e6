"""sentinel_cli.main: the subcommand table, and dispatching to a subcommand module's `run`."""

from __future__ import annotations

import argparse
import importlib
import sys
import types

import pytest

from sentinel_cli import main


def test_every_subcommand_module_has_arguments_and_run() -> None:
    for name, module_name in main.SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        assert callable(module.add_arguments), name
        assert callable(module.run), name
        assert (module.__doc__ or "").strip(), f"{name}: its docstring is its help"


def test_a_subcommand_is_one_entry_in_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    # What a process's own CLI (a module with add_arguments and run) needs to become a subcommand.
    module = types.ModuleType("fake_cli", "Do the fake thing.\n\nMore about it.")
    seen: list[argparse.Namespace] = []

    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--name", default="x")
        parser.add_argument("rest", nargs=argparse.REMAINDER)

    def run(args: argparse.Namespace) -> int:
        seen.append(args)
        return 3

    module.add_arguments = add_arguments  # type: ignore[attr-defined]
    module.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_cli", module)
    monkeypatch.setitem(main.SUBCOMMANDS, "fake", "fake_cli")

    # The parser main() dispatches with (main() itself also sets OTEL_* defaults in os.environ).
    args = main.build_parser().parse_args(["fake", "--name", "n", "--", "cmd", "arg"])
    assert args.run(args) == 3
    assert seen[0].name == "n"
    assert seen[0].rest == ["--", "cmd", "arg"]
    assert "Do the fake thing." in main.build_parser().format_help()
