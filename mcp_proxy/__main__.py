"""`python -m mcp_proxy`: the MCP audit proxy (see mcp_proxy/cli.py)."""

from __future__ import annotations

import argparse
import sys

from mcp_proxy import cli


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mcp_proxy", description=cli.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    cli.add_arguments(parser)
    return cli.run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
