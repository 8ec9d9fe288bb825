"""Subcommands of `cbt`, one module per area; each exposes `register(subparsers)`."""
