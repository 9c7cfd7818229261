"""Container contract tests: the bundled trainer run as each cloud's service starts it."""
