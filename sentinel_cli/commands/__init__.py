"""The `sentinel` subcommands, one module each with `add_arguments(parser)` and `run(args) -> int`
(the table is `sentinel_cli.main.SUBCOMMANDS`). A module's first docstring line is its help text;
it imports what it needs inside `run`, so `sentinel --help` stays quick."""
