"""Tests of core/cli/: the command line."""
