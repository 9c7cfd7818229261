"""The meeting report: self-contained valid HTML, its numbers, escaping, the CLI and a browser."""

from __future__ import annotations

import dataclasses
import re
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from scipy.stats import f_oneway

from core.analysis.report import StudyReport, build_report, inline_svg, load_report, render_html
from core.analysis.report.slides import slides
from core.cli import main
from core.store import Store
from tests.conftest import CHROMIUM, CHROMIUM_FLAGS
from tests.seed import seed_store

VOID = {
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
    "track", "wbr",
}  # fmt: skip
EXTERNAL = [
    re.compile(r"""\b(?:src|href|srcset|action|poster|data|formaction)\s*=\s*["']?\s*(?:https?:)?//""", re.I),
    re.compile(r"@import", re.I),
    re.compile(r"""url\(\s*["']?\s*(?:https?:)?//""", re.I),
    re.compile(r"<\s*(?:script|link|iframe|object|embed)\b", re.I),
]  # fmt: skip


class Checker(HTMLParser):
    """Balanced tags for non-void elements, plus the text of each table by its class."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.tables: dict[str, list[list[str]]] = {}
        self.text: list[str] = []
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in VOID:
            return
        self.stack.append(tag)
        if tag == "table":
            self._table = dict(attrs).get("class") or f"table{len(self.tables)}"
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            return
        self.stack.pop()
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def parse(text: str) -> Checker:
    checker = Checker()
    checker.feed(text)
    checker.close()
    return checker


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, int]]:
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('report') / 'cloudtune.db'}")
    yield store, seed_store(store)
    store.dispose()


@pytest.fixture(scope="module")
def report(seeded: tuple[Store, int]) -> StudyReport:
    store, study_id = seeded
    return load_report(store, study_id, include_reference=True)


@pytest.fixture(scope="module")
def page(report: StudyReport) -> str:
    return render_html(report)


def test_report_is_well_formed_and_self_contained(page: str) -> None:
    checker = parse(page)
    assert checker.problems == []
    assert checker.stack == []  # every non-void element closed
    assert page.startswith("<!DOCTYPE html>")
    for pattern in EXTERNAL:
        assert not pattern.search(page), pattern.pattern
    # the only http(s) strings left are the SVG namespace names, which are never fetched
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", page))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}
    assert page.count("<svg") == 6 and "could not be drawn" not in page
    assert "@media print" in page


def test_report_holds_the_statistics_table_and_conclusions(
    page: str, report: StudyReport, seeded: tuple[Store, int]
) -> None:
    checker = parse(page)
    table = report.comparison.table()
    rendered = checker.tables["stats"]
    assert rendered[0] == list(table.columns)
    assert rendered[1:] == table.astype(str).values.tolist()
    text = re.sub(r"\s+", " ", "".join(checker.text))
    for sentence in report.comparison.conclusions():
        assert sentence in text
    # the F of every metric the checks sent to the classic ANOVA, recomputed from the store
    store, study_id = seeded
    frame = store.trials_frame(study_id=study_id)
    frame = frame[frame["status"] == "completed"]
    anova = [m for m in report.comparison.metrics.values() if m.chosen_test == "anova"]
    assert anova, "the seeded study should send at least one metric to the classic ANOVA"
    for m in anova:
        samples = [g[m.metric].to_numpy(float) for _, g in frame.groupby("backend")]
        f = f_oneway(*samples).statistic
        cell = f"{f:.2f} (2, {len(frame) - 3})"
        assert any(row[1] == cell for row in rendered[1:]), cell


def test_report_holds_every_section(page: str, seeded: tuple[Store, int]) -> None:
    store, study_id = seeded
    checker = parse(page)
    text = "".join(checker.text)
    for needle in ("bayesian", "20 trials, 3 at a time, 3 epochs each", "digits", "ml.g4dn.xlarge"):
        assert needle in text
    space = checker.tables["table0"]
    assert [r[0] for r in space[1:]] == ["learning_rate", "batch_size", "dropout_rate"]
    frame = store.trials_frame(study_id=study_id)
    # best configuration per platform: the best objective of each backend, from the store
    best_rows = next(t for t in checker.tables.values() if t and "dropout_rate" in t[0][4:])
    best = frame.groupby("backend")["objective"].max()
    assert sorted(r[3] for r in best_rows[1:]) == sorted(f"{v:.4f}" for v in best)
    # forecast against actual: every run has one, and the gap is a signed percentage
    forecast = next(t for t in checker.tables.values() if t and t[0][1] == "Forecast time")
    assert len(forecast) == 4 and all(re.fullmatch(r"[+-]\d+ %", r[3]) for r in forecast[1:])
    # every trial, and the published figures only inside the labelled reference section
    assert len(checker.tables["trials"]) == 1 + len(frame)
    assert "reference figures, not measured here" in text
    assert page.count("GCP AI Platform") == 1
    assert page.index("GCP AI Platform") > page.index('<section id="reference"')


def test_reference_is_left_out_unless_asked(report: StudyReport) -> None:
    plain = dataclasses.replace(report, include_reference=False)
    text = render_html(plain)
    assert "GCP AI Platform" not in text and 'id="reference"' not in text
    assert "5.63 (2, 57)" not in text and "Hollow diamonds" not in text
    assert all(not s.reference for s in slides(plain))


def test_slides_follow_the_findings(report: StudyReport) -> None:
    deck = slides(report)
    assert [s.key for s in deck] == ["setup", "time", "cost", "accuracy", "statistics", "best"]
    cmp = report.comparison
    assert deck[1].finding == cmp.metrics["duration_s"].conclusion
    assert deck[3].finding == cmp.metrics["objective"].conclusion
    assert all(s.chart is not None for s in deck[1:4])
    assert deck[4].table is not None and deck[4].table.equals(cmp.table())
    assert len(deck[5].table) == 3
    assert "not measured here" in deck[1].reference


def _small_store(tmp_path: Path) -> tuple[Store, int]:
    """One platform, hostile strings, no forecast: the statistics stay cheap."""
    store = Store(f"sqlite:///{tmp_path / 'small.db'}")
    spec = {
        "name": '<script>alert("x")</script> & co',
        "dataset": {
            "name": "custom",
            "path": "https://example.com/<data>",
            "validation_split": 0.2,
        },
        "space": [{"name": "optimizer", "type": "choice", "values": ["<img src=x>", "adam"]}],
        "strategy": "random",
        "objective": {"metric": "val_accuracy", "goal": "max"},
        "budget": {"max_trials": 3, "parallel_trials": 1, "epochs": 1},
    }
    study_id = store.create_study(spec)
    run_id = store.create_run(study_id, "local", instance_type="<i>laptop</i>")
    for i in range(3):
        store.upsert_trial(
            run_id,
            f"t{i}",
            params={"optimizer": "<img src=x onerror=alert(1)>"},
            status="completed",
            objective=0.8 + i / 100,
            duration_s=10.0 + i,
            cost_usd=None,
        )
    store.update_run(run_id, status="completed", started_at=1000.0, ended_at=1040.0)
    return store, study_id


def test_user_strings_are_escaped_and_missing_forecasts_said(tmp_path: Path) -> None:
    store, study_id = _small_store(tmp_path)
    page = build_report(store, study_id)
    checker = parse(page)
    assert checker.problems == [] and checker.stack == []
    assert "<script" not in page and "<img" not in page and "<i>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    for pattern in EXTERNAL:
        assert not pattern.search(page), pattern.pattern
    text = "".join(checker.text)
    assert "no forecast" in text
    assert "cannot be compared" in text  # one platform: a sentence, not a crash
    store.dispose()


def test_empty_study_says_what_to_do(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'empty.db'}")
    study_id = store.create_study({"name": "nothing-yet", "space": []})
    page = build_report(store, study_id)
    assert parse(page).problems == []
    assert "No completed trials yet" in page
    assert page.count("<svg") == 6 and "could not be drawn" not in page
    assert len(slides(load_report(store, study_id))) == 6
    store.dispose()


def test_cli_writes_the_report_by_name_and_explains_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, study_id = _small_store(tmp_path)
    url = store.url
    name = store.get_study(study_id).name
    out = tmp_path / "out" / "report.html"
    assert main(["--db", url, "report", name, "--out", str(out), "--group", "strategy"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert main(["--db", url, "report", str(study_id), "--out", str(out), "--alpha", "0.1"]) == 0
    assert "α = 0.1" in out.read_text(encoding="utf-8")
    assert main(["--db", url, "report", "no-such-study", "--out", str(out)]) == 2
    assert "No study 'no-such-study'" in capsys.readouterr().err
    assert main(["--db", url, "report", str(study_id), "--group", "colour"]) == 2
    assert "grouping column 'colour'" in capsys.readouterr().err
    store.dispose()


def test_inline_svg_prefixes_ids() -> None:
    svg = '<?xml version="1.0"?><svg><clipPath id="clip1"/><g clip-path="url(#clip1)"/><use href="#clip1"/></svg>'
    out = inline_svg(svg, "c3")
    assert out.startswith("<svg")
    assert 'id="c3-clip1"' in out and "url(#c3-clip1)" in out and 'href="#c3-clip1"' in out


@pytest.mark.browser
def test_report_renders_in_headless_chromium(page: str, artifacts: Path, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():  # pragma: no cover - the machine has Debian's chromium
        pytest.fail(f"{CHROMIUM} is missing; install Debian's chromium package.")
    html_path = artifacts / "report.html"
    html_path.write_text(page, encoding="utf-8")
    shot = artifacts / "report.png"
    pdf = artifacts / "report.pdf"
    for stale in (shot, pdf):
        stale.unlink(missing_ok=True)
    flags = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium'}"]
    url = html_path.resolve().as_uri()
    for extra in ([f"--screenshot={shot}", "--window-size=1280,2000"], [f"--print-to-pdf={pdf}"]):
        proc = subprocess.run(
            [*flags, *extra, url], capture_output=True, text=True, timeout=120, check=False
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (1280, 2000)
    assert len(png) > 50_000  # a page of tables and charts, not a blank screen
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    pages = len(re.findall(rb"/Type\s*/Page\b", data))
    assert pages >= 4, pages  # the print CSS starts the main sections on new pages
