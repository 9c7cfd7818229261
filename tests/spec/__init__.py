"""Tests of core/spec/: the study spec."""
