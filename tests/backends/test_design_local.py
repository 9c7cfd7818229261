"""A same-configurations study on the local backend: each configuration once, with its seed,
and two runs of it end in the blocked comparison."""

from __future__ import annotations

import pytest

from core.analysis.comparison import compare_view
from core.spec.design import CONFIG_INDEX, same_configurations
from core.store import Store
from tests.backends.test_local_backend import ended, launch, make_spec, wait_until


@pytest.mark.slow
def test_local_runs_train_each_configuration_once_and_compare_blocked(store: Store) -> None:
    design = same_configurations(make_spec(budget={"max_trials": 6, "epochs": 1}), 6)
    run_ids = []
    for threads in (1, 2):  # two local runs of one design, e.g. two thread settings
        backend, run_id = launch(store, design, {"threads": threads})
        wait_until(backend, store, run_id, ended(store, run_id), timeout=300)
        run = store.get_run(run_id)
        assert run.status == "completed", run.error
        trials = store.list_trials(run_id)
        assert sorted(t.params[CONFIG_INDEX] for t in trials) == list(range(6))
        for t in trials:
            index = t.params[CONFIG_INDEX]
            assert t.status == "completed" and t.objective is not None
            assert t.seed == design.seed + index
            for name, value in design.configurations[index].items():
                assert t.params[name] == pytest.approx(value)
        run_ids.append(run_id)
    view = compare_view(store, run_ids, "run_id")
    result = view.blocked["duration_s"]
    assert result.n_blocks == 6 and result.dropped_blocks == 0
    assert result.df_effect == 1 and result.df_error == 5
    assert result.conclusions[0].startswith("With each configuration measured on every run")
