"""Dataset loaders: digits (embedded), MNIST/Fashion-MNIST IDX, CIFAR-10, npz, image folders.

What is known about each dataset (title, shape, classes, where its files are looked for, how
to get it) is its row of the registry, :mod:`core.training.datasets`.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import inspect
import json
import logging
import math
import os
import shutil
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np

from core.errors import DatasetError
from core.paths import cloudtune_home
from core.training.dataformats import (
    STAGED_NPZ_NAME,
    Raw,
    Source,
    as_text,
    detect,
    read_source,
)
from core.training.datasets import (
    ALL_FORMATS,
    DATASET_NAMES,
    dataset_facts,
    find_dataset,
    how_to_get,
)

if TYPE_CHECKING:  # Unpack is in typing from Python 3.11; the trainer also runs on 3.10
    from typing import Unpack

log = logging.getLogger(__name__)

DEBIAN_DATASETS_DIR = Path("/usr/share/datasets")
"""Where Debian's dataset packages put their files (dataset-fashion-mnist -> fashion-mnist/)."""

MANIFEST_NAME = "cloudtune-dataset.json"
DEFAULT_VALIDATION_SPLIT = 0.2

DIGIT_CLASSES = list(dataset_facts("digits").class_names or ())
FASHION_CLASSES = list(dataset_facts("fashion_mnist").class_names or ())
_MANIFEST_KEYS = ("name", "class_names", "subset", "validation_split", "seed")


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train and validation arrays ready for a Keras CNN, with class names and a description.

    Arrays are read-only (a cached dataset is shared by every trial of a worker): images are
    float32 NHWC scaled to [0, 1], labels int32 class indices 0..k-1.

    Example:
        >>> ds = load_dataset("digits", subset=200)
        >>> ds.input_shape, ds.num_classes
        ((8, 8, 1), 10)
    """

    name: str
    x_train: np.ndarray = field(repr=False)
    y_train: np.ndarray = field(repr=False)
    x_val: np.ndarray = field(repr=False)
    y_val: np.ndarray = field(repr=False)
    class_names: list[str]
    description: str

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """The shape of one image: (height, width, channels)."""
        height, width, channels = (int(d) for d in self.x_train.shape[1:])
        return height, width, channels

    @property
    def num_classes(self) -> int:
        """How many classes the labels index into."""
        return len(self.class_names)


@dataclass(frozen=True)
class DatasetInfo:
    """What the dataset picker and a backend's ``check()`` need to know about one dataset."""

    name: str
    description: str
    available: bool
    location: str | None
    how_to_get: str


@dataclass
class _Prepared:
    """Validated NHWC views and int32 labels of a raw dataset."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    class_names: list[str]
    location: str
    offset: float
    divisor: float


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


def load_dataset(
    name: str,
    *,
    path: str | None = None,
    subset: int | None = None,
    validation_split: float | None = DEFAULT_VALIDATION_SPLIT,
    seed: int = 0,
    allow_download: bool = False,
    image_size: tuple[int, int] | None = None,
) -> Dataset:
    """Load one dataset of the registry as train and validation arrays.

    Validation: with a float ``validation_split`` that fraction of the training split is held
    out (stratified, seeded) and any official test split is left untouched. With ``None`` the
    official test split is the validation set when the format has one (MNIST, Fashion-MNIST,
    CIFAR-10, an npz with x_test/y_test, an image folder with train/ and val/ or test/);
    otherwise 20 % is held out as above.

    Subset: keep at most ``subset`` training examples (stratified, seeded) and cut the
    validation set in the same proportion (``ceil(subset * f / (1 - f))`` with f the
    validation fraction, 0.2 when the official split is used). The result is deterministic
    for a given seed.

    Search order for files: ``path`` (a file, a folder, or a folder holding a subfolder
    named after the dataset), ``$CLOUDTUNE_HOME/datasets/<name>``, the Keras cache
    (``$KERAS_HOME`` or ``~/.keras``, its ``datasets`` folder in Keras' own layout) and, for
    fashion_mnist, Debian's ``/usr/share/datasets/fashion-mnist``. Nothing is downloaded
    unless ``allow_download`` is true and nothing was found.

    Args:
        name: One of ``DATASET_NAMES``.
        path: A file or folder the user named; ignored for digits.
        subset: Keep at most this many training examples (None keeps all).
        validation_split: Fraction held out for validation, or None for the official split.
        seed: Seed of the split and subset.
        allow_download: Download through keras.datasets when nothing is found.
        image_size: (height, width) for image folders; default is the first image's size.

    Returns:
        The dataset, float32 NHWC in [0, 1] with int32 labels; arrays are read-only.

    Raises:
        DatasetError: Unknown name or bad option, data missing (the sentence names every
            place looked in and how to provide it), or a file corrupt or truncated (named).
    """
    _check_options(name, subset, validation_split, image_size)
    raw = _load_raw(name, path, allow_download, image_size)
    return _materialise(name, _prepare(raw), subset, validation_split, seed)


class LoadOptions(TypedDict, total=False):
    """The keyword options of :func:`load_dataset`, for the functions that pass them on."""

    path: str | None
    subset: int | None
    validation_split: float | None
    seed: int
    allow_download: bool
    image_size: tuple[int, int] | None


def load_dataset_cached(name: str, **options: Unpack[LoadOptions]) -> Dataset:
    """Like ``load_dataset`` but loaded once per process and reused (a worker's trials share it).

    The cache holds the last 4 distinct argument sets; ``path`` is resolved first so that two
    spellings of one folder share an entry, and left-out options count as their defaults.
    ``clear_dataset_cache()`` empties it.

    Args:
        name: One of ``DATASET_NAMES``.
        **options: As ``load_dataset`` (path, subset, validation_split, seed, allow_download,
            image_size).

    Returns:
        The same ``Dataset`` object for the same arguments.

    Raises:
        DatasetError: As ``load_dataset`` (errors are not cached).
    """
    path, size = options.get("path"), options.get("image_size")
    if path:
        options["path"] = str(Path(path).expanduser().resolve())
    if size is not None:
        options["image_size"] = (int(size[0]), int(size[1]))
    bound = inspect.signature(load_dataset).bind(name, **options)
    bound.apply_defaults()
    return _load_cached(tuple(bound.arguments.items()))


@functools.lru_cache(maxsize=4)
def _load_cached(arguments: tuple[tuple[str, Any], ...]) -> Dataset:
    return load_dataset(**dict(arguments))


def clear_dataset_cache() -> None:
    """Forget every dataset ``load_dataset_cached`` holds."""
    _load_cached.cache_clear()


def available_datasets(path: str | None = None) -> list[DatasetInfo]:
    """Say, for every dataset of the registry, whether it can be loaded now without network.

    Only looks for files (no decoding), so it is fast enough for a page or a ``check()``.

    Args:
        path: A file or folder the user named; looked in for every file-based dataset.

    Returns:
        One ``DatasetInfo`` per name of ``DATASET_NAMES``, in that order.
    """
    infos = []
    for name in DATASET_NAMES:
        location = _locate_quietly(name, path)
        infos.append(
            DatasetInfo(
                name=name,
                description=dataset_facts(name).summary,
                available=location is not None,
                location=location,
                how_to_get=_how_to_get(name),
            )
        )
    return infos


def load_from_dir(
    directory: str | Path,
    *,
    subset: int | None = None,
    validation_split: float | None = DEFAULT_VALIDATION_SPLIT,
    seed: int = 0,
    image_size: tuple[int, int] | None = None,
) -> Dataset:
    """Load whatever supported dataset a folder holds (a cloud job's input channel).

    Recognised, in this order: IDX files (train-images-idx3-ubyte.gz and friends), a CIFAR-10
    tarball or extracted cifar-10-batches-py folder, one .npz, one subfolder of images per
    class. A folder written by ``stage_dataset`` carries a manifest whose name, class names,
    subset, split and seed take precedence over the arguments, so a cloud trial sees exactly
    the data a local one does.

    Args:
        directory: The folder.
        subset: Keep at most this many training examples (no manifest only).
        validation_split: Fraction held out, or None for the official split (no manifest only).
        seed: Seed of the split and subset (no manifest only).
        image_size: (height, width) for image folders.

    Returns:
        The dataset.

    Raises:
        DatasetError: The folder is missing, holds nothing we read, or a file is corrupt.
    """
    folder = Path(directory)
    if not folder.is_dir():
        raise DatasetError(f"Dataset folder {folder} does not exist or is not a folder.")
    manifest = _read_manifest(folder)
    source = detect(folder, ALL_FORMATS)
    if source is None:
        raise DatasetError(
            f"No dataset found in {folder}: expected IDX files (train-images-idx3-ubyte.gz and "
            "friends), a CIFAR-10 tarball or cifar-10-batches-py folder, an .npz with x_train "
            "and y_train, or one subfolder of images per class."
        )
    raw = read_source(source, image_size)
    if manifest is None:
        name = _guess_name(source)
    else:
        name = manifest["name"]
        raw.class_names = list(manifest["class_names"])
        subset = manifest["subset"]
        validation_split = manifest["validation_split"]
        seed = manifest["seed"]
    if raw.class_names is None:
        raw.class_names = _default_class_names(name)
    _check_options(name, subset, validation_split, image_size)
    return _materialise(name, _prepare(raw), subset, validation_split, seed)


def stage_dataset(
    name: str,
    *,
    path: str | None,
    dest_dir: str | Path,
    subset: int | None = None,
    validation_split: float | None = DEFAULT_VALIDATION_SPLIT,
    seed: int = 0,
    allow_download: bool = False,
    image_size: tuple[int, int] | None = None,
) -> Path:
    """Write a dataset into a folder that ``load_from_dir`` reads, for upload to a cloud.

    Without ``subset`` the original files are copied where there are any (IDX files, the
    CIFAR tarball or batch files, the npz) and the manifest records split and seed. With a
    ``subset``, and for digits, image folders and downloads, the already split arrays are
    written to ``dataset.npz`` (uint8 where that is exact) so the upload stays small. Either
    way ``load_from_dir(dest_dir)`` returns the same arrays as ``load_dataset`` with the
    same arguments.

    Args:
        name: One of ``DATASET_NAMES``.
        path: A file or folder the user named (None: search the usual places).
        dest_dir: An empty or new folder.
        subset: Keep at most this many training examples.
        validation_split: Fraction held out for validation, or None for the official split.
        seed: Seed of the split and subset.
        allow_download: Download through keras.datasets when nothing is found.
        image_size: (height, width) for image folders.

    Returns:
        ``dest_dir`` as a Path.

    Raises:
        DatasetError: As ``load_dataset``, or ``dest_dir`` is not empty.
    """
    _check_options(name, subset, validation_split, image_size)
    dest = Path(dest_dir)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise DatasetError(f"Cannot stage into {dest}: it is not an empty folder; name a new one.")
    raw = _load_raw(name, path, allow_download, image_size)
    prepared = _prepare(raw)
    dest.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {"name": name, "class_names": prepared.class_names, "seed": seed}
    if subset is None and raw.files:
        for relative, original in raw.files.items():
            (dest / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(original, dest / relative)
        manifest.update(subset=None, validation_split=validation_split, files=sorted(raw.files))
    else:
        dataset = _materialise(name, prepared, subset, validation_split, seed)
        _write_npz(dest / STAGED_NPZ_NAME, dataset)
        manifest.update(subset=None, validation_split=None, files=[STAGED_NPZ_NAME])
    text = json.dumps({"format": "cloudtune-dataset", "version": 1, **manifest}, indent=2)
    (dest / MANIFEST_NAME).write_text(text + "\n", encoding="utf-8")
    return dest


def dataset_fingerprint(directory: str | Path) -> str:
    """Hash a staged folder (relative names, sizes and contents of every file), for uploads.

    Args:
        directory: The folder.

    Returns:
        The sha256 hex digest; equal folders give equal digests wherever they lie.

    Raises:
        DatasetError: The folder does not exist.
    """
    root = Path(directory)
    if not root.is_dir():
        raise DatasetError(f"Cannot fingerprint {root}: it is not a folder.")
    digest = hashlib.sha256()
    files = sorted((p.relative_to(root).as_posix(), p) for p in root.rglob("*") if p.is_file())
    for relative, file in files:
        name = relative.encode("utf-8")
        digest.update(len(name).to_bytes(8, "big") + name)
        digest.update(file.stat().st_size.to_bytes(8, "big"))
        with open(file, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def keras_home() -> Path:
    """Keras' cache folder: ``$KERAS_HOME`` or ``~/.keras`` (datasets live in its datasets/)."""
    env = os.environ.get("KERAS_HOME")
    return Path(env).expanduser() if env else Path.home() / ".keras"


# ---------------------------------------------------------------------------------------------
# Options, places and messages
# ---------------------------------------------------------------------------------------------


def _check_options(
    name: str,
    subset: int | None,
    validation_split: float | None,
    image_size: tuple[int, int] | None,
) -> None:
    if name not in DATASET_NAMES:
        raise DatasetError(f"Unknown dataset '{name}'; choose one of {', '.join(DATASET_NAMES)}.")
    if subset is not None and (not isinstance(subset, int) or subset < 1):
        raise DatasetError(f"subset must be a whole number of at least 1 (got {subset!r}).")
    if validation_split is not None and not 0.0 < float(validation_split) < 1.0:
        raise DatasetError(
            f"validation_split must be between 0 and 1, exclusive (got {validation_split!r}), "
            "or None to use the official test split."
        )
    if image_size is not None and (len(image_size) != 2 or min(image_size) < 1):
        raise DatasetError(f"image_size must be (height, width) in pixels (got {image_size!r}).")


def _places(name: str, path: str | None) -> list[Path]:
    facts = dataset_facts(name)
    places: list[Path] = []
    if path:
        user = Path(path).expanduser()
        places.append(user)
        places.extend(user / sub for sub in facts.user_subfolders)
    places.append(cloudtune_home() / "datasets" / name)
    places.extend(keras_home() / "datasets" / rel for rel in facts.keras_cache)
    if facts.debian_folder is not None:
        places.append(DEBIAN_DATASETS_DIR / facts.debian_folder)
    return list(dict.fromkeys(places))


def _find_source(name: str, path: str | None) -> tuple[Source | None, list[Path]]:
    places = _places(name, path)
    kinds = dataset_facts(name).formats
    if path:
        user = Path(path).expanduser()
        if user.is_file() and detect(user, ALL_FORMATS) is None:
            raise DatasetError(
                f"{user} is not a file CloudTune reads: name an .npz, a CIFAR-10 .tar.gz, an "
                "IDX file's folder or a folder with one subfolder of images per class."
            )
    for place in places:
        source = detect(place, kinds)
        if source is not None:
            return source, places
    return None, places


def _locate_quietly(name: str, path: str | None) -> str | None:
    if name == "digits":
        return "bundled with scikit-learn" if importlib.util.find_spec("sklearn") else None
    try:
        source, _ = _find_source(name, path)
    except DatasetError:
        return None
    return str(source.path) if source is not None else None


def _how_to_get(name: str) -> str:
    return how_to_get(name, cloudtune_home() / "datasets" / name)


def _missing_error(name: str, places: list[Path]) -> DatasetError:
    looked = "; ".join(str(p) for p in places)
    return DatasetError(f"Dataset '{name}' was not found. Looked in: {looked}. {_how_to_get(name)}")


def _default_class_names(name: str) -> list[str] | None:
    facts = find_dataset(name)
    return list(facts.class_names) if facts is not None and facts.class_names else None


def _guess_name(source: Source) -> str:
    if source.kind in ("cifar_tar", "cifar_dir"):
        return "cifar10"
    folder = source.path.name.lower()
    if source.kind == "idx" and "fashion" in folder:
        return "fashion_mnist"
    if source.kind == "idx" and "mnist" in folder:
        return "mnist"
    return "custom"


def _read_manifest(folder: Path) -> dict[str, Any] | None:
    file = folder / MANIFEST_NAME
    if not file.is_file():
        return None
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
        if not isinstance(manifest, dict):
            raise ValueError("not a JSON object")
        missing = [k for k in _MANIFEST_KEYS if k not in manifest]
        if missing:
            raise ValueError(f"missing {', '.join(missing)}")
        if manifest["name"] not in DATASET_NAMES:
            raise ValueError(f"unknown dataset name {manifest['name']!r}")
    except (OSError, ValueError) as err:
        raise DatasetError(
            f"{file} is not a valid CloudTune dataset manifest ({err}); stage the data again."
        ) from err
    return manifest


# ---------------------------------------------------------------------------------------------
# Reading each format
# ---------------------------------------------------------------------------------------------


def _load_raw(
    name: str, path: str | None, allow_download: bool, image_size: tuple[int, int] | None
) -> Raw:
    if name == "digits":
        return _read_digits()
    source, places = _find_source(name, path)
    if source is not None:
        raw = read_source(source, image_size)
    elif allow_download and dataset_facts(name).downloadable:
        raw = _download(name, places)
    else:
        raise _missing_error(name, places)
    if raw.class_names is None:
        raw.class_names = _default_class_names(name)
    return raw


def _read_digits() -> Raw:
    images, target = _digits_from_bundled_file() or _digits_from_sklearn()
    return Raw(
        x_train=images,
        y_train=target,
        x_test=None,
        y_test=None,
        class_names=list(DIGIT_CLASSES),
        location="scikit-learn's bundled copy",
        scale=16.0,
    )


def _digits_from_bundled_file() -> tuple[np.ndarray, np.ndarray] | None:
    """Read sklearn's digits.csv.gz directly: what load_digits reads, without importing scipy.

    ``sklearn.datasets`` takes about a second to import; this takes milliseconds. Returns
    None when the file is not where scikit-learn keeps it, so the caller falls back.
    """
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        return None
    file = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "digits.csv.gz"
    try:
        table = np.loadtxt(file, delimiter=",", ndmin=2)
    except (OSError, ValueError, EOFError, zlib.error):
        return None
    if table.shape[1] != 65 or len(table) == 0:
        return None
    return table[:, :64].reshape(-1, 8, 8), table[:, 64].astype(np.int64)


def _digits_from_sklearn() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:
        raise DatasetError(_how_to_get("digits")) from err
    bunch = load_digits()
    return np.asarray(bunch.images), np.asarray(bunch.target)


def _keras_download(name: str) -> Any:
    """Call ``keras.datasets.<name>.load_data()`` (network; only when the caller allows it)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from keras import datasets

    return getattr(datasets, name).load_data()


def _download(name: str, places: list[Path]) -> Raw:
    try:
        (x_train, y_train), (x_test, y_test) = _keras_download(name)
    except Exception as err:  # any network or Keras failure becomes one sentence
        looked = "; ".join(str(p) for p in places)
        raise DatasetError(
            f"Dataset '{name}' was not found (looked in: {looked}) and the download through "
            f"keras.datasets failed ({err}). {_how_to_get(name)}"
        ) from err
    return Raw(
        x_train=np.asarray(x_train),
        y_train=np.asarray(y_train),
        x_test=np.asarray(x_test),
        y_test=np.asarray(y_test),
        class_names=None,  # _load_raw fills in the registry's names
        location="a download through keras.datasets",
    )


# ---------------------------------------------------------------------------------------------
# Shaping, labels, splitting, scaling
# ---------------------------------------------------------------------------------------------


def _prepare(raw: Raw) -> _Prepared:
    where = raw.location
    x_train = _as_nhwc(raw.x_train, where)
    x_test = _as_nhwc(raw.x_test, where) if raw.x_test is not None else None
    y_train, y_test, names = _normalise_labels(raw.y_train, raw.y_test, raw.class_names, where)
    test_sizes = (len(x_test), len(y_test)) if x_test is not None and y_test is not None else (0, 0)
    if len(x_train) != len(y_train) or test_sizes[0] != test_sizes[1]:
        raise DatasetError(f"{where}: the numbers of images and labels differ.")
    if x_test is not None and x_test.shape[1:] != x_train.shape[1:]:
        raise DatasetError(
            f"{where}: test images are {x_test.shape[1:]} but training images {x_train.shape[1:]}."
        )
    if len(x_train) < 2 or len(names) < 2:
        raise DatasetError(f"{where}: a dataset needs at least two images and two classes.")
    offset, divisor = _scale(raw, x_train, x_test)
    if not (math.isfinite(offset) and math.isfinite(divisor) and divisor > 0):
        raise DatasetError(
            f"{where}: the pixel values span too wide a range to scale into 0..1 "
            f"(offset {offset:g}, range {divisor:g}); rescale the images to 0..1 or 0..255."
        )
    return _Prepared(x_train, y_train, x_test, y_test, names, where, offset, divisor)


def _as_nhwc(x: np.ndarray, where: str) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise DatasetError(f"{where}: images must be numbers, not {x.dtype}.")
    if x.ndim == 2 and math.isqrt(x.shape[1]) ** 2 == x.shape[1]:
        side = math.isqrt(x.shape[1])
        return x.reshape(-1, side, side, 1)
    if x.ndim == 3:
        return x[..., None]
    if x.ndim == 4 and x.shape[-1] in (1, 3, 4):
        return x
    if x.ndim == 4 and x.shape[1] in (1, 3, 4):
        return x.transpose(0, 2, 3, 1)
    raise DatasetError(
        f"{where}: images have shape {x.shape}; expected (n, height, width) or "
        "(n, height, width, channels) with 1, 3 or 4 channels."
    )


def _as_labels(y: np.ndarray, where: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.ravel()
    elif y.ndim == 2:
        y = y.argmax(axis=1)  # one-hot
    if y.ndim != 1 or y.dtype.kind not in "biufUS":
        raise DatasetError(f"{where}: labels must be one number or name per image.")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y) & (y == np.round(y))):
        raise DatasetError(f"{where}: labels must be whole numbers (class indices).")
    return y


def _normalise_labels(
    y_train: np.ndarray, y_test: np.ndarray | None, names: list[str] | None, where: str
) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    y_train = _as_labels(y_train, where)
    y_test = _as_labels(y_test, where) if y_test is not None else None
    both = y_train if y_test is None else np.concatenate([y_train, y_test])
    if names is not None:
        if both.dtype.kind in "US" or both.min() < 0 or both.max() >= len(names):
            raise DatasetError(
                f"{where}: labels must be class indices 0..{len(names) - 1} "
                f"for its {len(names)} class names."
            )
        values = np.arange(len(names))
    else:
        values = np.unique(both)
        names = [as_text(v.item()) if both.dtype.kind != "f" else str(int(v)) for v in values]
    train = np.searchsorted(values, y_train).astype(np.int32)
    test = np.searchsorted(values, y_test).astype(np.int32) if y_test is not None else None
    return train, test, list(names)


def _stratified_order(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A seeded permutation whose every prefix holds the classes in their overall proportions."""
    n = len(y)
    perm = rng.permutation(n)
    shuffled = y[perm]
    counts = np.bincount(shuffled)
    order = np.argsort(shuffled, kind="stable")
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - np.repeat(starts, counts)
    key = (rank + 0.5) / counts[shuffled]
    return perm[np.argsort(key, kind="stable")]


def _plan_split(
    y_train: np.ndarray,
    y_test: np.ndarray | None,
    subset: int | None,
    validation_split: float | None,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Return (train indices, validation indices, whether validation indexes the test split)."""
    rng = np.random.default_rng(seed)
    from_test = validation_split is None and y_test is not None
    fraction = DEFAULT_VALIDATION_SPLIT if validation_split is None else float(validation_split)
    if from_test:
        assert y_test is not None
        y_val_pool = y_test
        train_idx, val_idx = np.arange(len(y_train)), np.arange(len(y_test))
    else:
        y_val_pool = y_train
        n_val = min(len(y_train) - 1, max(1, round(len(y_train) * fraction)))
        order = _stratified_order(y_train, rng)
        val_idx, train_idx = order[:n_val], order[n_val:]
    if subset is not None:
        keep_val = max(1, math.ceil(subset * fraction / (1.0 - fraction)))
        train_idx = train_idx[_stratified_order(y_train[train_idx], rng)[:subset]]
        val_idx = val_idx[_stratified_order(y_val_pool[val_idx], rng)[:keep_val]]
    return np.sort(train_idx), np.sort(val_idx), from_test


def _scale(raw: Raw, x_train: np.ndarray, x_test: np.ndarray | None) -> tuple[float, float]:
    """Return (offset, divisor) mapping the images into [0, 1]; uint8 is always divided by 255."""
    if raw.scale is not None:
        return 0.0, raw.scale
    if x_train.dtype == np.uint8:
        return 0.0, 255.0
    arrays = [x_train] if x_test is None else [x_train, x_test]
    low = min(float(a.min()) for a in arrays)
    high = max(float(a.max()) for a in arrays)
    if low >= 0.0 and high <= 1.0:
        return 0.0, 1.0
    if low >= 0.0 and high <= 255.0:
        return 0.0, 255.0
    return low, (high - low) or 1.0


def _to_float(x: np.ndarray, offset: float, divisor: float) -> np.ndarray:
    if x.dtype.kind == "f" and (x.dtype.itemsize > 4 or offset):
        # scale in float64: float32 overflows past 3.4e38, and so can x - offset
        out = ((x.astype(np.float64) - offset) / divisor).astype(np.float32)
    else:
        out = x.astype(np.float32)
        if offset:
            out -= np.float32(offset)
        out /= np.float32(divisor)
    out.setflags(write=False)
    return out


def _frozen(y: np.ndarray) -> np.ndarray:
    y = np.ascontiguousarray(y, dtype=np.int32)
    y.setflags(write=False)
    return y


def _materialise(
    name: str, data: _Prepared, subset: int | None, validation_split: float | None, seed: int
) -> Dataset:
    train_idx, val_idx, from_test = _plan_split(
        data.y_train, data.y_test, subset, validation_split, seed
    )
    x_pool, y_pool = (data.x_test, data.y_test) if from_test else (data.x_train, data.y_train)
    assert x_pool is not None and y_pool is not None
    x_train = _to_float(data.x_train[train_idx], data.offset, data.divisor)
    x_val = _to_float(x_pool[val_idx], data.offset, data.divisor)
    height, width, channels = x_train.shape[1:]
    held = "the official test split" if from_test else "held out from the training split"
    description = (
        f"{dataset_facts(name).title}: {len(train_idx):,} training and {len(val_idx):,} validation images "
        f"({held}) of {height}x{width}x{channels} in {len(data.class_names)} classes, "
        f"from {data.location}."
    )
    return Dataset(
        name=name,
        x_train=x_train,
        y_train=_frozen(data.y_train[train_idx]),
        x_val=x_val,
        y_val=_frozen(y_pool[val_idx]),
        class_names=list(data.class_names),
        description=description,
    )


def _write_npz(file: Path, dataset: Dataset) -> None:
    np.savez_compressed(
        file,
        x_train=_compact(dataset.x_train),
        y_train=dataset.y_train,
        x_test=_compact(dataset.x_val),
        y_test=dataset.y_val,
        class_names=np.array(dataset.class_names),
    )


def _compact(x: np.ndarray) -> np.ndarray:
    """uint8 when that round-trips exactly through ``_to_float`` (images of 0..255), else x."""
    as_bytes = np.rint(x * 255.0).astype(np.uint8)
    return as_bytes if np.array_equal(_to_float(as_bytes, 0.0, 255.0), x) else x
