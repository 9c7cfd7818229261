"""The Backend protocol that local, SageMaker, Vertex AI and Azure ML each implement.

A backend only places work: the search algorithm is KerasTuner's or the cloud's, the CNN is
ours. Every backend is built with the store it writes to (and, for clouds, an optional client
or client factory so tests can pass a stub) and turns its provider's errors into
:class:`~core.errors.BackendError` / :class:`~core.errors.BackendNotReady` sentences.

Conformance is asserted with a one-line typed assignment in each module, e.g.
``_conforms: type[Backend] = LocalBackend``, and by ``tests/backends/test_backend_conformance.py``.

Example:
    >>> backend = get_backend("local", store)
    >>> backend.check({})                      # [] when ready
    >>> handle = backend.launch(spec, store.get_run(run_id))
    >>> backend.poll(store.get_run(run_id)).status
    'running'
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from core.backends.platforms import PLATFORMS
from core.errors import BackendError

if TYPE_CHECKING:
    from core.spec import StudySpec
    from core.store import RunRow, Store

log = logging.getLogger(__name__)

BACKENDS: dict[str, str] = {name: p.label for name, p in PLATFORMS.items()}
"""Backend names and the labels shown to people (from core.backends.platforms)."""

_MODULES = {name: (p.module, p.class_name) for name, p in PLATFORMS.items()}


@dataclass
class Forecast:
    """A time and cost forecast for one platform, with the basis of each number.

    Attributes:
        backend: the backend's name.
        instance_type: the machine the trials run on.
        expected_wall_s: expected wall time of the whole run.
        low_wall_s: low end of the expected range.
        high_wall_s: high end of the expected range.
        expected_cost_usd: expected cost of the whole run.
        low_cost_usd: low end of the cost range.
        high_cost_usd: high end of the cost range.
        worst_wall_s: worst case from the caps (None without a time cap).
        worst_cost_usd: worst case from the caps (None without a time cap).
        price_per_hour: the price used, per instance hour (accelerators included).
        basis: sentences saying where each number comes from.
    """

    backend: str
    instance_type: str | None = None
    expected_wall_s: float | None = None
    low_wall_s: float | None = None
    high_wall_s: float | None = None
    expected_cost_usd: float | None = None
    low_cost_usd: float | None = None
    high_cost_usd: float | None = None
    worst_wall_s: float | None = None
    worst_cost_usd: float | None = None
    price_per_hour: float | None = None
    basis: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form (stored on the run)."""
        return asdict(self)


@dataclass
class PollResult:
    """What one poll found.

    Attributes:
        status: the run's status (one of core.store.RUN_STATUSES).
        detail: a sentence about the status (e.g. 'stopped: budget reached'), or None.
        new_trials: trials written or updated by this poll.
        error: the run's error sentence, when it failed.
    """

    status: str
    detail: str | None = None
    new_trials: int = 0
    error: str | None = None


@runtime_checkable
class Backend(Protocol):
    """Where trials run: check, estimate, launch, poll, cancel."""

    name: str
    label: str

    def check(self, settings: Mapping[str, Any]) -> list[str]:
        """Return what is missing before a launch can work, a sentence each; [] when ready."""
        ...

    def estimate(self, spec: StudySpec, settings: Mapping[str, Any]) -> Forecast:
        """Return a time and cost forecast for running ``spec`` with ``settings``."""
        ...

    def launch(self, spec: StudySpec, run: RunRow) -> str:
        """Start ``run`` (settings in ``run.settings``) without blocking; return its handle.

        The handle (a process id, a cloud job name) is also stored on the run.
        """
        ...

    def poll(self, run: RunRow) -> PollResult:
        """Read the run's progress, write new trials and epochs to the store, return status."""
        ...

    def cancel(self, run: RunRow) -> None:
        """Stop the run; completed trials stay in the store."""
        ...


@runtime_checkable
class CloudBackend(Backend, Protocol):
    """A cloud backend also previews its exact request, exports a bundle and imports jobs."""

    def preview(self, spec: StudySpec, settings: Mapping[str, Any]) -> str:
        """Return the exact request the cloud would receive (JSON or YAML text)."""
        ...

    def export_bundle(self, spec: StudySpec, settings: Mapping[str, Any], dest: str) -> str:
        """Write the request and the trainer to folder ``dest`` for a user's own pipeline."""
        ...

    def import_job(self, job_name: str, run: RunRow) -> PollResult:
        """Attach an existing (e.g. finished) cloud job to ``run`` and read its trials."""
        ...


def get_backend(name: str, store: Store, **kwargs: Any) -> Backend:
    """Build the backend called ``name`` (importing its SDK lazily).

    Raises:
        BackendError: unknown name, or the backend's module is not available.
    """
    if name not in _MODULES:
        raise BackendError(
            f"Unknown platform {name!r}; use one of {', '.join(_MODULES)}.",
        )
    module_name, class_name = _MODULES[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise BackendError(
            f"The {BACKENDS[name]} backend cannot be loaded ({err}); reinstall with "
            "`make run` to get its packages."
        ) from err
    cls = getattr(module, class_name)
    backend: Backend = cls(store, **kwargs)
    return backend


def available_backends() -> list[str]:
    """Return the names of the backends whose modules exist in this installation."""
    import importlib.util

    return [n for n, (m, _) in _MODULES.items() if importlib.util.find_spec(m) is not None]
