"""CLI sub-commands: each module here defines ``register(subparsers)``."""
