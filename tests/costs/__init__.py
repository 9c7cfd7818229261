"""Tests of core/costs/: prices, caps and forecasts."""
