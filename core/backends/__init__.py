"""Where trials run: one module a platform behind one protocol (see base.py)."""

from core.backends.base import BACKENDS, Backend, Forecast, PollResult, get_backend

__all__ = ["BACKENDS", "Backend", "Forecast", "PollResult", "get_backend"]
