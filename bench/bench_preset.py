"""The published preset before and after issue 18: how many trials end at chance, Adam vs SGD.

Draws the published space's configurations once (random search, seeded), trains each on the
bundled digits with Adam (the preset before) and with SGD + momentum 0.9 (the preset now), and
counts the trials whose best validation accuracy stays within 0.02 of chance (1/10).

    python -m bench.bench_preset [--trials 6] [--epochs 3] [--out bench/results/preset_digits.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from core.paths import ASSETS
from core.spec import StudySpec, parse_spec

CHANCE_MARGIN = 0.02
"""A trial whose best validation accuracy is within this of 1/classes learned nothing."""


def _spec(optimizer: str | None) -> StudySpec:
    data = StudySpec.load(ASSETS / "specs" / "published_study.json").to_dict()
    data["space"] = [p for p in data["space"] if p["name"] not in ("optimizer", "momentum")]
    if optimizer is not None:
        data["space"].append({"name": "optimizer", "type": "fixed", "value": optimizer})
        data["space"].append({"name": "momentum", "type": "fixed", "value": 0.9})
    return parse_spec(data)


def run(trials: int, epochs: int) -> dict[str, object]:
    """Train the same seeded configurations with each optimizer; return the figures."""
    from core.training.data import load_dataset
    from core.training.model import build_model, clear_session, fit_trial

    base = _spec(None)
    d = base.dataset
    data = load_dataset(
        d.name, path=d.path, subset=d.subset, validation_split=d.validation_split, seed=base.seed
    )
    chance = 1.0 / data.num_classes
    out: dict[str, object] = {"trials": trials, "epochs": epochs, "seed": base.seed}
    for label, optimizer in (("adam", None), ("sgd_momentum_0.9", "sgd")):
        spec = _spec(optimizer)
        rows = []
        for i, params in enumerate(spec.sample(trials)):
            started = time.perf_counter()
            model = build_model(params, data.input_shape, data.num_classes, seed=spec.seed + i)
            history = fit_trial(model, data, params, epochs)
            best = max(float(v) for v in history.history["val_accuracy"])
            rows.append(
                {
                    "learning_rate": round(float(params["learning_rate"]), 5),
                    "batch_size": params["batch_size"],
                    "best_val_accuracy": round(best, 4),
                    "at_chance": abs(best - chance) <= CHANCE_MARGIN,
                    "seconds": round(time.perf_counter() - started, 2),
                }
            )
            clear_session()
        out[label] = {
            "at_chance": sum(bool(r["at_chance"]) for r in rows),
            "best": max(float(r["best_val_accuracy"]) for r in rows),  # type: ignore[arg-type]
            "trials": rows,
        }
    return out


def main() -> None:
    """Run and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", default="bench/results/preset_digits.json")
    args = parser.parse_args()
    figures = run(args.trials, args.epochs)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in figures.items() if not isinstance(v, dict)}))
    for label in ("adam", "sgd_momentum_0.9"):
        part = figures[label]
        assert isinstance(part, dict)
        accs = [r["best_val_accuracy"] for r in part["trials"]]
        print(f"{label}: {part['at_chance']} of {args.trials} at chance; best accuracies {accs}")


if __name__ == "__main__":
    main()
