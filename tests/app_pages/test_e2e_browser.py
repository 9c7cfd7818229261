"""End to end in a real browser: define the space, launch a tiny local run, watch it finish,
compare, download the CSV. Debian's Chromium driven by Playwright against `streamlit run`.
"""

from __future__ import annotations

import csv
import io
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.backends.local.worker import worker_env
from tests.conftest import CHROMIUM, CHROMIUM_FLAGS

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and not os.environ.get("CI"),
        reason="Debian's chromium is not installed: .ci/run installs it (apt-get install chromium)",
    ),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def server(home: Path, tmp_path: Path) -> Iterator[str]:
    """`streamlit run app.py` on a loopback port with a fresh store."""
    port = _free_port()
    env = worker_env(  # the app starts local workers: the same environment as theirs
        {
            "CLOUDTUNE_HOME": str(home),
            "CLOUDTUNE_DB": f"sqlite:///{home / 'cloudtune.db'}",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "CUDA_VISIBLE_DEVICES": "",
        }
    )
    log = (tmp_path / "streamlit.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.port",
            str(port),
            "--server.headless",
            "true",
            "--server.fileWatcherType",
            "none",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        raise AssertionError("streamlit did not start: " + (tmp_path / "streamlit.log").read_text())
    yield url
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def _set_number(page, label: str, value: int) -> None:  # noqa: ANN001 - playwright Page
    box = page.get_by_role("spinbutton", name=label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    page.wait_for_timeout(700)


def _choose(page, label: str, option: str | re.Pattern[str]) -> None:  # noqa: ANN001 - Page
    """Pick ``option`` in the Streamlit selectbox labelled ``label``."""
    box = page.locator('[data-testid="stSelectbox"]').filter(has_text=label).first
    box.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    box.click()
    page.get_by_role("option", name=option).first.click()
    page.wait_for_timeout(1000)


def test_define_launch_monitor_compare_download(
    server: str, artifacts: Path, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=60_000)  # a loaded 2-core machine is slow to rerun
    shots = artifacts / "e2e"
    shots.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page.set_default_timeout(60_000)
        # a bookmarked page opened first still goes through app.py's navigation
        page.goto(f"{server}/settings")
        expect(page.get_by_role("heading", name="Settings", exact=True)).to_be_visible()
        expect(page.get_by_role("link", name="Search space")).to_be_visible()
        expect(page.get_by_role("link", name="shared")).to_have_count(0)
        page.goto(server)
        expect(page.get_by_role("heading", name="CloudTune")).to_be_visible()
        expect(page.get_by_text("No runs yet")).to_be_visible()
        page.screenshot(path=str(shots / "1-home.png"), full_page=True)

        # Search space: the published study's space is the starting draft; rename it
        page.get_by_role("button", name="Start a study").click()
        expect(page.get_by_role("heading", name="Search space")).to_be_visible()
        name = page.get_by_role("textbox", name="Study name")
        name.fill("browser-study")
        name.press("Enter")
        page.wait_for_timeout(700)
        expect(page.get_by_text("Configurations", exact=True)).to_be_visible()
        page.screenshot(path=str(shots / "2-search-space.png"), full_page=True)

        # Launch: a tiny random search on the local machine, into a new study
        page.get_by_role("button", name="Continue to Launch").click()
        expect(page.get_by_role("heading", name="Budget")).to_be_visible()
        _choose(page, "Strategy", "random")
        page.get_by_role("textbox", name="New study's name").fill("browser-study")
        page.get_by_role("textbox", name="New study's name").press("Enter")
        page.wait_for_timeout(700)
        _set_number(page, "In parallel", 1)
        _set_number(page, "Trials", 2)
        _set_number(page, "Epochs per trial", 1)
        _set_number(page, "Training subset (examples, 0 = all)", 300)
        expect(page.get_by_text("Ready", exact=True)).to_be_visible()
        page.screenshot(path=str(shots / "3-launch.png"), full_page=True)
        page.get_by_role("button", name=re.compile(r"Launch$")).click()

        # Monitor: wait for the run to complete
        expect(page.get_by_role("heading", name="Monitor")).to_be_visible()
        expect(page.get_by_text("Status: completed")).to_be_visible(timeout=300_000)
        # the live panel drops the run's Cancel button once it has ended
        expect(page.get_by_role("button", name=re.compile("Cancel"))).to_have_count(0)
        page.screenshot(path=str(shots / "4-monitor.png"), full_page=True)

        # Launch again: a hyperband run added to the same study
        page.get_by_role("link", name="Launch").click()
        expect(page.get_by_role("heading", name="Budget")).to_be_visible()
        _choose(page, "Strategy", "hyperband")
        expect(page.get_by_text("Ready", exact=True)).to_be_visible()  # the page has settled
        _choose(page, "Launch into", re.compile(r"^Add to study \d+: browser-study$"))
        # no new name to give: the runs join the study
        expect(page.get_by_role("textbox", name="New study's name")).to_have_count(0)
        expect(page.get_by_text("Ready", exact=True)).to_be_visible()
        page.screenshot(path=str(shots / "5-launch-into-study.png"), full_page=True)
        page.get_by_role("button", name=re.compile(r"Launch$")).click()
        expect(page.get_by_role("heading", name="Monitor")).to_be_visible()
        expect(page.get_by_text("Status: completed").first).to_be_visible(timeout=300_000)
        expect(page.get_by_role("button", name=re.compile("Cancel"))).to_have_count(0)

        # Compare: both runs of the study, grouped by strategy, with the statistics
        page.get_by_role("link", name="Compare").click()
        expect(page.get_by_role("heading", name="Statistics")).to_be_visible()
        _choose(page, "Group by", "Strategy")
        expect(page.get_by_text("Strategy: random (run 1); hyperband (run 2).")).to_be_visible()
        expect(page.get_by_text(re.compile("between strategies")).first).to_be_visible()
        stats = page.locator('[data-testid="stDataFrame"]').first
        expect(stats).to_be_visible()
        # the chart tabs: only the open tab's charts are drawn, each on a canvas
        # (Totals: time and best objective; no cost chart, a local run has no price here)
        canvases = page.locator('[data-testid="stVegaLiteChart"] canvas')
        expect(canvases).to_have_count(2)
        page.get_by_role("tab", name="Parameters", exact=True).click()
        expect(canvases).to_have_count(1)  # parallel coordinates alone
        page.get_by_role("tab", name="Totals", exact=True).click()
        expect(canvases).to_have_count(2)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(shots / "6-compare-by-strategy.png"), full_page=True)
        with page.expect_download() as info:
            page.get_by_role("button", name="Per-trial table (CSV)").click()
        download = info.value
        target = tmp_path / "trials.csv"
        download.save_as(target)

        # Present: the same runs and the same group-by, to the statistics slide
        page.get_by_role("link", name="Present").click()
        expect(page.get_by_role("button", name="Next")).to_be_visible()
        _choose(page, "Group by", "Strategy")
        for _ in range(4):
            page.get_by_role("button", name="Next").click()
            page.wait_for_timeout(1200)
        expect(page.get_by_role("heading", name="Statistics")).to_be_visible()
        expect(page.get_by_text("Strategies compared at α = 0.05.")).to_be_visible()
        expect(page.get_by_text(re.compile("between strategies")).first).to_be_visible()
        expect(page.locator("table").first).to_contain_text("Analysis")
        page.screenshot(path=str(shots / "7-present-statistics.png"), full_page=True)
        browser.close()

    data = target.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")  # UTF-8 with a byte order mark, for Excel
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert len(rows) == 4
    assert {r["backend"] for r in rows} == {"local"}
    assert {r["status"] for r in rows} == {"completed"}
    assert {r["study"] for r in rows} == {"browser-study"}
    assert {r["strategy"] for r in rows} == {"random", "hyperband"}
    assert all(0.0 <= float(r["objective"]) <= 1.0 for r in rows)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r["started_at"]) for r in rows)
