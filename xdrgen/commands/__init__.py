"""One module per ``xdrgen`` subcommand; each exposes ``register(subparsers)``."""

COMMANDS = ("check", "generate", "build", "decode", "dissect")
