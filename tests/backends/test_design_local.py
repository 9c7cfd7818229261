"""A same-configurations study on the local backend: each configuration once, with its seed."""

from __future__ import annotations

import pytest

from core.spec.design import CONFIG_INDEX, same_configurations
from core.store import Store
from tests.backends.test_local_backend import ended, launch, make_spec, wait_until


@pytest.mark.slow
def test_local_run_trains_each_configuration_once_with_its_seed(store: Store) -> None:
    design = same_configurations(make_spec(), 3)
    backend, run_id = launch(store, design)
    wait_until(backend, store, run_id, ended(store, run_id))
    run = store.get_run(run_id)
    assert run.status == "completed", run.error
    trials = store.list_trials(run_id)
    assert sorted(t.params[CONFIG_INDEX] for t in trials) == [0, 1, 2]
    for t in trials:
        index = t.params[CONFIG_INDEX]
        assert t.status == "completed" and t.objective is not None
        assert t.seed == design.seed + index
        for name, value in design.configurations[index].items():
            assert t.params[name] == pytest.approx(value)
