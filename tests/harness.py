"""One harness protocol for the four backends: what the conformance suite drives on each.

Each ``tests/harness_<backend>.py`` subclasses :class:`BackendHarness` and wires its backend
to something real that runs here (worker processes for local, moto's server for SageMaker,
the loopback fakes for Vertex AI and Azure ML), through a ``harness(store, tmp_path)``
context manager.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from core.backends.base import Backend
from core.store import RunRow, Store

H = TypeVar("H", bound="BackendHarness")


@dataclass
class BackendHarness:
    """A backend wired to what runs here, and the levers the conformance suite pulls.

    Attributes:
        backend: the backend under test.
        settings: settings with which ``backend.check`` returns [].
        finish: ``finish(handle, n)``: the run with that handle ends with n completed trials.
        backend_kwargs: the backend's constructor arguments (a new instance = an app restart).
    """

    backend: Backend
    settings: dict[str, Any]
    finish: Callable[[str, int], None]
    backend_kwargs: dict[str, Any] = field(default_factory=dict)

    def add_trial(self, run: RunRow, curve: list[float]) -> float:
        """Add one completed trial whose val_accuracy goes ``curve`` (per epoch), as the
        platform reports it; return the platform's own objective for it."""
        raise NotImplementedError

    def trainer_seed(self, run: RunRow, trial_key: str) -> int | None:
        """The seed the trainer trained trial ``trial_key`` with, where the harness sees it."""
        return None

    def fresh_backend(self, store: Store) -> Backend:
        """A new backend wired like this one (an app restart: it knows only the store)."""
        backend: Backend = type(self.backend)(store, **self.backend_kwargs)  # type: ignore[call-arg]
        return backend


def wired_to_fake(
    harness_type: type[H],
    backend_type: type[Backend],
    store: Store,
    settings: dict[str, Any],
    fake: Any,
    kwargs: dict[str, Any],
) -> H:
    """A harness whose backend is built with ``kwargs`` that aim its SDK at a loopback fake.

    Args:
        harness_type: the backend's harness class (it has a ``fake`` field).
        backend_type: the backend class.
        store: the store the backend writes to.
        settings: settings with which ``check`` returns [].
        fake: the running fake; its ``finish(handle, n)`` ends a run.
        kwargs: the backend's constructor arguments besides the store.
    """
    return harness_type(
        backend=backend_type(store, **kwargs),  # type: ignore[call-arg]
        settings=dict(settings),
        finish=fake.finish,
        fake=fake,  # type: ignore[call-arg]
        backend_kwargs=kwargs,
    )


def harness_fixture(make: Callable[[Store, Path], AbstractContextManager[H]], name: str) -> Any:
    """A pytest fixture, named ``name``, that yields ``make(store, tmp_path)``'s harness.

    Args:
        make: a ``harness(store, tmp_path)`` context manager of a ``tests/harness_*.py``.
        name: the fixture's name in the test module (``azure``, ``vertex``...).
    """

    def fixture(store: Store, tmp_path: Path) -> Iterator[H]:
        with make(store, tmp_path) as h:
            yield h

    return pytest.fixture(name=name)(fixture)
