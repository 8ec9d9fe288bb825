"""Subcommands of `cbt`: per area, `<area>_args` declares the arguments (standard library only,
so `--help` is fast) and `<area>` holds the handlers, imported when their command runs."""
