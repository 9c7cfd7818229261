"""Where CloudTune's files are: the checkout, its assets, and the per-user data folder.

Example:
    >>> ASSETS / "pricing.json"
    >>> cloudtune_home()          # $CLOUDTUNE_HOME, else ~/.local/share/cloudtune on Linux
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
"""The repository root (a worker runs with it on sys.path)."""
ASSETS = ROOT / "assets"
"""Catalogs (prices, images) and specs shipped with the app."""


def cloudtune_home() -> Path:
    """CloudTune's data folder, not created (``core.store.data_home`` creates it).

    ``$CLOUDTUNE_HOME``, else the per-user data folder (``~/.local/share/cloudtune`` on Linux).
    Also used inside cloud containers, where the trainer's bundle carries this module.
    """
    env = os.environ.get("CLOUDTUNE_HOME")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("cloudtune", appauthor=False))
