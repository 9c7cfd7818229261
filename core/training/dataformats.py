"""Dataset file formats: find a dataset's files on disk and read them into arrays.

MNIST-style IDX (gzipped or not), the CIFAR-10 python batches (tarball or folder), .npz files
with x_train/y_train, and folders of images with a subfolder per class. Shaping, scaling and
splitting the arrays is ``core.training.data``'s job.

Example:
    >>> source = detect(Path("/usr/share/datasets/fashion-mnist"), frozenset({"idx"}))
    >>> raw = read_source(source, None)
    >>> raw.x_train.shape
    (60000, 28, 28)
"""

from __future__ import annotations

import gzip
import io
import logging
import math
import pickle
import struct
import tarfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import DatasetError
from core.training.datasets import dataset_facts

log = logging.getLogger(__name__)

STAGED_NPZ_NAME = "dataset.npz"
CIFAR10_CLASSES = list(dataset_facts("cifar10").class_names or ())
"""CIFAR-10's class names, from the registry: what batches without a batches.meta are named."""
_IDX_ROLES = {
    "train_images": ("train-images", "idx3"),
    "train_labels": ("train-labels", "idx1"),
    "test_images": ("t10k-images", "idx3"),
    "test_labels": ("t10k-labels", "idx1"),
}
_IDX_DTYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CIFAR_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
_CIFAR_MEMBERS = (*_CIFAR_BATCHES, "test_batch", "batches.meta")
_CIFAR_ARCHIVES = (
    "cifar-10-python.tar.gz",
    "cifar-10-batches-py.tar.gz",
    "cifar-10-batches-py-target_archive",
)
_IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
)
_GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"})
_SPLIT_DIRS = ("val", "validation", "test")


@dataclass(frozen=True)
class Source:
    """A dataset located on disk, before reading: its format, where it is and its files."""

    kind: str
    path: Path
    files: dict[str, Path]


@dataclass
class Raw:
    """Arrays as read from a source, before shaping, scaling, splitting and subsetting."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    class_names: list[str] | None
    location: str
    files: dict[str, Path] = field(default_factory=dict)
    scale: float | None = None


def detect(path: Path, kinds: frozenset[str]) -> Source | None:
    if path.is_file():
        source = _detect_file(path)
    elif path.is_dir():
        source = _detect_folder(path, kinds)
    else:
        return None
    return source if source is not None and source.kind in kinds else None


def _detect_file(file: Path) -> Source | None:
    name = file.name.lower()
    if name.endswith(".npz"):
        return Source("npz", file, {"npz": file})
    if name in _CIFAR_ARCHIVES or name.endswith((".tar.gz", ".tgz", ".tar")):
        return Source("cifar_tar", file, {"archive": file})
    if "-ubyte" in name:
        return _detect_idx(file.parent)
    return None


def _detect_folder(folder: Path, kinds: frozenset[str]) -> Source | None:
    detectors = (
        ({"idx"}, _detect_idx),
        ({"cifar_tar", "cifar_dir"}, _detect_cifar),
        ({"npz"}, _detect_npz),
        ({"images"}, _detect_images),
    )
    for wanted, detector in detectors:
        if wanted & kinds:
            source = detector(folder)
            if source is not None and source.kind in kinds:
                return source
    return None


def _idx_file(folder: Path, stem: str, kind: str) -> Path | None:
    for sep in ("-", "."):
        for ext in (".gz", ""):
            candidate = folder / f"{stem}{sep}{kind}-ubyte{ext}"
            if candidate.is_file():
                return candidate
    return None


def _detect_idx(folder: Path) -> Source | None:
    found = {role: _idx_file(folder, *parts) for role, parts in _IDX_ROLES.items()}
    files = {role: file for role, file in found.items() if file is not None}
    if "train_images" not in files or "train_labels" not in files:
        return None
    if not ("test_images" in files and "test_labels" in files):
        files.pop("test_images", None)
        files.pop("test_labels", None)
    return Source("idx", folder, files)


def _detect_cifar(folder: Path) -> Source | None:
    for archive in _CIFAR_ARCHIVES:
        if (folder / archive).is_file():
            return Source("cifar_tar", folder / archive, {"archive": folder / archive})
    for sub in (folder, folder / "cifar-10-batches-py"):
        if (sub / "data_batch_1").is_file():
            files = {m: sub / m for m in _CIFAR_MEMBERS if (sub / m).is_file()}
            return Source("cifar_dir", sub, files)
    return None


def _detect_npz(folder: Path) -> Source | None:
    files = sorted(p for p in folder.glob("*.npz") if p.is_file())
    if len(files) > 1:
        preferred = [p for p in files if p.name in (STAGED_NPZ_NAME, "mnist.npz")]
        if len(preferred) != 1:
            names = ", ".join(p.name for p in files)
            raise DatasetError(f"{folder} holds several .npz files ({names}); name one of them.")
        files = preferred
    return Source("npz", files[0], {"npz": files[0]}) if files else None


def _image_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in _IMAGE_SUFFIXES and not p.name.startswith(".")
    )


def _class_dirs(folder: Path) -> list[Path]:
    subs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    return [p for p in subs if _image_files(p)]


def _detect_images(folder: Path) -> Source | None:
    train = folder / "train"
    if train.is_dir() and _class_dirs(train):
        for name in _SPLIT_DIRS:
            if (folder / name).is_dir() and _class_dirs(folder / name):
                return Source("images", folder, {"train": train, "test": folder / name})
    if _class_dirs(folder):
        return Source("images", folder, {"train": folder})
    return None


def read_source(source: Source, image_size: tuple[int, int] | None) -> Raw:
    if source.kind == "idx":
        return _read_idx_source(source)
    if source.kind == "npz":
        return _read_npz(source.path)
    if source.kind in ("cifar_tar", "cifar_dir"):
        return _read_cifar(source)
    return _read_images(source, image_size)


def _read_bytes(file: Path) -> bytes:
    """Read a file, gunzipping it when it starts with the gzip magic number."""
    try:
        with open(file, "rb") as handle:
            if handle.read(2) == b"\x1f\x8b":
                handle.seek(0)
                with gzip.GzipFile(fileobj=handle) as unzipped:
                    return unzipped.read()
            handle.seek(0)
            return handle.read()
    except (OSError, EOFError, zlib.error) as err:
        raise DatasetError(
            f"{file} cannot be read: it looks truncated or corrupt ({err}). "
            "Replace it with a fresh copy."
        ) from err


def _read_idx(file: Path, ndims: tuple[int, ...]) -> np.ndarray:
    data = _read_bytes(file)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise DatasetError(
            f"{file} is not an IDX file (bad magic number {data[:4].hex() or 'none'}); "
            "replace it with the original."
        )
    ndim, header = data[3], 4 + 4 * data[3]
    if ndim not in ndims or len(data) < header:
        raise DatasetError(f"{file} is not the IDX file expected here ({ndim} dimensions).")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype = _IDX_DTYPES[data[2]]
    expected = header + math.prod(dims) * dtype.itemsize
    if len(data) != expected:
        raise DatasetError(
            f"{file} is truncated or corrupt: its header promises {'x'.join(map(str, dims))} "
            f"values ({expected} bytes) but it holds {len(data)} bytes. Replace it."
        )
    return refuse_non_finite(np.frombuffer(data, dtype=dtype, offset=header).reshape(dims), file)


def refuse_non_finite(x: np.ndarray, where: object) -> np.ndarray:
    """Return ``x``; raise DatasetError when its floats hold NaN or infinity (they train to chance).

    Args:
        x: images as read.
        where: the file (and array) they came from, for the sentence.
    """
    if x.dtype.kind in "fc" and x.size and not np.isfinite(x).all():
        bad = int(x.size - np.count_nonzero(np.isfinite(x)))
        raise DatasetError(
            f"{where} holds {bad:,} of {x.size:,} pixel values that are NaN or infinite; "
            "a CNN trained on them learns nothing. Replace them with real pixel values."
        )
    return x


def _read_idx_source(source: Source) -> Raw:
    files = source.files
    x_train = _read_idx(files["train_images"], (3, 4))
    y_train = _read_idx(files["train_labels"], (1,))
    _check_pair(x_train, y_train, files["train_images"], files["train_labels"])
    x_test = y_test = None
    if "test_images" in files:
        x_test = _read_idx(files["test_images"], (3, 4))
        y_test = _read_idx(files["test_labels"], (1,))
        _check_pair(x_test, y_test, files["test_images"], files["test_labels"])
    return Raw(
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        class_names=None,
        location=str(source.path),
        files={file.name: file for file in files.values()},
    )


def _check_pair(x: np.ndarray, y: np.ndarray, x_file: Path, y_file: Path) -> None:
    if len(x) != len(y):
        raise DatasetError(
            f"{x_file} holds {len(x)} images but {y_file} holds {len(y)} labels; "
            "the two files do not belong together."
        )


class _ArrayUnpickler(pickle.Unpickler):
    """An unpickler that builds numpy arrays and plain containers, nothing else."""

    _ALLOWED = frozenset(
        {
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "scalar"),
            ("numpy.core.multiarray", "scalar"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("_codecs", "encode"),  # how Python 3's protocol 2 spells bytes
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"it refers to {module}.{name}, not only to arrays")
        return super().find_class(module.replace("numpy.core.", "numpy._core."), name)


def _unpickle(payload: bytes, where: str) -> Any:
    try:
        return _ArrayUnpickler(io.BytesIO(payload), encoding="bytes").load()
    except Exception as err:  # a hostile or damaged pickle can raise almost anything
        raise DatasetError(f"{where} is not a CIFAR-10 python batch ({err}).") from err


def _cifar_members_from_tar(archive: Path) -> dict[str, bytes]:
    members: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:  # one pass, nothing extracted to disk
                base = member.name.rsplit("/", 1)[-1]
                if member.isfile() and base in _CIFAR_MEMBERS and base not in members:
                    handle = tar.extractfile(member)
                    members[base] = handle.read() if handle is not None else b""
    except (tarfile.TarError, OSError, EOFError, zlib.error) as err:
        raise DatasetError(
            f"{archive} cannot be read as a tarball: it looks truncated or corrupt ({err}). "
            "Replace it with the official cifar-10-python.tar.gz."
        ) from err
    return members


def _read_cifar(source: Source) -> Raw:
    if source.kind == "cifar_tar":
        members = _cifar_members_from_tar(source.path)
        files = {"cifar-10-python.tar.gz": source.path}
    else:
        members = {name: _read_bytes(file) for name, file in source.files.items()}
        files = {f"cifar-10-batches-py/{name}": file for name, file in source.files.items()}
    missing = [m for m in (*_CIFAR_BATCHES, "test_batch") if m not in members]
    if missing:
        raise DatasetError(
            f"{source.path} lacks {', '.join(missing)}: it is not a complete CIFAR-10 python "
            "dataset. Use the official cifar-10-python.tar.gz."
        )
    where = str(source.path)
    batches = [_parse_cifar_batch(members[m], f"{where}: {m}") for m in _CIFAR_BATCHES]
    x_test, y_test = _parse_cifar_batch(members["test_batch"], f"{where}: test_batch")
    names = None
    if "batches.meta" in members:
        meta = _unpickle(members["batches.meta"], f"{where}: batches.meta")
        labels = (
            meta.get(b"label_names", meta.get("label_names")) if isinstance(meta, dict) else None
        )
        names = [as_text(v) for v in labels] if labels else None
    return Raw(
        x_train=np.concatenate([b[0] for b in batches]),
        y_train=np.concatenate([b[1] for b in batches]),
        x_test=x_test,
        y_test=y_test,
        class_names=names or list(CIFAR10_CLASSES),
        location=where,
        files=files,
    )


def as_text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _parse_cifar_batch(payload: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    batch = _unpickle(payload, where)
    data = labels = None
    if isinstance(batch, dict):
        data = batch.get(b"data", batch.get("data"))
        labels = batch.get(b"labels", batch.get("labels"))
    if (
        not isinstance(data, np.ndarray)
        or data.ndim != 2
        or data.shape[1] != 3072
        or labels is None
        or len(labels) != data.shape[0]
    ):
        raise DatasetError(
            f"{where} is not a CIFAR-10 python batch (expected 'data' of n x 3072 bytes "
            "and n 'labels')."
        )
    images = data.astype(np.uint8, copy=False).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, np.asarray(labels, dtype=np.int64)


def _read_npz(file: Path) -> Raw:
    wanted = ("x_train", "y_train", "x_test", "y_test", "x_val", "y_val", "class_names")
    try:
        with np.load(file, allow_pickle=False) as npz:
            keys = set(npz.files)
            if not {"x_train", "y_train"} <= keys:
                raise DatasetError(
                    f"{file} holds arrays {sorted(keys)} but needs x_train and y_train "
                    "(and optionally x_test and y_test)."
                )
            arrays = {key: np.asarray(npz[key]) for key in wanted if key in keys}
            for key in ("x_train", "x_test", "x_val"):
                if key in arrays:
                    refuse_non_finite(arrays[key], f"{file}: {key}")
    except DatasetError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as err:
        raise DatasetError(
            f"{file} cannot be read as an .npz file: it looks truncated or corrupt ({err})."
        ) from err
    x_test, y_test = arrays.get("x_test", arrays.get("x_val")), arrays.get("y_test")
    if y_test is None:
        y_test = arrays.get("y_val")
    if (x_test is None) != (y_test is None):
        raise DatasetError(f"{file} has only one of x_test and y_test; add the other or drop it.")
    names = arrays.get("class_names")
    return Raw(
        x_train=arrays["x_train"],
        y_train=arrays["y_train"],
        x_test=x_test,
        y_test=y_test,
        class_names=[str(n) for n in names.tolist()] if names is not None else None,
        location=str(file),
        files={file.name: file},
    )


def _read_images(source: Source, image_size: tuple[int, int] | None) -> Raw:
    train = source.files["train"]
    class_names = [d.name for d in _class_dirs(train)]
    x_train, y_train, size = _read_image_classes(train, class_names, image_size)
    x_test = y_test = None
    if "test" in source.files:
        test = source.files["test"]
        unknown = sorted({d.name for d in _class_dirs(test)} - set(class_names))
        if unknown:
            raise DatasetError(
                f"{test} has classes that {train} lacks ({', '.join(unknown)}); "
                "give both the same class subfolders."
            )
        x_test, y_test, _ = _read_image_classes(test, class_names, size)
        if x_test.shape[-1] != x_train.shape[-1]:
            x_train, x_test = _as_rgb(x_train), _as_rgb(x_test)
    return Raw(
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        class_names=class_names,
        location=str(source.path),
    )


def _read_image_classes(
    root: Path, class_names: list[str], size: tuple[int, int] | None
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    images: list[np.ndarray] = []
    labels: list[int] = []
    for index, name in enumerate(class_names):
        folder = root / name
        if not folder.is_dir():
            continue
        for file in _image_files(folder):
            pixels, size = _read_image(file, size)
            images.append(pixels)
            labels.append(index)
    if any(p.ndim == 3 for p in images):
        images = [np.repeat(p[..., None], 3, axis=2) if p.ndim == 2 else p for p in images]
    x = np.stack(images)
    assert size is not None  # set by the first image read
    return (x[..., None] if x.ndim == 3 else x), np.asarray(labels, dtype=np.int64), size


def _read_image(file: Path, size: tuple[int, int] | None) -> tuple[np.ndarray, tuple[int, int]]:
    """Read one image as uint8 (grayscale stays 2-D); resize it to (height, width) ``size``."""
    from PIL import Image

    try:
        with Image.open(file) as image:
            converted = image.convert("L" if image.mode in _GRAY_MODES else "RGB")
    except (OSError, ValueError, SyntaxError) as err:
        raise DatasetError(f"Image {file} cannot be read ({err}); remove or replace it.") from err
    if size is None:
        size = (converted.height, converted.width)
    if (converted.height, converted.width) != size:
        converted = converted.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    return np.asarray(converted, dtype=np.uint8), size


def _as_rgb(x: np.ndarray) -> np.ndarray:
    return np.repeat(x, 3, axis=3) if x.shape[-1] == 1 else x
