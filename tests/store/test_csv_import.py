"""CSV import: a sentence for every file it cannot take, nothing half-written, one transaction."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.cli import main
from core.errors import StoreError
from core.store import Store
from core.store.csv_import import import_csv_as_run, read_trials_csv

ROOT = Path(__file__).resolve().parents[2]
HEADER = "trial,status,objective,duration_s,learning_rate,batch_size\n"


def _nothing_stored(store: Store) -> None:
    """No study, no run (queued or other) and no trial row: the import left nothing."""
    assert store.list_studies() == []
    assert store.list_runs() == []
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM trials")).scalar() == 0


def _refused(store: Store, path: Path, capsys: pytest.CaptureFixture[str], *expected: str) -> str:
    """Import ``path`` with the CLI: exit 2, one sentence with ``expected``, nothing stored."""
    assert main(["import", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    assert str(path) in err
    for text in expected:
        assert text in err, err
    _nothing_stored(store)
    return err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", ("is empty", "header row")),
        ("\n\n  \n", ("is empty",)),  # blank lines only
        (HEADER, ("has a header but no rows", "trial, status, objective")),
        ("name,objective\na,0.5\n", ("has no trial id column", "trial_key or trial")),
    ],
    ids=["empty", "blank-lines", "header-only", "no-trial-id-column"],
)
def test_a_file_without_trials_is_a_sentence_and_leaves_nothing(
    store: Store,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str,
    expected: tuple[str, ...],
) -> None:
    path = tmp_path / "export.csv"
    path.write_text(content)
    _refused(store, path, capsys, *expected)


def test_all_rows_bad_names_the_first_problems(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.csv"
    rows = [f"t{i},completed,oops{i},10,0.01,32" for i in range(5)]
    path.write_text(HEADER + "\n".join(rows) + "\n")
    err = _refused(store, path, capsys, "No row of", "5 rows, all refused")
    assert "line 2: objective 'oops0' is not a number" in err
    assert "line 4: objective 'oops2'" in err and "and 2 more" in err
    assert "oops3" not in err


def test_a_missing_file_and_a_folder(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _refused(store, tmp_path / "missing.csv", capsys, "There is no file", "check the path")
    folder = tmp_path / "export.csv"
    folder.mkdir()
    _refused(store, folder, capsys, "is a folder, not a CSV file")


def test_a_binary_file_is_not_utf8_text(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workbook = tmp_path / "trials.csv"  # an .xlsx is a zip: what a mis-saved export is
    with zipfile.ZipFile(workbook, "w") as z:
        z.writestr("xl/worksheets/sheet1.xml", "<sheetData/>" * 50)
    _refused(store, workbook, capsys, "is not UTF-8 text", "binary file", "re-save it as CSV")
    raw = tmp_path / "random.csv"
    raw.write_bytes(bytes(range(1, 256)) * 4)  # no NUL, one newline (0x0a), still not UTF-8
    _refused(store, raw, capsys, "is not UTF-8 text (byte 0x80 on line 2", "UTF-8")
    utf16 = tmp_path / "utf16.csv"
    utf16.write_text(HEADER + "a,completed,0.9,10,0.01,32\n", encoding="utf-16")
    _refused(store, utf16, capsys, "is UTF-16 text", "re-save it as CSV in UTF-8")


def _with_notes(path: Path, *notes: str, encoding: str = "utf-8") -> Path:
    """Write a CSV of good trials a, b, c, ... with a note column holding ``notes``."""
    lines = [HEADER.strip() + ",note"]
    lines += [f"{chr(97 + i)},completed,0.9,10,0.01,32,{n}" for i, n in enumerate(notes)]
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def test_a_latin1_file_names_the_byte_and_line(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _with_notes(tmp_path / "latin1.csv", "ok", "café", encoding="latin-1")
    expected = ("is not UTF-8 text (byte 0xe9 on line 3", "Latin-1", "re-save it as CSV in UTF-8")
    _refused(store, path, capsys, *expected)


def test_a_field_over_128_kb_names_the_row(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _with_notes(tmp_path / "huge.csv", "x", "x", "y" * (129 * 1024))
    _refused(store, path, capsys, "row 3 (line 4)", "longer than 128 KB")
    quote = tmp_path / "quote.csv"  # an unclosed quote swallows the rest of the file
    quote.write_text(HEADER + 'a,completed,0.9,10,"0.01,32\n' + "b,completed,0.8\n" * 20000)
    _refused(store, quote, capsys, "row 1 (line", "check that quotes are closed")


def test_repeated_keys_are_reported_and_the_last_row_kept(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "repeated.csv"
    path.write_text(
        HEADER + "a,completed,0.1,10,0.01,32\na,completed,0.2,10,0.01,32\n"
        "a,completed,0.3,10,0.01,64\n"
    )
    assert main(["import", str(path)]) == 0
    out = capsys.readouterr().out
    assert "3 rows, 1 trial: keys repeated (a 3 times)" in out
    assert "the last row of each key was kept" in out
    [run] = store.list_runs()
    [trial] = store.list_trials(run.id)
    assert (trial.objective, trial.params["batch_size"]) == (0.3, 64)
    assert (run.status, run.status_detail) == ("completed", "imported")


def test_good_rows_keep_their_types_and_numbers(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "ok.csv"
    path.write_text(
        "trial_key,TrainingJobStatus,FinalObjectiveValue,seed,p_optimizer,p_dropout_rate,units\n"
        "j1,Completed,0.9,7,adam,0.25,64\n"
        "\n"  # blank lines are skipped, line numbers stay the file's
        "j2,Failed,,8,sgd,0.3,1e2\n"
        "j3,Completed,0.7,1e30,sgd,0.3,32\n"
    )
    run_id, report = import_csv_as_run(store, path, backend="vertex")
    assert (report.added, report.rows) == (2, 2)
    assert report.errors == [(5, "line 5: seed 1e+30 is not a whole number 0 to 2**63-1.")]
    j1, j2 = store.list_trials(run_id)
    assert (j1.trial_key, j1.number, j1.seed, j1.status) == ("j1", 0, 7, "completed")
    assert j1.params == {"optimizer": "adam", "dropout_rate": 0.25, "units": 64}
    assert j1.metrics == {"objective": 0.9}
    assert (j2.number, j2.status, j2.objective, j2.params["units"]) == (1, "failed", None, 100)
    assert store.get_run(run_id).backend == "vertex"


def test_into_an_existing_run_is_all_or_nothing(store: Store, tmp_path: Path) -> None:
    run_id = store.create_run(store.create_study({"name": "s", "space": []}), "local", spec={})
    first = tmp_path / "first.csv"
    first.write_text(HEADER + "a,completed,0.5,10,0.01,32\nb,completed,0.6,10,0.01,32\n")
    assert store.import_trials_csv(run_id, first).added == 2
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "a,completed,x,10,0.01,32\n")
    with pytest.raises(StoreError, match="No row of"):
        store.import_trials_csv(run_id, bad)
    again = tmp_path / "again.csv"
    again.write_text(HEADER + "b,completed,0.9,10,0.01,32\nc,completed,0.7,10,0.01,32\n")
    store.import_trials_csv(run_id, again)
    trials = {t.trial_key: (t.number, t.objective) for t in store.list_trials(run_id)}
    assert trials == {"a": (0, 0.5), "b": (1, 0.9), "c": (2, 0.7)}  # b updated in place


def test_an_error_while_writing_rolls_everything_back(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ok.csv"
    path.write_text(HEADER + "a,completed,0.5,10,0.01,32\n")
    from core.store import csv_import

    def fail(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(csv_import, "_insert_many", fail)
    with pytest.raises(OSError, match="disk full"):
        import_csv_as_run(store, path)
    _nothing_stored(store)


def _big_csv(path: Path, rows: int) -> None:
    with path.open("w") as fh:
        fh.write(HEADER)
        for i in range(rows):
            fh.write(f"t{i},completed,0.{i % 9973:04d},{i % 900},0.0{i % 9 + 1},{32 << i % 3}\n")


def test_a_kill_while_writing_leaves_no_run_and_no_rows(home: Path, tmp_path: Path) -> None:
    """SIGKILL the importing process while its one transaction is being written (the WAL
    grows): the store then holds no study, no queued run and no trial."""
    path = tmp_path / "big.csv"
    _big_csv(path, 60_000)
    db = home / "cloudtune.db"
    Store().dispose()  # the file exists, in WAL mode, with its schema
    wal = Path(f"{db}-wal")
    assert not wal.exists() or wal.stat().st_size < 1 << 20
    proc = subprocess.Popen(
        [sys.executable, "-m", "core", "import", str(path)],
        cwd=ROOT,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            with contextlib.suppress(FileNotFoundError):  # the WAL goes when the import ends
                if wal.stat().st_size > 2 << 20:  # mid-write: the transaction's pages spill
                    break
            time.sleep(0.005)
        assert proc.poll() is None, "the import ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    store = Store()
    try:
        _nothing_stored(store)
        assert store.list_runs(statuses=["queued", "running"]) == []
    finally:
        store.dispose()
    # and the same file then imports whole
    assert main(["import", str(path)]) == 0
    store = Store()
    try:
        [run] = store.list_runs()
        assert run.status == "completed" and store.count_trials(run.id) == {"completed": 60_000}
    finally:
        store.dispose()


def test_read_checks_without_a_store(tmp_path: Path) -> None:
    path = tmp_path / "ok.csv"
    path.write_text("id,value,extra\nx,0.5,1,unexpected\ny,0.6\n")  # long and short rows
    read = read_trials_csv(path)
    assert list(read.trials) == ["x", "y"]
    assert read.report.summary() == "2 rows, 2 trials"
