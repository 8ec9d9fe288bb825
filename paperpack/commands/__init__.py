"""Subcommands of `paperpack`, one module per area; each exposes `register(subparsers)`."""
