"""Tests of core/backends/: the four backends, their records and the shared cloud layer."""
