"""Tests of core.training.model: the CNN built from trial parameters, trained briefly on real digits."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from core.training import model as M

ROOT = Path(__file__).resolve().parents[2]


def _digits(n: int = 300, size: int = 8) -> SimpleNamespace:
    """``n`` real 8x8 digits scaled to [0, 1], optionally blown up and padded to size x size."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images[:n] / 16.0).astype("float32")
    if size != 8:
        scale = size // 8
        x = np.kron(x, np.ones((1, scale, scale), dtype="float32"))
        pad = size - x.shape[1]
        x = np.pad(x, ((0, 0), (pad // 2, pad - pad // 2), (pad // 2, pad - pad // 2)))
    x = x[..., None]
    y = d.target[:n].astype("int32")
    cut = int(n * 0.8)
    return SimpleNamespace(x_train=x[:cut], y_train=y[:cut], x_val=x[cut:], y_val=y[cut:])


@pytest.fixture(scope="module")
def digits8() -> SimpleNamespace:
    return _digits()


@pytest.fixture(scope="module")
def digits28() -> SimpleNamespace:
    return _digits(size=28)


def test_private_defaults_match_the_spec() -> None:
    from core.spec import default_params

    assert default_params() == M.DEFAULTS
    assert M.default_params() == M.DEFAULTS


@pytest.mark.parametrize(
    ("raw", "expected"),
    [({"batch_size": "64.0"}, 64), ({"batch_size": 32.0}, 32), ({"batch_size": "128"}, 128)],
)
def test_integers_sent_as_floats_or_text_are_cast(raw: dict, expected: int) -> None:
    p = M.resolve_params(raw)
    assert p["batch_size"] == expected and isinstance(p["batch_size"], int)
    assert p["learning_rate"] == 1e-3 and p["optimizer"] == "adam"  # defaults filled in


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ({"batch_size": 32.5}, "whole number"),
        ({"filters": "many"}, "whole number"),
        ({"learning_rate": "fast"}, "must be a number"),
        ({"learning_rate": 0}, "greater than 0"),
        ({"dropout_rate": 1.0}, "below 1"),
        ({"conv_blocks": 9}, "conv_blocks"),
        ({"optimizer": "adagrad"}, "adam, sgd, rmsprop"),
    ],
)
def test_bad_params_raise_a_sentence(raw: dict, words: str) -> None:
    with pytest.raises(ValueError, match=words) as info:
        M.build_model(raw, (8, 8, 1), 10)
    assert str(info.value).endswith(".")


def test_bad_optimizer_name_in_make_optimizer() -> None:
    with pytest.raises(ValueError, match=r"Optimizer 'nadam' is not supported; use one of adam"):
        M.make_optimizer("nadam", 0.01)


def test_unknown_option_and_bad_shapes_raise() -> None:
    with pytest.raises(ValueError, match="batch_norm"):
        M.build_model({}, (8, 8, 1), 10, options={"batchnorm": False})
    with pytest.raises(ValueError, match="height, width, channels"):
        M.build_model({}, (8, 8), 10)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least 2 classes"):
        M.build_model({}, (8, 8, 1), 1)


CASES = [
    (1, 8, "adam", True),
    (2, 8, "sgd", True),
    (3, 8, "rmsprop", False),
    (4, 8, "adam", True),
    (1, 28, "sgd", True),
    (4, 28, "rmsprop", True),
]


@pytest.mark.slow
@pytest.mark.parametrize(("blocks", "size", "optimizer", "batch_norm"), CASES)
def test_builds_and_trains_one_epoch(
    blocks: int,
    size: int,
    optimizer: str,
    batch_norm: bool,
    digits8: SimpleNamespace,
    digits28: SimpleNamespace,
) -> None:
    data = digits8 if size == 8 else digits28
    params = {"conv_blocks": blocks, "optimizer": optimizer, "learning_rate": 0.01, "filters": 8}
    options = {"batch_norm": batch_norm}
    M.clear_session()
    model = M.build_model(params, (size, size, 1), 10, options)
    assert model.output_shape == (None, 10)
    assert type(model.optimizer).__name__.lower() == optimizer
    assert model.count_params() == M.count_params(params, (size, size, 1), 10, options)
    pools = [layer for layer in model.layers if layer.name.startswith("pool")]
    expected_pools, side = 0, size
    for _ in range(blocks):
        if side >= 2:
            expected_pools, side = expected_pools + 1, side // 2
    assert len(pools) == expected_pools
    assert any(layer.name.startswith("bn") for layer in model.layers) == batch_norm
    history = M.fit_trial(model, data, {**params, "batch_size": "32.0"}, epochs=1)
    assert set(history.history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert math.isfinite(history.history["loss"][0])
    assert math.isfinite(history.history["val_loss"][0])
    assert 0.0 <= history.history["val_accuracy"][0] <= 1.0


def test_sgd_has_momentum() -> None:
    opt = M.make_optimizer("SGD", 0.05)
    assert float(opt.momentum) == pytest.approx(0.9)
    assert float(opt.learning_rate) == pytest.approx(0.05)


@pytest.mark.slow
def test_defaults_learn_digits(digits8: SimpleNamespace) -> None:
    """The defaults must learn something in 3 epochs of 240 images (chance is 0.1)."""
    import keras

    M.clear_session()
    keras.utils.set_random_seed(0)
    model = M.build_model({}, (8, 8, 1), 10)
    history = M.fit_trial(model, digits8, {"batch_size": 16}, epochs=3)
    assert history.history["val_accuracy"][-1] > 0.5


def test_fit_trial_rejects_zero_epochs(digits8: SimpleNamespace) -> None:
    with pytest.raises(ValueError, match="Epochs must be at least 1"):
        M.fit_trial(object(), digits8, {}, epochs=0)  # type: ignore[arg-type]


@pytest.mark.slow
def test_clear_session_keeps_memory_flat() -> None:
    import psutil

    proc = psutil.Process()

    def build_some(n: int) -> None:
        for _ in range(n):
            M.build_model({"conv_blocks": 3, "filters": 64}, (28, 28, 1), 10)
            M.clear_session()

    build_some(2)
    before = proc.memory_info().rss
    build_some(8)
    grown_mb = (proc.memory_info().rss - before) / 2**20
    assert grown_mb < 100, f"memory grew by {grown_mb:.0f} MiB over 8 builds"

    import keras

    keras.backend.get_uid("probe")
    M.clear_session()
    assert keras.backend.get_uid("probe") == 1  # Keras' global state was reset


@pytest.mark.slow
def test_configure_threads_before_tensorflow_starts() -> None:
    code = (
        "from core.training.model import configure_threads\n"
        "import tensorflow as tf\n"
        "assert configure_threads(1) is True\n"
        "print(tf.config.threading.get_intra_op_parallelism_threads(),"
        " tf.config.threading.get_inter_op_parallelism_threads())\n"
        "tf.constant(1.0) + 1.0\n"
        "assert configure_threads(2) is False\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["1", "1"]
    with pytest.raises(ValueError, match="0 or more"):
        M.configure_threads(-1)


# ----------------------------------------------------------------------------- reusable models


def _weights(model: object) -> list[np.ndarray]:
    return [np.array(w) for w in model.get_weights()]  # type: ignore[attr-defined]


def test_architecture_key_ignores_what_a_reset_can_change() -> None:
    base = {"learning_rate": 0.01, "dropout_rate": 0.2, "batch_size": 32}
    other = {"learning_rate": 0.05, "dropout_rate": 0.4, "batch_size": 128}
    key = M.architecture_key(base, (8, 8, 1), 10)
    assert M.architecture_key(other, (8, 8, 1), 10) == key
    assert M.architecture_key({**base, "filters": 16}, (8, 8, 1), 10) != key
    assert M.architecture_key({**base, "optimizer": "sgd"}, (8, 8, 1), 10) != key
    assert M.architecture_key(base, (28, 28, 1), 10) != key
    assert M.architecture_key(base, (8, 8, 1), 10, {"batch_norm": False}) != key
    assert M.architecture_key({**base, "dropout_rate": 0.0}, (8, 8, 1), 10) != key


@pytest.mark.slow
def test_reset_model_is_a_fresh_model_without_a_new_trace(digits8: SimpleNamespace) -> None:
    import keras

    M.clear_session()
    keras.utils.set_random_seed(1)
    first = {"learning_rate": 0.01, "dropout_rate": 0.1, "batch_size": 32}
    model = M.build_model(first, (8, 8, 1), 10, reusable=True)
    M.fit_trial(model, digits8, first, epochs=2)
    train_step = model.train_function
    trained = _weights(model)
    assert int(model.optimizer.iterations) > 0

    second = {"learning_rate": 0.003, "dropout_rate": 0.35, "batch_size": 16}
    keras.utils.set_random_seed(2)
    M.reset_model(model, second)
    again = _weights(model)
    keras.utils.set_random_seed(2)
    M.reset_model(model, second)
    assert all(np.array_equal(a, b) for a, b in zip(again, _weights(model), strict=True))
    keras.utils.set_random_seed(3)
    M.reset_model(model, second)
    assert not np.array_equal(_weights(model)[0], again[0])  # another seed, other weights

    kernels = {w.path: np.array(w) for w in model.weights}
    assert not np.array_equal(kernels["conv1/kernel"], trained[0])
    assert np.all(kernels["bn1/moving_variance"] == 1) and np.all(kernels["bn1/moving_mean"] == 0)
    assert np.all(kernels["dense/bias"] == 0)
    assert int(model.optimizer.iterations) == 0
    assert all(not np.any(np.array(v)) for v in model.optimizer.variables if "moment" in v.path)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.003)
    drops = [layer for layer in model.layers if "dropout" in layer.name]
    assert [layer.rate for layer in drops] == [0.35, 0.35]

    history = M.fit_trial(model, digits8, second, epochs=3)
    assert model.train_function is train_step  # no second trace
    assert history.history["val_accuracy"][-1] > 0.5  # it learns like a new model


@pytest.mark.slow
def test_a_reset_model_trains_exactly_like_a_new_one_with_the_same_seed(
    digits8: SimpleNamespace,
) -> None:
    """Reuse is only a speed-up: a trial's result depends on its parameters and seed alone."""
    import keras

    M.clear_session()
    first = {"learning_rate": 0.02, "dropout_rate": 0.1, "batch_size": 32}
    second = {"learning_rate": 0.005, "dropout_rate": 0.3, "batch_size": 16}
    reused = M.build_model(first, (8, 8, 1), 10, reusable=True, seed=1)
    M.fit_trial(reused, digits8, first, epochs=1)
    M.reset_model(reused, second, seed=7)
    new = M.build_model(second, (8, 8, 1), 10, reusable=True, seed=7)
    plain = M.build_model(second, (8, 8, 1), 10, seed=7)  # the cloud trainer's and exports'
    start = _weights(new)
    assert all(np.array_equal(a, b) for a, b in zip(_weights(reused), start, strict=True))
    assert all(np.array_equal(a, b) for a, b in zip(_weights(plain), start, strict=True))
    other = M.build_model(second, (8, 8, 1), 10, reusable=True, seed=8)
    assert not np.array_equal(_weights(other)[0], start[0])

    histories = []
    for model in (reused, new, plain):
        keras.utils.set_random_seed(3)  # the same data order
        histories.append(M.fit_trial(model, digits8, second, epochs=2).history)
    for history in histories[1:]:
        for name in ("loss", "val_loss", "val_accuracy"):
            assert np.allclose(history[name], histories[0][name], rtol=1e-5), name
    assert histories[0]["val_accuracy"][-1] > 0.5

    no_dropout = {**second, "dropout_rate": 0.0}  # Keras' Dropout has no random stream at 0
    bare = M.build_model(no_dropout, (8, 8, 1), 10, reusable=True, seed=7)
    assert M.fit_trial(bare, digits8, no_dropout, epochs=1).history["loss"]
    with pytest.raises(ValueError, match="without dropout"):
        M.reset_model(bare, second)


@pytest.mark.slow
def test_reusable_dropout_follows_its_rate_and_checkpoints_match_the_plain_model(
    tmp_path: Path, digits8: SimpleNamespace
) -> None:
    import keras
    import tensorflow as tf

    M.clear_session()
    model = M.build_model({"dropout_rate": 0.5}, (8, 8, 1), 10, reusable=True)
    layer = model.get_layer("dropout_dense")
    step = tf.function(lambda x: layer(x, training=True))
    ones = tf.ones((4000, 16))
    zeros = lambda: float(tf.reduce_mean(tf.cast(step(ones) == 0, tf.float32)))  # noqa: E731
    assert zeros() == pytest.approx(0.5, abs=0.03)
    layer.set_rate(0.2)
    assert zeros() == pytest.approx(0.2, abs=0.03)  # the traced step reads the new rate
    assert step.experimental_get_tracing_count() == 1
    assert np.array_equal(layer(ones, training=False), ones)

    path = tmp_path / "w.weights.h5"
    model.save_weights(path)
    plain = M.build_model({"dropout_rate": 0.5}, (8, 8, 1), 10)
    plain.load_weights(path)
    x = digits8.x_val[:8]
    assert np.allclose(plain.predict(x, verbose=0), model.predict(x, verbose=0))
    with pytest.raises(ValueError, match="reusable=True"):
        M.reset_model(plain, {})
    keras.backend.clear_session()
