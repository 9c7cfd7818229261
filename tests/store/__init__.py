"""Tests of core/store/: the result store."""
