"""The `sentinel` console script (`main`) and its subcommands, for operating and trying Sentinel
locally. Not part of what a production image installs."""
