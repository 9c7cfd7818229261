"""The dataset registry: one frozen row of facts per dataset CloudTune knows, and lookups.

Every other place that needs a fact about a dataset (its title, image shape, classes, size,
where its files are looked for, how to get it) reads it from :data:`DATASETS`: the loaders
of :mod:`core.training.data`, the forecasts of :mod:`core.costs.forecasting` and the names
:mod:`core.spec` accepts. Standard library only: this module ships inside cloud training
containers and is imported by the spec.

Example:
    >>> dataset_facts("mnist").input_shape
    (28, 28, 1)
    >>> DATASET_NAMES
    ('digits', 'mnist', 'fashion_mnist', 'cifar10', 'custom')
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from os import PathLike

log = logging.getLogger(__name__)

ALL_FORMATS: frozenset[str] = frozenset({"idx", "npz", "cifar_tar", "cifar_dir", "images"})
"""Every file format :mod:`core.training.dataformats` detects (what a custom dataset may be)."""

_IDX_FILES = (
    "the four IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
    "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz)"
)
_DOWNLOAD = "or allow a one-time download through keras.datasets where the network allows it"


@dataclass(frozen=True)
class DatasetFacts:
    """What CloudTune knows about one dataset before reading any of its files.

    Attributes:
        name: the dataset's name in a spec (``dataset.name``).
        title: a short title, the start of a loaded dataset's description.
        summary: one or two sentences for the dataset picker.
        input_shape: (height, width, channels) of one image, or None when it depends on the
            files (custom).
        num_classes: how many classes, or None when it depends on the files.
        train_examples: images in the training split (all of them when there is no official
            test split), or None when it depends on the files.
        test_examples: images in the official test split, or None when there is none.
        class_names: the class names, index by index, or None when the files name them.
        formats: the file formats (see :data:`ALL_FORMATS`) its files may come in; empty for
            a dataset that has no files (digits ship inside scikit-learn).
        user_subfolders: subfolders of a folder the user names that are looked in too.
        keras_cache: paths inside Keras' ``datasets`` cache folder that are looked in.
        debian_folder: the folder under Debian's ``/usr/share/datasets`` that is looked in,
            or None when Debian packages no copy.
        downloadable: whether ``keras.datasets.<name>`` can download it.
        how_to_get: the sentence saying how to provide it; ``{folder}`` stands for its
            folder under CloudTune's data folder (see :func:`how_to_get`).
    """

    name: str
    title: str
    summary: str
    input_shape: tuple[int, int, int] | None
    num_classes: int | None
    train_examples: int | None
    test_examples: int | None
    class_names: tuple[str, ...] | None
    formats: frozenset[str]
    user_subfolders: tuple[str, ...]
    keras_cache: tuple[str, ...]
    debian_folder: str | None
    downloadable: bool
    how_to_get: str


DATASETS: tuple[DatasetFacts, ...] = (
    DatasetFacts(
        name="digits",
        title="scikit-learn's 8x8 handwritten digits",
        summary="1,797 8x8 grayscale handwritten digits in 10 classes, bundled with "
        "scikit-learn (no files, no network).",
        input_shape=(8, 8, 1),
        num_classes=10,
        train_examples=1797,
        test_examples=None,
        class_names=tuple(str(i) for i in range(10)),
        formats=frozenset(),
        user_subfolders=(),
        keras_cache=(),
        debian_folder=None,
        downloadable=False,
        how_to_get="Install scikit-learn (pip install scikit-learn): the digits ship inside it.",
    ),
    DatasetFacts(
        name="mnist",
        title="MNIST handwritten digits",
        summary="70,000 28x28 grayscale handwritten digits in 10 classes "
        "(60,000 train, 10,000 test).",
        input_shape=(28, 28, 1),
        num_classes=10,
        train_examples=60000,
        test_examples=10000,
        class_names=tuple(str(i) for i in range(10)),
        formats=frozenset({"idx", "npz"}),
        user_subfolders=("mnist",),
        keras_cache=("mnist.npz", "mnist"),
        debian_folder=None,
        downloadable=True,
        how_to_get=f"Put {_IDX_FILES} or Keras' mnist.npz in {{folder}} or in a folder you "
        f"name, {_DOWNLOAD}.",
    ),
    DatasetFacts(
        name="fashion_mnist",
        title="Fashion-MNIST clothing images",
        summary="70,000 28x28 grayscale clothing images in 10 classes (60,000 train, 10,000 test).",
        input_shape=(28, 28, 1),
        num_classes=10,
        train_examples=60000,
        test_examples=10000,
        class_names=(
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        formats=frozenset({"idx", "npz"}),
        user_subfolders=("fashion_mnist", "fashion-mnist"),
        keras_cache=("fashion-mnist", "fashion_mnist"),
        debian_folder="fashion-mnist",
        downloadable=True,
        how_to_get="Install Debian's package (sudo apt-get install dataset-fashion-mnist), "
        f"or put {_IDX_FILES} in {{folder}} or in a folder you name, {_DOWNLOAD}.",
    ),
    DatasetFacts(
        name="cifar10",
        title="CIFAR-10 colour photos",
        summary="60,000 32x32 colour photos in 10 classes (50,000 train, 10,000 test).",
        input_shape=(32, 32, 3),
        num_classes=10,
        train_examples=50000,
        test_examples=10000,
        class_names=(
            "airplane",
            "automobile",
            "bird",
            "cat",
            "deer",
            "dog",
            "frog",
            "horse",
            "ship",
            "truck",
        ),
        formats=frozenset({"cifar_tar", "cifar_dir"}),
        user_subfolders=("cifar10", "cifar-10"),
        keras_cache=(
            "cifar-10-batches-py-target",
            "cifar-10-batches-py",
            "cifar-10-batches-py.tar.gz",
            "cifar-10-batches-py-target_archive",
            "cifar-10-python.tar.gz",
        ),
        debian_folder=None,
        downloadable=True,
        how_to_get="Put the official cifar-10-python.tar.gz "
        "(https://www.cs.toronto.edu/~kriz/cifar.html) or its extracted cifar-10-batches-py "
        f"folder in {{folder}}, or name the file or folder, {_DOWNLOAD}.",
    ),
    DatasetFacts(
        name="custom",
        title="Custom dataset",
        summary="Your own images: an .npz with x_train/y_train (optional x_test/y_test) or a "
        "folder with one subfolder of images per class.",
        input_shape=None,
        num_classes=None,
        train_examples=None,
        test_examples=None,
        class_names=None,
        formats=ALL_FORMATS,
        user_subfolders=(),
        keras_cache=(),
        debian_folder=None,
        downloadable=False,
        how_to_get="Name an .npz file with x_train and y_train (optional x_test, y_test and "
        "class_names) or a folder with one subfolder of images per class, or put one in "
        "{folder}.",
    ),
)
"""Every dataset, in the order the dataset picker lists them."""

_BY_NAME: dict[str, DatasetFacts] = {d.name: d for d in DATASETS}

DATASET_NAMES: tuple[str, ...] = tuple(_BY_NAME)
"""The names a spec's ``dataset.name`` may take, in registry order."""


def find_dataset(name: str) -> DatasetFacts | None:
    """Return the registry row named ``name``, or None for a name the registry lacks."""
    return _BY_NAME.get(name)


def dataset_facts(name: str) -> DatasetFacts:
    """Return the registry row named ``name``.

    Raises:
        KeyError: The registry has no dataset of that name (the message lists the names).
    """
    facts = _BY_NAME.get(name)
    if facts is None:
        raise KeyError(f"Unknown dataset '{name}'; choose one of {', '.join(DATASET_NAMES)}.")
    return facts


def how_to_get(name: str, folder: str | PathLike[str]) -> str:
    """Return the sentence saying how to provide dataset ``name``, naming ``folder``.

    Args:
        name: A registry name.
        folder: The dataset's folder under CloudTune's data folder.
    """
    return dataset_facts(name).how_to_get.format(folder=folder)
