"""Helpers the pages share: the cached store and a guard that turns errors into sentences."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import streamlit as st

from core.errors import CloudTuneError
from core.store import Store

if TYPE_CHECKING:
    import altair as alt


@st.cache_resource(show_spinner=False)
def _store(url: str) -> Store:
    return Store(url)


def get_store() -> Store:
    """Return the store for $CLOUDTUNE_DB (or the default), opened once per server."""
    from core.store import default_url

    return _store(os.environ.get("CLOUDTUNE_DB") or default_url())


@contextmanager
def friendly(what: str) -> Iterator[None]:
    """Show a CloudTune error as a sentence (and any other error as one short line)."""
    try:
        yield
    except CloudTuneError as err:
        st.error(str(err))
    except Exception as err:  # noqa: BLE001 - no traceback ever reaches a page
        st.error(
            f"{what} failed: {err.__class__.__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        )


def chart_with_downloads(chart: alt.Chart | alt.LayerChart, name: str) -> None:
    """Show an Altair chart with PNG and SVG download buttons (rendered on click, offline)."""
    from core.analysis.charts import chart_png, chart_svg

    st.altair_chart(chart, width="stretch")
    with st.popover("Download chart", icon=":material/download:"):
        st.download_button(
            "PNG image",
            lambda: chart_png(chart),
            f"{name}.png",
            "image/png",
            key=f"png_{name}",
            on_click="ignore",
        )
        st.download_button(
            "SVG image",
            lambda: chart_svg(chart),
            f"{name}.svg",
            "image/svg+xml",
            key=f"svg_{name}",
            on_click="ignore",
        )
