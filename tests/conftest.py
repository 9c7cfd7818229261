"""Shared fixtures: a temporary store and data folder, and a guard against leaving loopback."""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
"""Debian's Chromium (installed by .ci/run); never a browser Playwright downloads."""
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
"""Headless on a closed network: no background connections that the machine would refuse."""


def _is_loopback(address: object) -> bool:
    if isinstance(address, tuple) and address:
        host = str(address[0])
    elif isinstance(address, str | bytes):  # AF_UNIX path
        return True
    else:
        return True
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        try:
            return all(
                ipaddress.ip_address(info[4][0]).is_loopback
                for info in socket.getaddrinfo(host, None)
            )
        except OSError:
            return False


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any test that opens a socket to an address outside loopback."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def guard(address: object) -> None:
        if not _is_loopback(address):
            raise AssertionError(f"test tried to reach a non-loopback address: {address!r}")

    def connect(self: socket.socket, address: object) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            guard(address)
        return real_connect(self, address)  # type: ignore[arg-type]

    def connect_ex(self: socket.socket, address: object) -> int:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            guard(address)
        return real_connect_ex(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh CLOUDTUNE_HOME and CLOUDTUNE_DB for one test."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("CLOUDTUNE_HOME", str(home))
    monkeypatch.setenv("CLOUDTUNE_DB", f"sqlite:///{home / 'cloudtune.db'}")
    return home


@pytest.fixture()
def store(home: Path) -> Iterator[object]:
    """A Store on a fresh SQLite file."""
    from core.store import Store

    s = Store()
    yield s
    s.dispose()


@pytest.fixture()
def published_spec() -> object:
    """The published study's spec (digits)."""
    from core.spec import StudySpec

    return StudySpec.load(ROOT / "assets" / "specs" / "published_study.json")


@pytest.fixture()
def artifacts() -> Path:
    """A folder for test artifacts (screenshots, reports), kept after the run."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
