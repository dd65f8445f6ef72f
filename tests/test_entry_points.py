"""Every entry point that takes user files, on every case of the hostile corpus.

The corpus (tests/hostile.py) × the entry points: folder import and zip import
(:func:`catdog.data.importer.import_dataset`, and ``python -m catdog import`` in a process of its
own for a handful of cases), the Predict page's upload, ``python -m catdog predict RUN
FILES...``, ``python -m catdog evaluate RUN --data DIR`` and, for degenerate datasets,
``python -m catdog train``. Each combination asserts the case's own message, that the good
files beside it are still used, that no traceback reaches the user and that every message
stays on one line, and that the datasets and runs already in the data home are unchanged byte
for byte (but for what the command makes: the imported dataset, the trained run). Bombs must
also be dealt with in bounded time and memory.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import time
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from builders import tree_digest, write
from conftest import make_dataset
from hostile import (
    CORPUS,
    EVALUATE,
    FOLDER,
    GOOD_PER_CLASS,
    KEPT,
    PAGE,
    PREDICT,
    REFUSED,
    SKIPPED,
    TRAIN,
    WARNED,
    ZIP,
    Case,
    Expect,
    cases_for,
    photo,
    place,
    source,
    zipped,
)
from pagetest import ROOT, NavigationOnly, literal, navigation_only, open_page  # noqa: F401 - a fixture
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1 import app_test as app_test_module

from catdog.cli import main
from catdog.data import archive as archive_module
from catdog.data.datasets import DatasetError
from catdog.data.importer import ImportReport, import_dataset
from catdog.data.names import portable_name, shown
from catdog.data.paths import datasets_dir

pytestmark = pytest.mark.slow  # the hostile corpus through every entry point: minutes

GOOD_FILES = 2 * GOOD_PER_CLASS  # good photos in a case's source
BOMB_SECONDS = 20  # a bomb is refused within this (model loading included)
BOMB_MEGABYTES = 150  # and the process grows by less than this (a bomb needs gigabytes)


def ids(cases: list[Case]) -> list[str]:
    """Test ids: the cases' own."""
    return [case.id for case in cases]


@dataclass(frozen=True)
class Home:
    """The data home every test of this module shares: a dataset and one tiny trained run."""

    path: Path
    run_id: str


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    from catdog.inference.predict import learn_trust
    from catdog.train.config import TrainConfig
    from catdog.train.trainer import train

    path = tmp_path_factory.mktemp("entry_points_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CATDOG_HOME", str(path))
        data = make_dataset(datasets_dir() / "pets", counts=(8, 4, 4), size=32)
        config = TrainConfig(
            data=str(data), epochs=1, batch_size=8, image_size=48, precision="float32"
        )
        run_id = train(config).run_id
        learn_trust(run_id)  # as the job and the CLI do when training ends
        return Home(path, run_id)


@pytest.fixture
def home(shared_home: Home, monkeypatch: pytest.MonkeyPatch) -> Home:
    monkeypatch.setenv("CATDOG_HOME", str(shared_home.path))
    return shared_home


def home_digest(home: Home, *made: str) -> dict[str, str]:
    """SHA-256 of every file of the data home's datasets and runs, but for ``made``
    (``"datasets/NAME"`` or ``"runs/ID"``: what the command under test creates)."""
    digest = {}
    for part in ("datasets", "runs"):
        for rel, sha in tree_digest(home.path / part).items():
            top = f"{part}/{rel.split('/')[0]}"
            if top not in made:
                digest[f"{part}/{rel}"] = sha
    return digest


def leftovers(home: Home) -> list[str]:
    """Hidden work folders an import left in the datasets folder."""
    return [p.name for p in (home.path / "datasets").iterdir() if p.name.startswith(".")]


def max_rss_mb() -> float:
    """The most memory this process has held, in MB (Linux counts in KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def bounded(case: Case) -> Iterator[None]:
    """For a bomb, assert the block took bounded time and memory."""
    before, start = max_rss_mb(), time.perf_counter()
    yield
    if case.bomb:
        seconds, grown = time.perf_counter() - start, max_rss_mb() - before
        assert seconds < BOMB_SECONDS, f"took {seconds:.1f} s"
        assert grown < BOMB_MEGABYTES, f"the process grew by {grown:.0f} MB"


def one_line(text: str) -> None:
    """A message for people: one line, nothing hidden in it, no traceback."""
    assert "\n" not in text.strip(), text
    assert "Traceback" not in text
    assert shown(text) == text, f"control or invisible characters in {text!r}"


def check_lines(output: str) -> None:
    """Every line of an output is an honest line (see :func:`one_line`)."""
    assert "Traceback" not in output
    for line in output.splitlines():
        one_line(line)


def check_named(case: Case, expect: Expect, messages: list[str]) -> None:
    """Each file of the case has its own message matching the expectation, naming it."""
    for name in case.names:
        mine = [m for m in messages if not expect.named or shown(name) in m]
        assert any(re.search(expect.pattern, m) for m in mine), (name, messages)


def slug(case: Case) -> str:
    """A folder name made of the case's id."""
    return re.sub(r"[^a-z0-9]+", "-", case.id.lower()).strip("-")


def source_files(root: Path) -> int:
    """Visible regular files under a whole-source case's folder."""
    return sum(
        1
        for p in root.rglob("*")
        if p.is_file() and not p.is_symlink() and not p.name.startswith(".")
    )


# ---------------------------------------------------------------------------------------------
# Folder and zip import


def check_portable(dataset: Path) -> None:
    """Every name the import wrote is one every disk stores and shows as that name, and no
    two in a folder are the same name to a disk that ignores case or normalization."""
    for folder in [dataset, *(p for p in dataset.rglob("*") if p.is_dir())]:
        names = [p.name for p in folder.iterdir()]
        for path in folder.iterdir():
            stem, suffix = (path.stem, path.suffix) if path.is_file() else (path.name, "")
            assert portable_name(stem, suffix) == path.name, path.name
        folded = {unicodedata.normalize("NFC", name).casefold() for name in names}
        assert len(folded) == len(names), names


def check_report(case: Case, expect: Expect, report: ImportReport, good: int) -> None:
    """An import that went through: the ``good`` files in, the case's files kept, skipped or
    warned about."""
    reasons = [s.reason for s in report.skipped]
    check_lines(report.summary())
    check_portable(report.out)
    if expect.outcome == KEPT:
        assert reasons == [] and report.warnings == []
        assert report.total == good + len(case.files)
    elif expect.outcome == SKIPPED:
        if case.names:
            check_named(case, expect, reasons)
        else:
            assert any(re.search(expect.pattern, r) for r in reasons), reasons
        assert report.total == good
    else:
        assert expect.outcome == WARNED
        assert any(re.search(expect.pattern, w) for w in report.warnings), report.warnings
        assert re.search(expect.pattern, report.summary())
        assert report.total == good + len(case.files)


def check_import(case: Case, entry: str, given: Path, good: int, home: Home, monkeypatch) -> None:
    """Import ``given`` into the data home and check what happened against the case."""
    expect = case.expect[entry]
    out = datasets_dir() / f"{entry}-{slug(case)}"
    before = home_digest(home)
    if case.limits is not None:
        monkeypatch.setattr(archive_module, "ExtractLimits", lambda: case.limits)
    with bounded(case):
        if expect.outcome == REFUSED:
            with pytest.raises(DatasetError) as caught:
                import_dataset(given, out)
            one_line(str(caught.value))
            assert re.search(expect.pattern, str(caught.value)), str(caught.value)
            assert not out.exists()
        else:
            check_report(case, expect, import_dataset(given, out), good)
    assert home_digest(home, f"datasets/{out.name}") == before
    assert leftovers(home) == []


def good_files(case: Case, root: Path) -> int:
    """The good photos in the case's source folder (its own files not counted)."""
    return source_files(root) if case.tree is not None else GOOD_FILES


@pytest.mark.parametrize("case", cases_for(FOLDER), ids=ids(cases_for(FOLDER)))
def test_folder_import(case: Case, home: Home, tmp_path: Path, monkeypatch) -> None:
    root = source(case, tmp_path / "source")
    check_import(case, FOLDER, root, good_files(case, root), home, monkeypatch)


@pytest.mark.parametrize("case", cases_for(ZIP), ids=ids(cases_for(ZIP)))
def test_zip_import(case: Case, home: Home, tmp_path: Path, monkeypatch) -> None:
    archive = zipped(case, tmp_path)
    good = 6 if case.group == "archive" else good_files(case, tmp_path / "source")
    check_import(case, ZIP, archive, good, home, monkeypatch)


COMMAND_CASES = [(case, entry) for case in CORPUS if case.cli for entry in (FOLDER, ZIP)
                 if entry in case.expect]  # fmt: skip


@pytest.mark.parametrize(
    "case, entry", COMMAND_CASES, ids=[f"{c.id}-{e}" for c, e in COMMAND_CASES]
)
def test_import_command(case: Case, entry: str, home: Home, tmp_path: Path) -> None:
    """`python -m catdog import` in its own process: one line for an error, no traceback."""
    given = source(case, tmp_path / "source") if entry == FOLDER else zipped(case, tmp_path)
    out = datasets_dir() / f"cli-{slug(case)}-{entry}"
    before = home_digest(home)
    command = [sys.executable, "-m", "catdog", "import", "--out", str(out), "--", str(given)]
    done = subprocess.run(command, capture_output=True, cwd=ROOT, timeout=300)
    stdout, stderr = done.stdout.decode(), done.stderr.decode()  # UTF-8, or this raises
    expect = case.expect[entry]
    check_lines(stdout)
    assert "Traceback" not in stderr
    if expect.outcome == REFUSED:
        assert done.returncode == 2 and stdout == ""
        *bars, error = stderr.splitlines()  # finished progress bars, then the error
        assert all(bar.startswith("[") for bar in bars), stderr
        assert error.startswith("error: ")
        one_line(error)
        assert re.search(expect.pattern, error), error
    else:
        assert done.returncode == 0, stderr
        assert re.search(expect.pattern, stdout), stdout
    assert home_digest(home, f"datasets/{out.name}") == before
    assert leftovers(home) == []


# ---------------------------------------------------------------------------------------------
# The Predict page


def uploaded(case: Case) -> list[tuple[str, bytes, str]]:
    """A good photo and the case's files, as the page's uploader receives them."""
    files = [(name, data) for name, data in case.files if isinstance(data, bytes)]
    assert len(files) == len(case.files), "only bytes can be uploaded"
    return [(n, d, "application/octet-stream") for n, d in [("whiskers.jpg", photo(5)), *files]]


@pytest.fixture(scope="module")
def predict_page(shared_home: Home) -> Iterator[AppTest]:
    """One browser session on the Predict page, kept for every case (each case uploads anew,
    as a visitor replacing their photos would): opening the app per case costs seconds."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CATDOG_HOME", str(shared_home.path))
        mp.setattr(app_test_module, "PagesManager", NavigationOnly)  # as navigation_only does
        yield open_page("predict")


@pytest.mark.parametrize("case", cases_for(PAGE), ids=ids(cases_for(PAGE)))
def test_predict_page(case: Case, home: Home, predict_page: AppTest) -> None:
    before = home_digest(home)
    at = predict_page
    with bounded(case):
        at.file_uploader[0].set_value(uploaded(case)).run()
    assert not at.exception, [e.value for e in at.exception]
    warnings = [literal(w.value) for w in at.warning]
    cards = [m.value.split(" — ", 1) for m in at.markdown if " — " in m.value]
    cards = [f"{label} — {literal(name)}" for label, name in cards]  # the label is bold
    expect = case.expect[PAGE]
    for text in warnings + cards:
        one_line(text)
    if expect.outcome == KEPT:
        assert warnings == []
        assert [card.split(" — ", 1)[1] for card in cards] == [
            "whiskers.jpg", *(shown(n) for n in case.names)
        ]  # fmt: skip
    else:
        assert expect.outcome == SKIPPED
        assert len(warnings) == len(case.names)
        check_named(case, expect, warnings)
        assert [card.split(" — ", 1)[1] for card in cards] == ["whiskers.jpg"]
    assert len(at.progress) == 2 * len(cards)  # a bar per class on every card
    assert home_digest(home) == before


# ---------------------------------------------------------------------------------------------
# python -m catdog predict / evaluate / train


@pytest.mark.parametrize("case", cases_for(PREDICT), ids=ids(cases_for(PREDICT)))
def test_predict_command(case: Case, home: Home, tmp_path: Path, capsys) -> None:
    good = write(tmp_path / "files" / "whiskers.jpg", photo(5))
    paths = place(case, tmp_path / "files")
    before = home_digest(home)
    with bounded(case):
        code = main(["predict", home.run_id, "--", str(good), *map(str, paths)])
    out, err = capsys.readouterr()
    check_lines(out)
    check_lines(err)
    lines = out.splitlines()
    expect = case.expect[PREDICT]
    if expect.outcome == KEPT:
        assert code == 0 and err == ""
        named = [line.split(": ", 1)[0] for line in lines]
        assert named == [str(good), *(shown(str(path)) for path in paths)]
    else:
        assert expect.outcome == SKIPPED
        assert code == 1 and [line.split(": ", 1)[0] for line in lines] == [str(good)]
        errors = err.splitlines()
        assert len(errors) == len(paths) and all(e.startswith("error: ") for e in errors)
        check_named(case, expect, errors)
    assert home_digest(home) == before


def evaluated(out: str) -> int:
    """The number of images an evaluation summary counted."""
    found = re.search(r"^Accuracy [\d.]+% \(\d+/(\d+) images\)$", out, re.MULTILINE)
    assert found, out
    return int(found.group(1))


@pytest.mark.parametrize("case", cases_for(EVALUATE), ids=ids(cases_for(EVALUATE)))
def test_evaluate_command(case: Case, home: Home, tmp_path: Path, capsys) -> None:
    folder = source(case, tmp_path / "eval")
    before = home_digest(home)
    with bounded(case):
        code = main(["evaluate", home.run_id, "--data", str(folder)])
    out, err = capsys.readouterr()
    check_lines(out)
    check_lines(err)
    expect = case.expect[EVALUATE]
    if expect.outcome == REFUSED:
        assert code == 2 and out == "" and err.startswith("error: ") and err.count("\n") == 1
        assert re.search(expect.pattern, err), err
    elif expect.outcome == KEPT:
        assert code == 0 and "Skipped" not in out
        assert evaluated(out) == good_files(case, folder) + len(case.files)
    elif expect.outcome == SKIPPED:
        assert code == 0 and evaluated(out) == GOOD_FILES
        skipped = out.split(f"Skipped {len(case.names)} unreadable file(s):\n", 1)[1]
        check_named(case, expect, skipped.splitlines())
    else:
        assert code == 0 and re.search(expect.pattern, out), out
    assert home_digest(home) == before


@pytest.mark.slow
@pytest.mark.parametrize("case", cases_for(TRAIN), ids=ids(cases_for(TRAIN)))
def test_train_command(case: Case, home: Home, tmp_path: Path, capsys) -> None:
    data = source(case, tmp_path / "data")
    before_runs = set(os.listdir(home.path / "runs"))
    before = home_digest(home)
    code = main(["train", "--data", str(data), "--epochs", "1", "--image-size", "48",
                 "--batch-size", "8", "--precision", "float32"])  # fmt: skip
    out, err = capsys.readouterr()
    check_lines(err)
    expect = case.expect[TRAIN]
    made = set(os.listdir(home.path / "runs")) - before_runs
    if expect.outcome == REFUSED:
        assert code == 2 and out == "" and err.startswith("error: ") and err.count("\n") == 1
        assert re.search(expect.pattern, err), err
        assert made == set()
    else:
        assert expect.outcome == WARNED
        assert code == 0, err
        warning = [line for line in err.splitlines() if line.startswith("warning: ")]
        assert any(re.search(expect.pattern, line) for line in warning), err
        assert out.strip() in made
    assert home_digest(home, *(f"runs/{run}" for run in made)) == before
