"""Tests of core.training.data: every format built tiny on disk and loaded through the real code."""

from __future__ import annotations

import gzip
import io
import json
import math
import os
import pickle
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from core.errors import DatasetError
from core.training import data, dataformats
from core.training.data import (
    DATASET_NAMES,
    DIGIT_CLASSES,
    FASHION_CLASSES,
    available_datasets,
    dataset_fingerprint,
    load_dataset,
    load_dataset_cached,
    load_from_dir,
    stage_dataset,
)
from core.training.dataformats import CIFAR10_CLASSES
from tests.datafiles import (
    cifar_batch,
    idx_bytes,
    make_cifar_tarball,
    make_idx_gz_dir,
    make_image_folder,
    make_npz,
    tiny_images,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point every search place at empty temporary folders and forbid downloads."""
    monkeypatch.setenv("CLOUDTUNE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(data, "DEBIAN_DATASETS_DIR", tmp_path / "debian")

    def no_network(name: str) -> None:
        raise AssertionError(f"a test tried to download {name}")

    monkeypatch.setattr(data, "_keras_download", no_network)
    data.clear_dataset_cache()


def rows(x: np.ndarray) -> set[bytes]:
    """Each image as bytes, to compare sets of images regardless of order."""
    return {row.tobytes() for row in np.ascontiguousarray(x)}


def as_float(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) / np.float32(255)


# ------------------------------------------------------------------------------ digits


def test_digits_shapes_scaling_and_default_split() -> None:
    ds = load_dataset("digits")
    assert ds.name == "digits"
    assert ds.input_shape == (8, 8, 1) and ds.num_classes == 10
    assert ds.class_names == DIGIT_CLASSES
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int32
    assert float(ds.x_train.min()) == 0.0 and float(ds.x_train.max()) == 1.0
    assert len(ds.x_train) + len(ds.x_val) == 1797
    assert len(ds.x_val) == round(1797 * 0.2)
    assert set(np.unique(ds.y_val)) == set(range(10))
    assert "validation" in ds.description and "8x8x1" in ds.description
    with pytest.raises(ValueError):
        ds.x_train[0, 0, 0, 0] = 0.5  # shared by a worker's trials: read-only


def test_digits_fast_path_equals_sklearn_load_digits() -> None:
    fast = data._digits_from_bundled_file()
    assert fast is not None
    images, target = data._digits_from_sklearn()
    np.testing.assert_array_equal(fast[0], images)
    np.testing.assert_array_equal(fast[1], target)


def test_digits_does_not_import_tensorflow() -> None:
    code = (
        "import sys, core.training.data as d; ds = d.load_dataset('digits', subset=50); "
        "print(len(ds.x_train), 'tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["50", "False", "False"]


def test_split_is_deterministic_disjoint_and_seeded() -> None:
    a = load_dataset("digits", seed=1)
    b = load_dataset("digits", seed=1)
    c = load_dataset("digits", seed=2)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_val, b.y_val)
    assert not np.array_equal(a.y_val, c.y_val)
    # digits has a few duplicate images, so compare on a dataset of unique random images
    npz = make_npz(Path(os.environ["CLOUDTUNE_HOME"]) / "u.npz", n_train=60, n_test=0)
    d = load_dataset("custom", path=str(npz), validation_split=0.25)
    assert len(d.x_train) == 45 and len(d.x_val) == 15
    assert not rows(d.x_train) & rows(d.x_val)
    assert rows(d.x_train) | rows(d.x_val) == rows(as_float(tiny_images(60, (8, 8, 1), 3, 0)[0]))


def test_subset_is_stratified_and_validation_proportional() -> None:
    ds = load_dataset("digits", subset=100, seed=3)
    assert len(ds.x_train) == 100
    assert len(ds.x_val) == math.ceil(100 * 0.2 / 0.8)
    counts = np.bincount(ds.y_train, minlength=10)
    assert counts.min() >= 9 and counts.max() <= 11, counts
    small = load_dataset("digits", subset=30, validation_split=0.5)
    assert len(small.x_train) == 30 and len(small.x_val) == 30


# ------------------------------------------------------------------------------ IDX


def test_idx_gz_loads_exact_values_with_official_split(tmp_path: Path) -> None:
    folder = make_idx_gz_dir(tmp_path / "m", n_train=20, n_test=10)
    ds = load_dataset("mnist", path=str(folder), validation_split=None)
    x_train, y_train = tiny_images(20, (28, 28), 10, 0)
    x_test, y_test = tiny_images(10, (28, 28), 10, 1)
    np.testing.assert_array_equal(ds.x_train, as_float(x_train)[..., None])
    np.testing.assert_array_equal(ds.y_train, y_train)
    np.testing.assert_array_equal(ds.x_val, as_float(x_test)[..., None])
    np.testing.assert_array_equal(ds.y_val, y_test)
    assert ds.class_names == DIGIT_CLASSES
    assert "official test split" in ds.description and str(folder) in ds.description


def test_fashion_mnist_from_named_folder_and_uncompressed_idx(tmp_path: Path) -> None:
    folder = make_idx_gz_dir(tmp_path / "f", compress=False)
    ds = load_dataset("fashion_mnist", path=str(folder))
    assert ds.class_names == FASHION_CLASSES
    assert ds.input_shape == (28, 28, 1)
    assert len(ds.x_train) == 16 and len(ds.x_val) == 4  # 20 train, 20 % held out


def test_truncated_idx_gz_names_the_file(tmp_path: Path) -> None:
    folder = make_idx_gz_dir(tmp_path / "m")
    target = folder / "train-images-idx3-ubyte.gz"
    target.write_bytes(target.read_bytes()[:-40])
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte.gz.*(truncated|corrupt)"):
        load_dataset("mnist", path=str(folder))


def test_idx_bad_magic_short_payload_and_count_mismatch(tmp_path: Path) -> None:
    folder = make_idx_gz_dir(tmp_path / "m")
    labels = folder / "train-labels-idx1-ubyte.gz"
    labels.write_bytes(gzip.compress(b"\x12\x34\x08\x01" + bytes(8)))
    with pytest.raises(DatasetError, match="train-labels-idx1-ubyte.gz is not an IDX file"):
        load_dataset("mnist", path=str(folder))
    labels.write_bytes(gzip.compress(idx_bytes(np.zeros(20, np.uint8))[:-5]))
    with pytest.raises(DatasetError, match="header promises 20 values"):
        load_dataset("mnist", path=str(folder))
    labels.write_bytes(gzip.compress(idx_bytes(np.zeros(7, np.uint8))))
    with pytest.raises(DatasetError, match="20 images but .* 7 labels"):
        load_dataset("mnist", path=str(folder))


# ------------------------------------------------------------------------------ search order


def test_search_order_user_then_home_then_keras_then_debian(tmp_path: Path) -> None:
    home = Path(os.environ["CLOUDTUNE_HOME"]) / "datasets" / "fashion_mnist"
    keras = Path(os.environ["KERAS_HOME"]) / "datasets" / "fashion-mnist"
    debian = data.DEBIAN_DATASETS_DIR / "fashion-mnist"
    user = tmp_path / "mine"
    for seed, folder in ((1, home), (2, keras), (3, debian), (4, user)):
        make_idx_gz_dir(folder, seed=seed)

    def found() -> int:
        ds = load_dataset("fashion_mnist", path=str(user), validation_split=None)
        for seed in (1, 2, 3, 4):
            if np.array_equal(ds.y_train, tiny_images(20, (28, 28), 10, seed)[1]):
                return seed
        raise AssertionError("loaded data matches no folder")

    assert found() == 4
    for folder, next_seed in ((user, 1), (home, 2), (keras, 3)):
        for file in folder.iterdir():
            file.unlink()
        assert found() == next_seed


def test_keras_mnist_npz_and_named_parent_folder(tmp_path: Path) -> None:
    cache = Path(os.environ["KERAS_HOME"]) / "datasets"
    cache.mkdir(parents=True)
    make_npz(cache / "mnist.npz", n_train=30, n_test=10, shape=(28, 28), num_classes=10)
    ds = load_dataset("mnist", validation_split=None)
    assert ds.input_shape == (28, 28, 1) and len(ds.x_val) == 10
    assert ds.class_names == DIGIT_CLASSES
    make_idx_gz_dir(tmp_path / "all" / "fashion-mnist", n_train=12)
    assert len(load_dataset("fashion_mnist", path=str(tmp_path / "all"), subset=5).x_train) == 5


def test_missing_dataset_names_every_place_and_how_to_get_it(tmp_path: Path) -> None:
    nowhere = tmp_path / "nowhere"
    with pytest.raises(DatasetError) as err:
        load_dataset("fashion_mnist", path=str(nowhere))
    text = str(err.value)
    looked = text.split("Looked in: ", 1)[1].split(". ", 1)[0].split("; ")
    keras = Path(os.environ["KERAS_HOME"]) / "datasets"
    assert looked == [
        str(nowhere),
        str(nowhere / "fashion_mnist"),
        str(nowhere / "fashion-mnist"),
        str(Path(os.environ["CLOUDTUNE_HOME"]) / "datasets" / "fashion_mnist"),
        str(keras / "fashion-mnist"),
        str(keras / "fashion_mnist"),
        str(data.DEBIAN_DATASETS_DIR / "fashion-mnist"),
    ]
    assert "apt-get install dataset-fashion-mnist" in text
    assert "train-images-idx3-ubyte.gz" in text
    with pytest.raises(DatasetError, match=r"cifar-10-python\.tar\.gz"):
        load_dataset("cifar10")
    with pytest.raises(DatasetError, match=r"Name an \.npz file"):
        load_dataset("custom")


def test_download_only_when_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def fake(name: str) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
        calls.append(name)
        return tiny_images(20, (28, 28), 10, 5), tiny_images(10, (28, 28), 10, 6)

    monkeypatch.setattr(data, "_keras_download", fake)
    with pytest.raises(DatasetError, match="was not found"):
        load_dataset("mnist")
    assert calls == []
    ds = load_dataset("mnist", allow_download=True, validation_split=None)
    assert calls == ["mnist"] and len(ds.x_val) == 10 and "download" in ds.description

    def offline(name: str) -> None:
        raise OSError("network is unreachable")

    monkeypatch.setattr(data, "_keras_download", offline)
    with pytest.raises(DatasetError, match="download through keras.datasets failed"):
        load_dataset("cifar10", allow_download=True)


# ------------------------------------------------------------------------------ CIFAR


def expected_cifar(per_batch: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    parts = [tiny_images(per_batch, (32, 32, 3), 10, seed + i) for i in range(1, 6)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def test_cifar_tarball_pixels_channels_labels_and_names(tmp_path: Path) -> None:
    tarball = make_cifar_tarball(tmp_path, per_batch=4, test_size=6)
    ds = load_dataset("cifar10", path=str(tarball), validation_split=None)
    x, y = expected_cifar(4)
    np.testing.assert_array_equal(ds.x_train, as_float(x))  # RGB planes -> NHWC
    np.testing.assert_array_equal(ds.y_train, y)
    x_test, y_test = tiny_images(6, (32, 32, 3), 10, 10)
    np.testing.assert_array_equal(ds.x_val, as_float(x_test))
    np.testing.assert_array_equal(ds.y_val, y_test)
    assert ds.class_names == CIFAR10_CLASSES and ds.input_shape == (32, 32, 3)
    np.testing.assert_array_equal(cifar_batch(2, 0)[0].shape, (2, 3072))


def test_cifar_keras3_extracted_cache_layout(tmp_path: Path) -> None:
    tarball = make_cifar_tarball(tmp_path, per_batch=3)
    target = Path(os.environ["KERAS_HOME"]) / "datasets" / "cifar-10-batches-py-target"
    with tarfile.open(tarball) as tar:
        tar.extractall(target, filter="data")
    ds = load_dataset("cifar10", validation_split=None)
    np.testing.assert_array_equal(ds.y_train, expected_cifar(3)[1])
    assert str(target / "cifar-10-batches-py") in ds.description


def test_cifar_truncated_or_incomplete_tarball(tmp_path: Path) -> None:
    tarball = make_cifar_tarball(tmp_path)
    blob = tarball.read_bytes()
    tarball.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DatasetError, match="cifar-10-python.tar.gz.*(truncated|corrupt)"):
        load_dataset("cifar10", path=str(tarball))
    partial = tmp_path / "partial.tar.gz"
    with tarfile.open(partial, "w:gz") as tar:
        add_member(tar, "cifar-10-batches-py/data_batch_1", b"")
    with pytest.raises(DatasetError, match="lacks data_batch_2.*test_batch"):
        load_dataset("cifar10", path=str(partial))


def add_member(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))


class Hostile:
    def __reduce__(self) -> tuple[object, tuple[()]]:
        return (os.getpid, ())


def test_cifar_refuses_pickles_that_are_not_arrays(tmp_path: Path) -> None:
    tarball = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        for name in (*dataformats._CIFAR_BATCHES, "test_batch"):
            add_member(tar, f"cifar-10-batches-py/{name}", pickle.dumps({b"data": Hostile()}))
    with pytest.raises(DatasetError, match="data_batch_1 is not a CIFAR-10 python batch.*posix"):
        load_dataset("cifar10", path=str(tarball))


def test_unpickler_maps_numpy_1_module_names() -> None:
    unpickler = dataformats._ArrayUnpickler(io.BytesIO(b""))
    found = unpickler.find_class("numpy.core.multiarray", "_reconstruct")
    assert found is np._core.multiarray._reconstruct  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------ npz


def test_npz_with_and_without_test_split(tmp_path: Path) -> None:
    with_test = make_npz(tmp_path / "a.npz", n_train=30, n_test=10, class_names=["a", "b", "c"])
    ds = load_dataset("custom", path=str(with_test), validation_split=None)
    np.testing.assert_array_equal(ds.x_val, as_float(tiny_images(10, (8, 8, 1), 3, 1)[0]))
    assert ds.class_names == ["a", "b", "c"]
    without = make_npz(tmp_path / "b.npz", n_train=30, n_test=0)
    ds = load_dataset("custom", path=str(without), validation_split=None)
    assert len(ds.x_train) == 24 and len(ds.x_val) == 6  # falls back to 20 % held out
    assert ds.class_names == ["0", "1", "2"]


def test_npz_label_and_layout_variants(tmp_path: Path) -> None:
    x = np.random.default_rng(0).random((12, 3, 6, 5)).astype(np.float32)  # channels first
    y = np.array([2, 5, 9] * 4)
    np.savez(tmp_path / "cf.npz", x_train=x, y_train=np.eye(10)[y])  # one-hot
    ds = load_dataset("custom", path=str(tmp_path / "cf.npz"), validation_split=0.25)
    assert ds.input_shape == (6, 5, 3) and ds.class_names == ["2", "5", "9"]
    assert set(ds.y_train) | set(ds.y_val) == {0, 1, 2}
    assert rows(ds.x_train) | rows(ds.x_val) == rows(x.transpose(0, 2, 3, 1))
    flat = np.arange(10 * 64, dtype=np.int64).reshape(10, 64) % 256
    names = np.array(["cat", "dog"] * 5)
    np.savez(tmp_path / "flat.npz", x_train=flat, y_train=names)
    ds = load_dataset("custom", path=str(tmp_path / "flat.npz"))
    assert ds.input_shape == (8, 8, 1) and ds.class_names == ["cat", "dog"]
    assert float(ds.x_train.max()) <= 1.0


def test_npz_missing_keys_truncated_and_garbage(tmp_path: Path) -> None:
    np.savez(tmp_path / "wrong.npz", images=np.zeros((3, 4, 4)))
    with pytest.raises(DatasetError, match=r"wrong\.npz holds arrays \['images'\]"):
        load_dataset("custom", path=str(tmp_path / "wrong.npz"))
    good = make_npz(tmp_path / "cut.npz")
    good.write_bytes(good.read_bytes()[:200])
    with pytest.raises(DatasetError, match=r"cut\.npz cannot be read as an \.npz"):
        load_dataset("custom", path=str(good))
    (tmp_path / "junk.npz").write_bytes(b"this is not a zip file at all")
    with pytest.raises(DatasetError, match=r"junk\.npz cannot be read"):
        load_dataset("custom", path=str(tmp_path / "junk.npz"))
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DatasetError, match=r"notes\.txt is not a file CloudTune reads"):
        load_dataset("custom", path=str(tmp_path / "notes.txt"))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_images_are_refused_naming_the_file(tmp_path: Path, bad: float) -> None:
    y = np.array([0, 1] * 6)
    all_nan = tmp_path / "all.npz"
    np.savez(all_nan, x_train=np.full((12, 8, 8), bad, np.float32), y_train=y)
    with pytest.raises(DatasetError, match=r"all\.npz: x_train holds 768 of 768 pixel values"):
        load_dataset("custom", path=str(all_nan))
    x = np.random.default_rng(0).random((12, 8, 8))
    x_test = x[:4].copy()
    x_test[1, 2, 3] = bad  # one bad pixel in the test split
    one = tmp_path / "one.npz"
    np.savez(one, x_train=x, y_train=y, x_test=x_test, y_test=y[:4])
    with pytest.raises(DatasetError, match=r"one\.npz: x_test holds 1 of 256 .*NaN or infinite"):
        load_dataset("custom", path=str(one))
    folder = tmp_path / "idx"  # float IDX files (type 0x0D) can hold NaN too
    folder.mkdir()
    pixels = np.zeros((12, 8, 8), ">f4")
    pixels[0, 0, 0] = bad
    header = bytes([0, 0, 0x0D, 3]) + b"".join(int(d).to_bytes(4, "big") for d in pixels.shape)
    (folder / "train-images-idx3-ubyte").write_bytes(header + pixels.tobytes())
    (folder / "train-labels-idx1-ubyte").write_bytes(idx_bytes(y.astype(np.uint8)))
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte holds 1 of 768"):
        load_dataset("mnist", path=str(folder))


def test_float64_images_beyond_float32_range_scale_to_finite_values(tmp_path: Path) -> None:
    x = np.linspace(0.0, 1e300, 12 * 16).reshape(12, 4, 4)
    np.savez(tmp_path / "wide.npz", x_train=x, y_train=np.array([0, 1] * 6))
    ds = load_dataset("custom", path=str(tmp_path / "wide.npz"), validation_split=0.25)
    both = np.concatenate([ds.x_train, ds.x_val])
    assert np.isfinite(both).all() and float(both.min()) == 0.0 and float(both.max()) == 1.0
    span = np.array([-1.5e308, 1.5e308] * 96).reshape(12, 4, 4)  # max - min overflows
    np.savez(tmp_path / "span.npz", x_train=span, y_train=np.array([0, 1] * 6))
    with pytest.raises(DatasetError, match=r"span\.npz: the pixel values span too wide a range"):
        load_dataset("custom", path=str(tmp_path / "span.npz"))


# ------------------------------------------------------------------------------ image folders


def file_pixels(folder: Path) -> set[bytes]:
    from PIL import Image

    out = set()
    for file in sorted(folder.rglob("*.png")):
        with Image.open(file) as image:
            pixels = np.asarray(image, dtype=np.uint8)
        out.add(as_float(pixels if pixels.ndim == 3 else pixels[..., None]).tobytes())
    return out


def test_image_folder_rgb_values_and_class_names(tmp_path: Path) -> None:
    folder = make_image_folder(tmp_path / "imgs", per_class=4)
    ds = load_dataset("custom", path=str(folder))
    assert ds.class_names == ["cat", "dog", "fish"] and ds.input_shape == (8, 8, 3)
    assert len(ds.x_train) + len(ds.x_val) == 12
    assert rows(ds.x_train) | rows(ds.x_val) == file_pixels(folder)


def test_image_folder_grayscale_resize_and_split_folders(tmp_path: Path) -> None:
    from PIL import Image

    gray = make_image_folder(tmp_path / "g" / "train", mode="L", size=(6, 7))
    make_image_folder(tmp_path / "g" / "val", mode="L", size=(6, 7), per_class=2, seed=1)
    Image.new("L", (20, 11), color=200).save(gray / "dog" / "zz_big.png")
    ds = load_dataset("custom", path=str(tmp_path / "g"), validation_split=None)
    assert ds.input_shape == (6, 7, 1)  # grayscale kept as 1 channel, first image's size
    assert len(ds.x_train) == 13 and len(ds.x_val) == 6
    sized = load_dataset("custom", path=str(tmp_path / "g"), image_size=(4, 5))
    assert sized.input_shape == (4, 5, 1)


def test_image_folder_corrupt_image_is_named(tmp_path: Path) -> None:
    folder = make_image_folder(tmp_path / "imgs", per_class=2)
    (folder / "dog" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DatasetError, match=r"broken\.png cannot be read"):
        load_dataset("custom", path=str(folder))


# ------------------------------------------------------------------------------ load_from_dir


def build_format(kind: str, folder: Path) -> None:
    if kind == "idx":
        make_idx_gz_dir(folder)
    elif kind == "cifar_tar":
        make_cifar_tarball(folder, per_batch=2)
    elif kind == "cifar_dir":
        with tarfile.open(make_cifar_tarball(folder.parent / "t", per_batch=2)) as tar:
            tar.extractall(folder, filter="data")
    elif kind == "npz":
        make_npz(folder / "whatever.npz")
    else:
        make_image_folder(folder)


@pytest.mark.parametrize(
    ("kind", "name", "shape", "n"),
    [
        ("idx", "custom", (28, 28, 1), 20),
        ("cifar_tar", "cifar10", (32, 32, 3), 10),
        ("cifar_dir", "cifar10", (32, 32, 3), 10),
        ("npz", "custom", (8, 8, 1), 30),
        ("images", "custom", (8, 8, 3), 12),
    ],
)
def test_load_from_dir_detects_each_format(
    tmp_path: Path, kind: str, name: str, shape: tuple[int, int, int], n: int
) -> None:
    folder = tmp_path / "channel"
    build_format(kind, folder)
    ds = load_from_dir(folder)
    assert (ds.name, ds.input_shape) == (name, shape)
    assert len(ds.x_train) + len(ds.x_val) == n


def test_load_from_dir_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        load_from_dir(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="No dataset found in .*empty"):
        load_from_dir(tmp_path / "empty")
    make_npz(tmp_path / "two" / "a.npz")
    make_npz(tmp_path / "two" / "b.npz")
    with pytest.raises(DatasetError, match=r"several \.npz files \(a\.npz, b\.npz\)"):
        load_from_dir(tmp_path / "two")


# ------------------------------------------------------------------------------ staging


def assert_same(a: data.Dataset, b: data.Dataset) -> None:
    assert (a.name, a.class_names) == (b.name, b.class_names)
    for field in ("x_train", "y_train", "x_val", "y_val"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_stage_copies_original_files_and_round_trips(tmp_path: Path) -> None:
    source = make_idx_gz_dir(tmp_path / "src", n_train=30)
    dest = stage_dataset("fashion_mnist", path=str(source), dest_dir=tmp_path / "out", seed=4)
    for file in source.iterdir():
        assert (dest / file.name).read_bytes() == file.read_bytes()
    manifest = json.loads((dest / data.MANIFEST_NAME).read_text())
    assert manifest["validation_split"] == 0.2 and manifest["seed"] == 4
    expected = load_dataset("fashion_mnist", path=str(source), seed=4)
    assert_same(load_from_dir(dest), expected)
    tarball = make_cifar_tarball(tmp_path / "c", per_batch=2)
    staged = stage_dataset("cifar10", path=str(tarball), dest_dir=tmp_path / "cout")
    assert (staged / "cifar-10-python.tar.gz").read_bytes() == tarball.read_bytes()
    assert_same(load_from_dir(staged), load_dataset("cifar10", path=str(tarball)))


def test_stage_writes_npz_for_digits_subsets_and_images(tmp_path: Path) -> None:
    digits = stage_dataset("digits", path=None, dest_dir=tmp_path / "d", subset=40)
    assert_same(load_from_dir(digits), load_dataset("digits", subset=40))
    source = make_idx_gz_dir(tmp_path / "src", n_train=40)
    sub = stage_dataset("mnist", path=str(source), dest_dir=tmp_path / "s", subset=10)
    with np.load(sub / dataformats.STAGED_NPZ_NAME) as npz:
        assert npz["x_train"].dtype == np.uint8 and len(npz["x_train"]) == 10
    assert_same(load_from_dir(sub), load_dataset("mnist", path=str(source), subset=10))
    images = make_image_folder(tmp_path / "imgs")
    staged = stage_dataset("custom", path=str(images), dest_dir=tmp_path / "i")
    assert_same(load_from_dir(staged), load_dataset("custom", path=str(images)))
    with pytest.raises(DatasetError, match="not an empty folder"):
        stage_dataset("digits", path=None, dest_dir=staged)


def test_fingerprint_follows_names_and_contents(tmp_path: Path) -> None:
    a = make_npz(tmp_path / "a" / "x.npz").parent
    b = make_npz(tmp_path / "b" / "x.npz").parent
    assert dataset_fingerprint(a) == dataset_fingerprint(b)
    assert len(dataset_fingerprint(a)) == 64
    (b / "x.npz").rename(b / "y.npz")
    assert dataset_fingerprint(a) != dataset_fingerprint(b)
    (b / "y.npz").rename(b / "x.npz")
    blob = bytearray((b / "x.npz").read_bytes())
    blob[-1] ^= 1
    (b / "x.npz").write_bytes(bytes(blob))
    assert dataset_fingerprint(a) != dataset_fingerprint(b)
    with pytest.raises(DatasetError):
        dataset_fingerprint(tmp_path / "absent")


# ------------------------------------------------------------------------------ cache, registry


def test_cached_loader_returns_the_same_object(tmp_path: Path) -> None:
    folder = make_npz(tmp_path / "n" / "d.npz").parent
    first = load_dataset_cached("custom", path=str(folder), subset=10)
    assert load_dataset_cached("custom", path=f"{folder}/.", subset=10) is first
    assert load_dataset_cached("custom", path=str(folder), subset=10, seed=1) is not first
    data.clear_dataset_cache()
    assert load_dataset_cached("custom", path=str(folder), subset=10) is not first


def test_available_datasets_reports_locations_without_loading(tmp_path: Path) -> None:
    infos = {i.name: i for i in available_datasets()}
    assert tuple(infos) == DATASET_NAMES
    assert infos["digits"].available and not infos["mnist"].available
    assert infos["mnist"].location is None and "mnist.npz" in infos["mnist"].how_to_get
    home = Path(os.environ["CLOUDTUNE_HOME"]) / "datasets" / "mnist"
    make_idx_gz_dir(home)
    images = make_image_folder(tmp_path / "imgs")
    infos = {i.name: i for i in available_datasets(path=str(images))}
    assert infos["mnist"].available and infos["mnist"].location == str(home)
    assert infos["custom"].available and infos["custom"].location == str(images)
    assert not infos["cifar10"].available


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "imagenet"}, "Unknown dataset 'imagenet'; choose one of digits"),
        ({"name": "digits", "subset": 0}, "subset must be a whole number"),
        ({"name": "digits", "validation_split": 1.0}, "validation_split must be between 0 and 1"),
        ({"name": "digits", "image_size": (0, 3)}, "image_size must be"),
    ],
)
def test_bad_options_are_sentences(kwargs: dict, message: str) -> None:
    name = kwargs.pop("name")
    with pytest.raises(DatasetError, match=message):
        load_dataset(name, **kwargs)


DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="Debian's dataset-fashion-mnist absent")
def test_real_debian_fashion_mnist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data, "DEBIAN_DATASETS_DIR", DEBIAN_FASHION.parent)
    ds = load_dataset("fashion_mnist", subset=200, validation_split=None)
    assert ds.input_shape == (28, 28, 1) and ds.class_names == FASHION_CLASSES
    assert len(ds.x_train) == 200 and len(ds.x_val) == 50
    assert np.bincount(ds.y_train).tolist() == [20] * 10
    assert str(DEBIAN_FASHION) in ds.description
