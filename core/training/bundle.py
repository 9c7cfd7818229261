"""Build the self-contained source folder a cloud training job runs, and its content digest."""

from __future__ import annotations

import ast
import hashlib
import logging
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

import core

log = logging.getLogger(__name__)

# The modules the entry script starts from; every core.* module they import (at the top or
# inside a function) is copied too, followed transitively.
ROOTS: tuple[str, ...] = ("core.training.train", "core.training.model")
LAUNCHER_NAME = "train.py"
REQUIREMENTS_NAME = "requirements.txt"

LAUNCHER = '''"""Launch CloudTune's trainer from this bundle folder: python train.py --name=value ..."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from core.training.train import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
'''

REQUIREMENTS_HEADER = """\
# Extra packages for the training container. TensorFlow, Keras and NumPy come with the
# platforms' TensorFlow images, so they are deliberately not listed here.
"""


def _core_root() -> Path:
    return Path(core.__file__).resolve().parent


def _module_file(module: str, core_root: Path) -> Path | None:
    parts = module.split(".")[1:]
    base = core_root.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_core_modules(source: str, module: str) -> set[str]:
    """Names of core.* modules imported anywhere in ``source`` (relative imports resolved)."""
    found: set[str] = set()
    package = module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "core")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if base.split(".")[0] == "core":
                found.add(base)
                found.update(f"{base}.{a.name}" for a in node.names)
    return found


def _parents(module: str) -> Iterable[str]:
    parts = module.split(".")
    for i in range(1, len(parts)):
        yield ".".join(parts[:i])


def needed_files(roots: Sequence[str] = ROOTS) -> list[Path]:
    """Find the core files the trainer needs: the roots, what they import, and package inits.

    Args:
        roots: Dotted module names to start from.

    Returns:
        Absolute paths of the files, sorted.
    """
    core_root = _core_root()
    seen: set[str] = set()
    files: set[Path] = set()
    todo = list(roots)
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        path = _module_file(module, core_root)
        if path is None:  # ``from core.x import name`` also lists core.x.name: not a module
            continue
        files.add(path)
        todo.extend(_parents(module))
        todo.extend(_imported_core_modules(path.read_text(encoding="utf-8"), module))
    return sorted(files)


def build_bundle(dest_dir: str | Path, requirements: Sequence[str] = ()) -> Path:
    """Write a folder a cloud job can run with ``python train.py --name=value ...``.

    It holds a ``train.py`` launcher, the core files the trainer imports (found by following
    its imports) and a ``requirements.txt`` naming only ``requirements`` (TensorFlow is in the
    platforms' images).

    Args:
        dest_dir: The folder to create; it must be missing or empty.
        requirements: Extra pip requirement lines for the container.

    Returns:
        The folder.

    Raises:
        FileExistsError: ``dest_dir`` exists and is not empty.
    """
    dest = Path(dest_dir)
    if dest.exists() and any(dest.iterdir()):
        raise FileExistsError(f"The bundle folder {dest} is not empty; pass a new folder.")
    core_root = _core_root()
    for source in needed_files():
        target = dest / "core" / source.relative_to(core_root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    (dest / LAUNCHER_NAME).write_text(LAUNCHER, encoding="utf-8")
    lines = [line.strip() for line in requirements if line.strip()]
    text = REQUIREMENTS_HEADER + "".join(f"{line}\n" for line in lines)
    (dest / REQUIREMENTS_NAME).write_text(text, encoding="utf-8")
    return dest


def bundle_digest(directory: str | Path) -> str:
    """A stable sha256 of a folder's files (relative paths and bytes; caches skipped).

    Args:
        directory: The bundle folder.

    Returns:
        64 hex digits; equal folders give equal digests wherever they live.
    """
    root = Path(directory)
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*"), key=lambda p: p.relative_to(root).as_posix()):
        rel = path.relative_to(root)
        if not path.is_file() or "__pycache__" in rel.parts or path.suffix == ".pyc":
            continue
        data = path.read_bytes()
        digest.update(rel.as_posix().encode("utf-8") + b"\0")
        digest.update(len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()
