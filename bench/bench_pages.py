"""Benchmark of the app's responsiveness in a real browser: page renders and a Compare re-group.

``python -m bench.bench_pages`` seeds a store with one study of 10 runs and 1,000 trials
(``tests.seed.seed_mixed_study``: SageMaker, Vertex AI, Azure ML and local runs; random,
bayesian and hyperband; epochs for every trial), then, ``--repeats`` times (default 5):

1. starts ``streamlit run app.py --server.headless true --server.fileWatcherType none`` afresh
   (so every repetition has cold caches, as after ``make run``) and opens it in Debian's
   Chromium driven by Playwright;
2. clicks every page in the sidebar twice round: the first round is each page's first render
   in that server, the second a return to a page already seen;
3. on Compare, changes "Group by" to groupings not yet computed (a cache miss each), then back
   to one already shown (a hit);
4. opens Compare's other chart tabs (each draws its charts for the first time), goes back to
   the first, and re-groups once more with the tab of the most charts open (Over time).

A measurement runs, on the browser's own clock, from the pointer press until the browser has
received Streamlit's ``script_finished`` message for the run it started (read from the app's
websocket), and then every element is current (none marked stale, no running indicator), the
page's own heading and key element are shown, every chart has drawn and the browser's main
thread is idle. The websocket also gives each run's split: press to the run's start
(``new_session``), from there to its last message as the page takes it in (the server's run
and the page handling the messages as they come), and the drawing after it; DevTools gives the
page's main-thread time meanwhile (``browser_busy_s``), which tells the browser's share. Figures are medians over the repetitions with their min and max; the JSON
(``bench/results/pages.json``) also keeps every sample, the machine and the load average.

``--baseline DIR`` also measures another checkout (say a worktree of the commit before a
change) on the same store, alternating with this one repetition by repetition, so that on a
shared machine both see the same load; its figures go under ``baseline`` in the JSON.
``--profile`` runs the server under cProfile (``bench._profiled_server``) and writes, for each
measured run, where its time went (imports, garbage collection, the project's functions) to
``bench/results/pages_profile.json``; its timings are inflated by the profiler.

Targets (issue 18): each page renders in at most 1.5 s, a Compare re-group in at most 1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench import stop_server, wait_healthy  # run as python -m bench.bench_pages
from bench.bench_idle import _free_port
from bench.bench_local import ROOT, machine

RESULTS = ROOT / "bench" / "results" / "pages.json"
PROFILE_RESULTS = ROOT / "bench" / "results" / "pages_profile.json"
PAGE_TARGET_S = 1.5
REGROUP_TARGET_S = 1.0
N_RUNS, N_TRIALS = 10, 1000
READY_S = 60

PAGES: dict[str, str | None] = {
    "Search space": '[data-testid="stDataFrame"], [data-testid="stTable"]',
    "Launch": '[data-testid="stExpander"]',
    "Monitor": '[data-testid="stVegaLiteChart"]',
    "Compare": '[data-testid="stVegaLiteChart"]',
    "Present": '[data-testid="stButton"]',
    "Settings": '[data-testid="stDataFrame"]',
    "Home": '[data-testid="stDataFrame"]',
}
"""Every page, by its navigation title (app.py), in tour order, with the element it must show."""
HEADINGS = {"Present": None, "Home": "CloudTune"}
"""Pages whose first heading is not their title (Present opens on a slide title, Home on the app's name)."""
REGROUPS = ["strategy", "instance_type", "p_batch_size", "platform"]
"""Compare's groupings in the order picked: the first three are new (computed), the last was
already shown by the tour (cached)."""
CHART_TABS = ["Per trial", "Over time", "Parameters", "Totals"]
"""Compare's chart tabs in the order opened after the re-groups (Totals, open from the start,
last: back to one drawn before); a checkout without the tabs skips them."""
REGROUP_IN_TAB = ("Over time", "run")
"""A re-group to a new grouping (ten runs: the most groups) with the tab of the most charts and
points open (history and time to accuracy)."""
READY_JS = """
([heading, key]) => {
  const main = document.querySelector('[data-testid="stMain"]') || document.body;
  const status = document.querySelector('[data-testid="stStatusWidget"]');
  if (status && status.offsetParent !== null && status.textContent.includes('Running')) return 'running';
  if (main.querySelector('[data-stale="true"]')) return 'stale elements';
  const h1 = main.querySelector('h1');
  if (!h1 || (heading && h1.textContent.trim() !== heading)) return 'heading ' + (h1 && h1.textContent);
  if (key && !main.querySelector(key)) return 'no ' + key;
  for (const chart of main.querySelectorAll('[data-testid="stVegaLiteChart"]')) {
    const drawn = chart.querySelector('canvas, svg.marks');
    if (!drawn || drawn.getBoundingClientRect().width === 0) return 'a chart not drawn';
  }
  return '';
}
"""
"""What still keeps the page from being drawn ('' when nothing does)."""
IDLE_JS = """
() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(
  () => requestIdleCallback(() => done(performance.now()), {timeout: 10000}))))
"""
"""Resolves with the browser's clock once two frames are painted and its main thread is idle."""
STAMPS_JS = """
(() => {
  window.__bench = {pointer: [], frames: []};
  document.addEventListener('pointerdown', () => window.__bench.pointer.push(performance.now()),
                            {capture: true});
  const Real = window.WebSocket;
  window.WebSocket = function (...args) {
    const ws = new Real(...args);
    ws.addEventListener('message', () => window.__bench.frames.push(performance.now()));
    return ws;
  };
  window.WebSocket.prototype = Real.prototype;
  Object.assign(window.WebSocket, Real);
})();
"""
"""Run before the app's scripts: stamps, on the browser's clock (ms), every pointer press and
every websocket message as the page receives it, so the timings leave out Playwright's own
latency (its actionability checks before a click, its event delivery)."""


class RunWatcher:
    """Streamlit's websocket messages as they reach the browser: when each chain of script runs
    starts (its first ``new_session``) and finishes (a ``script_finished`` that is not
    "finished early for a rerun", as ``st.rerun`` and ``st.switch_page`` end a run), as
    indices among the socket's messages; :data:`STAMPS_JS` has the browser's time of each."""

    def __init__(self) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        self._msg = ForwardMsg
        self._early = ForwardMsg.FINISHED_EARLY_FOR_RERUN
        self.lock = threading.Lock()
        self.frames = 0
        self.runs: list[dict[str, int]] = []
        """One per chain: the index among the socket's messages of its first ``new_session``
        (``started``) and, once it has ended, of its ``script_finished`` (``finished``)."""

    def attach(self, ws: Any) -> None:
        """Listen on one of the page's websockets."""
        ws.on("framereceived", self._frame)

    def done(self) -> int:
        """How many chains have finished."""
        with self.lock:
            return sum("finished" in r for r in self.runs)

    def _frame(self, payload: Any) -> None:
        with self.lock:
            now = self.frames
            self.frames += 1
        if isinstance(payload, str):
            return
        try:
            msg = self._msg.FromString(payload)
        except Exception:  # noqa: BLE001 - not a ForwardMsg
            return
        kind = msg.WhichOneof("type")
        with self.lock:
            open_run = self.runs[-1] if self.runs and "finished" not in self.runs[-1] else None
            if kind == "new_session" and open_run is None:
                self.runs.append({"started": now})
            elif kind == "script_finished" and msg.script_finished != self._early:
                if open_run is None:  # a finish whose start came before we listened
                    self.runs.append({"started": now, "finished": now})
                else:
                    open_run["finished"] = now


def start_server(
    home: Path, port: int, log: Any, profile: Path | None = None, app_root: Path = ROOT
) -> subprocess.Popen[bytes]:
    """``streamlit run app.py`` of the checkout ``app_root``, headless, file watcher off, on the
    store in ``home``; with ``profile``, every script run is profiled into that folder
    (``bench._profiled_server``)."""
    env = {
        **os.environ,
        "CLOUDTUNE_HOME": str(home),
        "CLOUDTUNE_DB": f"sqlite:///{home / 'cloudtune.db'}",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "CUDA_VISIBLE_DEVICES": "",
    }
    runner = ["streamlit"]
    if profile is not None:
        env["BENCH_PAGES_PROFILE_DIR"] = str(profile)
        runner = ["bench._profiled_server"]
    cmd = [sys.executable, "-m", *runner, "run", "app.py", "--server.port", str(port)]
    cmd += ["--server.headless", "true", "--server.fileWatcherType", "none"]
    proc = subprocess.Popen(cmd, cwd=app_root, env=env, stdout=log, stderr=subprocess.STDOUT)
    wait_healthy(proc, port, 0.3)
    return proc


def wait_rendered(
    page: Any, watch: RunWatcher, runs_before: int, heading: str | None, key: str | None
) -> dict[str, float]:
    """Wait for the chain of runs after the first ``runs_before`` to finish and its page to be
    drawn; return when (browser clock, ms) it started, finished and was drawn, and when it was
    drawn by ``time.monotonic()`` (to find its profile)."""
    deadline = time.monotonic() + 180
    while watch.done() <= runs_before:
        if time.monotonic() > deadline:
            raise TimeoutError("the script run never finished")
        page.wait_for_timeout(5)
    with watch.lock:
        run = dict(watch.runs[runs_before])
    try:
        page.wait_for_function(
            f"(args) => ({READY_JS})(args) === ''",
            arg=[heading, key],
            polling=10,
            timeout=READY_S * 1000,
        )
    except Exception as err:
        why = page.evaluate(READY_JS, [heading, key])
        raise TimeoutError(f"the page was not drawn in {READY_S} s: {why}") from err
    drawn = float(page.evaluate(IDLE_JS))
    started, finished = page.evaluate(
        "([a, b]) => [window.__bench.frames[a], window.__bench.frames[b]]",
        [run["started"], run["finished"]],
    )
    return {"started": started, "finished": finished, "drawn": drawn, "_t1": time.monotonic()}


class Tab:
    """The page under test, its websocket watcher and a DevTools session for its main thread's
    busy time (``Performance.getMetrics``: TaskDuration, ScriptDuration)."""

    def __init__(self, context: Any) -> None:
        self.page = context.new_page()
        self.page.set_default_timeout(READY_S * 1000)
        self.watch = RunWatcher()
        self.page.on("websocket", self.watch.attach)
        self.cdp = context.new_cdp_session(self.page)
        self.cdp.send("Performance.enable")

    def busy(self) -> dict[str, float]:
        """Seconds the page's main thread has spent on tasks and on scripts so far."""
        metrics = {
            m["name"]: m["value"] for m in self.cdp.send("Performance.getMetrics")["metrics"]
        }
        return {"task": float(metrics["TaskDuration"]), "script": float(metrics["ScriptDuration"])}

    def pressed(self) -> float:
        """The browser's time (ms) of the last pointer press: when the click began."""
        return float(
            self.page.evaluate("window.__bench.pointer[window.__bench.pointer.length - 1]")
        )


def _sample(
    t0: float, moments: dict[str, float], pressed: float, busy: tuple[dict[str, float], ...]
) -> dict[str, float]:
    """Seconds from the press (browser clock, ms; 0 for a page load) to the run's start, from
    there to its last message as the page receives it (the server's run and the page taking
    in its messages), then to the page drawn; and the page's main-thread time meanwhile."""
    before, after = busy
    return {
        "total_s": round((moments["drawn"] - pressed) / 1000, 3),
        "to_start_s": round((moments["started"] - pressed) / 1000, 3),
        "run_s": round((moments["finished"] - moments["started"]) / 1000, 3),
        "draw_s": round((moments["drawn"] - moments["finished"]) / 1000, 3),
        "browser_busy_s": round(after["task"] - before["task"], 3),
        "browser_script_s": round(after["script"] - before["script"], 3),
        "_t0": t0,  # monotonic moments, to find the run's profile (left out of the JSON)
        "_t1": moments["_t1"],
    }


def timed_click(tab: Tab, target: Any, heading: str | None, key: str | None) -> dict[str, float]:
    """Click ``target`` (a Playwright locator); time it until the run it starts is drawn, with
    ``heading`` and ``key`` shown (see :func:`wait_rendered`)."""
    before, busy = tab.watch.done(), tab.busy()
    t0 = time.monotonic()
    target.click()
    moments = wait_rendered(tab.page, tab.watch, before, heading, key)
    return _sample(t0, moments, tab.pressed(), (busy, tab.busy()))


def visit(tab: Tab, title: str) -> dict[str, float]:
    """Click ``title`` in the sidebar; time it until the page is drawn."""
    link = tab.page.get_by_role("link", name=title, exact=True).first
    link.wait_for()
    return timed_click(tab, link, HEADINGS.get(title, title), PAGES[title])


def regroup(tab: Tab, group: str) -> dict[str, float]:
    """Pick ``group`` in Compare's "Group by"; time it until the charts and statistics are drawn."""
    from core.analysis.charts import title_for

    label = title_for(group)
    box = tab.page.locator('[data-testid="stSelectbox"]').filter(has_text="Group by").first
    box.scroll_into_view_if_needed()
    box.click()
    option = tab.page.get_by_role("option", name=label, exact=True).first
    option.wait_for()
    sample = timed_click(tab, option, "Compare", PAGES["Compare"])
    shown = box.locator("input").first.input_value()
    if label not in shown:
        raise RuntimeError(f"Group by shows {shown!r} after picking {group}")
    return sample


def open_chart_tab(tab: Tab, label: str) -> dict[str, float] | None:
    """Open Compare's chart tab ``label``; time it until its charts are drawn (None: no tab)."""
    button = tab.page.get_by_role("tab", name=label, exact=True)
    if button.count() == 0:
        return None
    button.first.scroll_into_view_if_needed()
    return timed_click(tab, button.first, "Compare", PAGES["Compare"])


def repetition(
    browser: Any, home: Path, log: Any, profile: Path | None, app_root: Path, think: float = 0.0
) -> dict[str, Any]:
    """One fresh server and browser context: open, two rounds of pages, the re-groups; with
    ``think``, that many seconds on each page before the next click (a user reading it)."""
    port = _free_port()
    server = start_server(home, port, log, profile, app_root)
    try:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.add_init_script(STAMPS_JS)
        tab = Tab(context)
        t0, busy = time.monotonic(), tab.busy()
        tab.page.goto(f"http://127.0.0.1:{port}/")
        # a page load counts from the navigation's start: 0 on the new page's clock
        moments = wait_rendered(tab.page, tab.watch, 0, "CloudTune", PAGES["Home"])
        opened = _sample(t0, moments, 0.0, (busy, tab.busy()))
        rounds: list[dict[str, dict[str, float]]] = [{}, {}]
        tab.page.wait_for_timeout(think * 1000)
        for pages in rounds:
            for title in PAGES:
                pages[title] = visit(tab, title)
                tab.page.wait_for_timeout(think * 1000)
        visit(tab, "Compare")
        groups = {group: regroup(tab, group) for group in REGROUPS}
        tabs = {label: open_chart_tab(tab, label) for label in CHART_TABS}
        in_tab: dict[str, dict[str, float]] = {}
        if tabs[REGROUP_IN_TAB[0]] is not None:
            open_chart_tab(tab, REGROUP_IN_TAB[0])
            in_tab[" ".join(REGROUP_IN_TAB)] = regroup(tab, REGROUP_IN_TAB[1])
        context.close()
        return {
            "open": opened,
            "first": rounds[0],
            "again": rounds[1],
            "regroup": groups,
            "tabs": {k: v for k, v in tabs.items() if v is not None},
            "regroup_in_tab": in_tab,
        }
    finally:
        stop_server(server)


def profile_summary(path: Path, top: int = 8) -> dict[str, Any]:
    """Where one script run's time went: its total, imports, garbage collection, the
    project's functions by cumulative time and every function by its own time."""
    import pstats

    stats = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]

    def name(key: tuple[str, int, str]) -> str:
        file, line, func = key
        for root in (f"{ROOT}/.venv/lib/python3.11/site-packages/", f"{ROOT}/"):
            file = file.removeprefix(root)
        return f"{file}:{line} {func}" if line else func

    def cumulative(func: str) -> float:
        return max((v[3] for k, v in stats.items() if k[2] == func), default=0.0)

    own = sorted(stats.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    project = [
        (k, v)
        for k, v in stats.items()
        if k[0].startswith(str(ROOT)) and "/.venv/" not in k[0] and "/bench/" not in k[0]
    ]
    project.sort(key=lambda kv: kv[1][3], reverse=True)
    return {
        "script_s": round(cumulative("_run_script"), 3),
        "imports_s": round(cumulative("_find_and_load"), 3),
        "gc_collect_s": round(cumulative("<built-in method gc.collect>"), 3),
        "project_cumulative_s": {name(k): round(v[3], 3) for k, v in project[:top]},
        "own_time_s": {name(k): round(v[2], 3) for k, v in own},
    }


def profiles_of(reps: list[dict[str, Any]], folder: Path) -> dict[str, Any]:
    """The profile of each measured run of the first repetition, by what was measured."""
    runs = sorted((float(p.stem.split("-")[0]), p) for p in folder.glob("*.prof") if "-" in p.stem)
    out: dict[str, Any] = {}
    rep = reps[0]
    measured = {"open": rep["open"]}
    for part in ("first", "again", "regroup", "tabs", "regroup_in_tab"):
        measured.update({f"{part} {k}": v for k, v in rep[part].items()})
    for label, sample in measured.items():
        mine = [p for start, p in runs if sample["_t0"] - 0.05 <= start <= sample["_t1"]]
        if mine:
            out[label] = {"measured_s": sample["total_s"], **profile_summary(mine[0])}
    return out


def _public(value: Any) -> Any:
    """``value`` without the underscored keys (moments kept only to find profiles)."""
    if isinstance(value, dict):
        return {k: _public(v) for k, v in value.items() if not str(k).startswith("_")}
    if isinstance(value, list):
        return [_public(v) for v in value]
    return value


def summary(samples: list[float]) -> dict[str, Any]:
    """Median, min, max of ``samples`` (seconds)."""
    return {
        "median_s": round(statistics.median(samples), 3),
        "min_s": round(min(samples), 3),
        "max_s": round(max(samples), 3),
        "n": len(samples),
    }


def _split(samples: list[dict[str, float]]) -> dict[str, Any]:
    out = summary([s["total_s"] for s in samples])
    for part in ("to_start_s", "run_s", "draw_s", "browser_busy_s", "browser_script_s"):
        out[f"median_{part}"] = round(statistics.median(s[part] for s in samples), 3)
    return out


def checkout(root: Path) -> dict[str, Any]:
    """The commit a checkout is at, and what in it is not committed (this benchmark's own
    output, ``bench/results/``, left out)."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
        return done.stdout

    changed = git("status", "--porcelain", "--", ".", ":(exclude)bench/results")
    return {
        "path": str(root),
        "commit": git("rev-parse", "--short", "HEAD").strip(),
        "uncommitted": [line[3:] for line in changed.splitlines() if line.strip()],
    }


def figures(reps: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians and spreads of one checkout's repetitions, and which targets they meet."""
    first = {p: _split([r["first"][p] for r in reps]) for p in PAGES}
    again = {p: _split([r["again"][p] for r in reps]) for p in PAGES}
    groups = {g: _split([r["regroup"][g] for r in reps]) for g in REGROUPS}
    computed = [r["regroup"][g]["total_s"] for r in reps for g in REGROUPS[:-1]]
    tabs = {t: _split([r["tabs"][t] for r in reps]) for t in CHART_TABS if t in reps[0]["tabs"]}
    in_tab = {k: _split([r["regroup_in_tab"][k] for r in reps]) for k in reps[0]["regroup_in_tab"]}
    worst_page = max(v["median_s"] for v in first.values())
    worst_again = max(v["median_s"] for v in again.values())
    met = {
        "every page, first visit in a fresh server": worst_page <= PAGE_TARGET_S,
        "every page, visited again": worst_again <= PAGE_TARGET_S,
        "a re-group to a grouping not shown yet": statistics.median(computed) <= REGROUP_TARGET_S,
    }
    return {
        "open": _split([r["open"] for r in reps]),
        "first_visit": first,
        "visit_again": again,
        "regroup": groups,
        "regroup_computed": summary(computed),
        "chart_tabs": tabs,
        "regroup_in_tab": in_tab,
        "worst_first_visit_median_s": worst_page,
        "worst_visit_again_median_s": worst_again,
        "targets_met": met,
        "passed": all(met.values()),
        "samples": _public(reps),
    }


def run(
    repeats: int, profile: bool = False, baseline: Path | None = None, think: float = 0.0
) -> dict[str, Any]:
    """Seed, then ``repeats`` repetitions; return the figures (with ``profile``, each run's
    cProfile summary instead of timings fit to compare: the profiler slows Python down).

    With ``baseline`` (another checkout, e.g. the commit before a change), each repetition
    also serves that checkout's app on the same store, the two alternating which goes first,
    so both see the same load on a shared machine.
    """
    from playwright.sync_api import sync_playwright

    from core.store import Store
    from tests.conftest import CHROMIUM, CHROMIUM_FLAGS
    from tests.seed import seed_mixed_study

    roots = [ROOT] + ([baseline] if baseline is not None else [])
    loads = [os.getloadavg()[0]]
    reps: dict[Path, list[dict[str, Any]]] = {root: [] for root in roots}
    with tempfile.TemporaryDirectory(prefix="bench-pages-") as tmp:
        home = Path(tmp)
        store = Store(f"sqlite:///{home / 'cloudtune.db'}")
        seed_mixed_study(store, n_runs=N_RUNS, n_trials=N_TRIALS)
        store.dispose()
        log_path = home / "streamlit.log"
        folder = home / "profiles" if profile else None
        if folder is not None:
            folder.mkdir()
        with log_path.open("wb") as log, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            try:
                for i in range(repeats):
                    for root in roots if i % 2 == 0 else roots[::-1]:
                        reps[root].append(repetition(browser, home, log, folder, root, think))
                        loads.append(os.getloadavg()[0])
                        last = reps[root][-1]
                        print(
                            f"repetition {i + 1}/{repeats}"
                            + (
                                f" ({'baseline' if root != ROOT else 'this checkout'})"
                                if baseline
                                else ""
                            )
                            + ": first visits "
                            + ", ".join(f"{k} {v['total_s']:.2f}" for k, v in last["first"].items())
                            + "; re-groups "
                            + ", ".join(
                                f"{k} {v['total_s']:.2f}" for k, v in last["regroup"].items()
                            )
                            + f" s (load {loads[-1]:.1f})",
                            flush=True,
                        )
            finally:
                browser.close()
        errors = [
            line
            for line in log_path.read_text(errors="replace").splitlines()
            if "Traceback" in line or "Error" in line
        ]
        profiles = profiles_of(reps[ROOT], folder) if folder is not None else None
    out: dict[str, Any] = {
        "benchmark": "page renders and a Compare re-group in Chromium",
        "command": "python -m bench.bench_pages"
        + (f" --baseline {baseline}" if baseline else "")
        + (" --profile" if profile else "")
        + (f" --think {think:g}" if think else ""),
        "store": f"{N_RUNS} runs, {N_TRIALS} trials (tests.seed.seed_mixed_study)",
        "repeats": repeats,
        "think_s": think,
        "targets": {"page_s": PAGE_TARGET_S, "regroup_s": REGROUP_TARGET_S},
        "checkout": checkout(ROOT),
        **figures(reps[ROOT]),
    }
    if baseline is not None:
        out["baseline"] = {"checkout": checkout(baseline), **figures(reps[baseline])}
    if profiles is not None:
        out["profiles"] = profiles
    out["server_log_errors"] = errors[:20]
    out["load_average_1min"] = [round(x, 2) for x in loads]
    out["machine"] = machine()
    out["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return out


def report(fig: dict[str, Any], title: str) -> None:
    """Print one checkout's table and which targets it meets."""
    print(f"{title}: {fig.get('checkout', {}).get('commit', '')}")
    print(f"{'page':<14}{'first visit (median [min–max] s; run, browser)':<50}{'again':>10}")
    for p in PAGES:
        f, a = fig["first_visit"][p], fig["visit_again"][p]
        print(
            f"{p:<14}{f['median_s']:>8.2f} [{f['min_s']:.2f}–{f['max_s']:.2f}]"
            f"  run {f['median_run_s']:.2f} browser {f['median_browser_busy_s']:.2f}"
            f"{a['median_s']:>8.2f} [{a['min_s']:.2f}–{a['max_s']:.2f}]"
        )
    for g, v in fig["regroup"].items():
        print(
            f"re-group {g:<14}{v['median_s']:>6.2f} [{v['min_s']:.2f}–{v['max_s']:.2f}]"
            f"  run {v['median_run_s']:.2f} browser {v['median_browser_busy_s']:.2f}"
        )
    for t, v in {**fig.get("chart_tabs", {}), **fig.get("regroup_in_tab", {})}.items():
        what = f"tab {t}" if t in CHART_TABS else f"re-group, tab {t}"
        print(
            f"{what:<23}{v['median_s']:>6.2f} [{v['min_s']:.2f}–{v['max_s']:.2f}]"
            f"  run {v['median_run_s']:.2f} browser {v['median_browser_busy_s']:.2f}"
        )
    print(
        f"worst page median: first visit {fig['worst_first_visit_median_s']:.2f} s, visited "
        f"again {fig['worst_visit_again_median_s']:.2f} s (target {PAGE_TARGET_S}); "
        f"re-group to a new grouping, median {fig['regroup_computed']['median_s']:.2f} s "
        f"(target {REGROUP_TARGET_S})"
    )
    for what, ok in fig["targets_met"].items():
        print(f"  {'met    ' if ok else 'MISSED '} {what}")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print a summary, write the JSON; exit 1 if a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--repeats", type=int, default=None, help="fresh servers (default 5; 1 with --profile)"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="another checkout (e.g. a worktree of the commit before a change) measured "
        "alongside, alternating",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help=f"profile every script run (cProfile) and write {PROFILE_RESULTS.name} instead",
    )
    parser.add_argument(
        "--think",
        type=float,
        default=0.0,
        help="seconds on each page before the next click, as a user reading it (default 0: "
        "click as soon as the page is drawn)",
    )
    parser.add_argument("--out", type=Path, default=None, help=f"default {RESULTS}")
    args = parser.parse_args(argv)
    if args.profile and args.baseline:
        parser.error("--profile measures this checkout only; leave out --baseline")
    repeats = args.repeats or (1 if args.profile else 5)
    result = run(repeats, profile=args.profile, baseline=args.baseline, think=args.think)
    out = args.out or (PROFILE_RESULTS if args.profile else RESULTS)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    if "baseline" in result:
        report(result["baseline"], "baseline")
    report(result, "this checkout")
    print(f"load average (1 min) during the run: {result['load_average_1min']}")
    print(f"written: {out}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
