"""Tests of core/analysis/: statistics and the report."""
