"""Builders of tiny dataset files in each real format (IDX gz, CIFAR tarball, npz, image folder)."""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import tarfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from core.training.datasets import find_dataset

CIFAR_LABEL_NAMES = find_dataset("cifar10").class_names
"""What batches.meta names the classes: the registry's facts about the real dataset."""


def tiny_images(
    n: int, shape: Sequence[int], num_classes: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``n`` random uint8 images of ``shape`` and balanced uint8 labels, fixed by ``seed``.

    Every maker below draws its arrays from here, so a test can rebuild the expected values.
    """
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % num_classes).astype(np.uint8)
    x = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
    return x, y


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array in the IDX format (magic 0x0000 08 ndim, big-endian dims, data)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def make_idx_gz_dir(
    directory: str | Path,
    *,
    n_train: int = 20,
    n_test: int = 10,
    shape: tuple[int, int] = (28, 28),
    num_classes: int = 10,
    seed: int = 0,
    compress: bool = True,
) -> Path:
    """Write the four MNIST-style IDX files (train-images-idx3-ubyte.gz and friends).

    Train arrays come from ``tiny_images(n_train, shape, num_classes, seed)``, test arrays
    from ``tiny_images(n_test, shape, num_classes, seed + 1)``. Returns the folder.
    """
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    x_train, y_train = tiny_images(n_train, shape, num_classes, seed)
    x_test, y_test = tiny_images(n_test, shape, num_classes, seed + 1)
    contents = {
        "train-images-idx3-ubyte": x_train,
        "train-labels-idx1-ubyte": y_train,
        "t10k-images-idx3-ubyte": x_test,
        "t10k-labels-idx1-ubyte": y_test,
    }
    for stem, array in contents.items():
        data = idx_bytes(array)
        if compress:
            (folder / f"{stem}.gz").write_bytes(gzip.compress(data, mtime=0))
        else:
            (folder / stem).write_bytes(data)
    return folder


def cifar_batch(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return CIFAR-style ``(data, labels)``: data uint8 (n, 3072) rows of R, G, B planes."""
    x, y = tiny_images(n, (32, 32, 3), 10, seed)
    data = x.transpose(0, 3, 1, 2).reshape(n, 3072)
    return data, y


def make_cifar_tarball(
    directory: str | Path,
    *,
    per_batch: int = 4,
    test_size: int = 6,
    seed: int = 0,
    filename: str = "cifar-10-python.tar.gz",
) -> Path:
    """Write a tarball laid out like the official cifar-10-python.tar.gz; return its path.

    Members are ``cifar-10-batches-py/data_batch_1..5``, ``test_batch`` and ``batches.meta``,
    pickled (protocol 2) as dicts with bytes keys like the Python 2 originals. Batch ``i``
    (1-based) uses ``cifar_batch(per_batch, seed + i)``; the test batch uses ``seed + 10``.
    """
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    members: dict[str, bytes] = {}
    for i in range(1, 6):
        data, labels = cifar_batch(per_batch, seed + i)
        members[f"data_batch_{i}"] = _cifar_pickle(data, labels, f"training batch {i} of 5")
    data, labels = cifar_batch(test_size, seed + 10)
    members["test_batch"] = _cifar_pickle(data, labels, "testing batch 1 of 1")
    meta = {
        b"num_cases_per_batch": per_batch,
        b"label_names": [name.encode() for name in CIFAR_LABEL_NAMES],
        b"num_vis": 3072,
    }
    members["batches.meta"] = pickle.dumps(meta, protocol=2)
    target = folder / filename
    with tarfile.open(target, "w:gz") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return target


def _cifar_pickle(data: np.ndarray, labels: np.ndarray, batch_label: str) -> bytes:
    batch = {
        b"batch_label": batch_label.encode(),
        b"labels": [int(v) for v in labels],
        b"data": data,
        b"filenames": [f"img_{i}.png".encode() for i in range(len(labels))],
    }
    return pickle.dumps(batch, protocol=2)


def make_npz(
    path: str | Path,
    *,
    n_train: int = 30,
    n_test: int = 10,
    shape: tuple[int, ...] = (8, 8, 1),
    num_classes: int = 3,
    seed: int = 0,
    class_names: Sequence[str] | None = None,
) -> Path:
    """Write an .npz with uint8 ``x_train``/``y_train`` (and ``x_test``/``y_test`` if n_test > 0).

    Arrays come from ``tiny_images`` with ``seed`` (train) and ``seed + 1`` (test); a
    ``class_names`` array is added when given. Returns the file's path.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    x_train, y_train = tiny_images(n_train, shape, num_classes, seed)
    arrays: dict[str, np.ndarray] = {"x_train": x_train, "y_train": y_train}
    if n_test > 0:
        arrays["x_test"], arrays["y_test"] = tiny_images(n_test, shape, num_classes, seed + 1)
    if class_names is not None:
        arrays["class_names"] = np.array(list(class_names))
    np.savez_compressed(target, **arrays)  # type: ignore[arg-type]
    return target


def make_image_folder(
    directory: str | Path,
    *,
    classes: Sequence[str] = ("cat", "dog", "fish"),
    per_class: int = 4,
    size: tuple[int, int] = (8, 8),
    mode: str = "RGB",
    seed: int = 0,
    suffix: str = ".png",
) -> Path:
    """Write one subfolder of ``per_class`` images per class (Pillow, ``mode`` "RGB" or "L").

    ``size`` is (height, width). Returns the folder.
    """
    from PIL import Image

    folder = Path(directory)
    channels = 3 if mode == "RGB" else 1
    rng = np.random.default_rng(seed)
    for name in classes:
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, size=(*size, channels), dtype=np.uint8)
            image = Image.fromarray(pixels[..., 0] if channels == 1 else pixels)
            image.save(folder / name / f"{name}_{i:03d}{suffix}")
    return folder
