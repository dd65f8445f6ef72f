"""Hostile files, round two: work bombs, model and weights files, links and special files
where catdog writes or locks, and what messages show. Driven in-process through the real CLI
(``catdog.cli.main``) and the library calls behind the dashboard's uploads.

Each refusal must be one line, with no traceback, no raw ``[Errno N]`` and nothing a name
brought (terminal escapes) shown raw; nothing outside the intended place is written.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import subprocess
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from builders import image_bytes, tree_digest, write
from hostile import MODEL_FILES, REAL_WORK, WEIGHTS_FILES, WORK_BOMBS, ModelFile
from pagetest import navigation_only  # noqa: F401 - a fixture: pages run through app.py

from catdog.cli import main
from catdog.data.images import ImageError, image_header, open_rgb
from catdog.data.names import shown
from catdog.data.paths import runs_dir
from catdog.safe_files import FileProblem, os_words
from catdog.train import runs


def one_line_error(err: str) -> str:
    """The one error line of a command's stderr (progress bars may precede it)."""
    assert "Traceback" not in err and "[Errno" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err
    assert shown(lines[0]) == lines[0], lines[0]
    return lines[0]


# ---------------------------------------------------------------- decoding bounded by work


@pytest.mark.parametrize("name", list(WORK_BOMBS))
def test_a_work_bomb_is_refused_from_its_structure(name: str) -> None:
    build, reason = WORK_BOMBS[name]
    data = build()
    started = time.perf_counter()
    for read in (lambda: open_rgb(data, name), lambda: image_header(data, name)):
        with pytest.raises(ImageError) as caught:
            read()
        assert re.search(reason, str(caught.value)), str(caught.value)
        assert str(caught.value).startswith(f"{name} ")
    assert time.perf_counter() - started < 5


@pytest.mark.parametrize("name", list(REAL_WORK))
def test_what_real_photos_ask_for_is_never_refused(name: str) -> None:
    assert open_rgb(REAL_WORK[name](), name).size[0] >= 1


# ---------------------------------------------------------------- model files in a run


@pytest.fixture(scope="module")
def good_model(trained: tuple[Path, Path]) -> bytes:
    return (trained[1] / runs.BEST_MODEL).read_bytes()


@pytest.fixture
def hostile_run(trained: tuple[Path, Path]) -> Callable[[ModelFile, bytes], str]:
    """Copy the session's trained run into this test's data home with hostile model files
    (both best.keras and last.keras); its state "failed" with epochs left, so it may resume."""

    def make(case: ModelFile, good: bytes) -> str:
        source = trained[1]
        run = runs_dir() / f"hostile-{case.id}"
        shutil.copytree(source, run, ignore=shutil.ignore_patterns("*.keras", "train.lock"))
        for name in (runs.BEST_MODEL, runs.LAST_MODEL):
            case.build(run / name, good)
        runs.update_config(run, train={**runs.read_object(run / runs.CONFIG_FILE)["train"],
                                       "epochs": 2})  # fmt: skip
        runs.write_status(run, "failed", epochs_done=1)
        return run.name

    return make


COMMANDS = {
    "predict": lambda run, photo: ["predict", run, str(photo)],
    "evaluate": lambda run, photo: ["evaluate", run],
    "export": lambda run, photo: ["export", run],
    "resume": lambda run, photo: ["train", "--resume", run, "--precision", "float32"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("case", MODEL_FILES, ids=[c.id for c in MODEL_FILES])
def test_a_hostile_model_file_is_refused_in_one_line(
    case: ModelFile, command: str, hostile_run, good_model: bytes, tmp_path: Path, capsys
) -> None:
    run = hostile_run(case, good_model)
    photo = write(tmp_path / "whiskers.jpg", image_bytes(0))
    started = time.perf_counter()
    code = main(COMMANDS[command](run, photo))
    out, err = capsys.readouterr()
    assert code != 0 and out.strip() in ("", run), (out, err)
    error = one_line_error(err)
    assert re.search(case.message, error), error
    assert time.perf_counter() - started < 30  # no gigabytes allocated, nothing blocked
    assert not list((runs_dir() / run).glob("exports/*"))  # nothing half-exported


# ---------------------------------------------------------------- weights files


@pytest.mark.parametrize("case", WEIGHTS_FILES, ids=[c.id for c in WEIGHTS_FILES])
def test_a_hostile_weights_file_is_refused_by_train(
    case: ModelFile, tiny_dataset: Path, tmp_path: Path, capsys
) -> None:
    weights = tmp_path / "base.weights.h5"
    case.build(weights, b"")
    code = main(["train", "--data", str(tiny_dataset), "--model", "mobilenet-v3-small",
                 "--weights", str(weights), "--epochs", "1"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 2 and out == "", err
    assert re.search(case.message, one_line_error(err)), err
    assert list(runs_dir().glob("*")) == []  # no run folder made


UPLOADS = [case for case in WEIGHTS_FILES if case.upload]


@pytest.mark.parametrize("case", UPLOADS, ids=[c.id for c in UPLOADS])
def test_a_hostile_weights_upload_is_refused_and_not_kept(case: ModelFile, tmp_path: Path) -> None:
    """The Train page's weights upload (catdog.model.weights.save_uploaded_weights)."""
    from catdog.data.paths import weights_dir
    from catdog.model.errors import ModelError
    from catdog.model.weights import save_uploaded_weights

    case.build(tmp_path / "upload", b"")
    with pytest.raises(ModelError) as caught:
        save_uploaded_weights("mobilenet-v3-small", "base.weights.h5",
                              (tmp_path / "upload").read_bytes())  # fmt: skip
    assert re.search(case.message, str(caught.value)), str(caught.value)
    assert "\n" not in str(caught.value)
    assert [p.name for p in weights_dir().glob("*") if p.is_file()] == []


# ---------------------------------------------------------------- links and special files


def test_a_link_planted_as_a_heatmap_is_never_written_through(
    trained: tuple[Path, Path], tmp_path: Path, capsys
) -> None:
    run = runs_dir() / "heat"
    shutil.copytree(trained[1], run)
    photo = write(tmp_path / "photo.jpg", image_bytes(0))
    maps, outside = tmp_path / "maps", tmp_path / "outside"
    maps.mkdir()
    outside.mkdir()
    (outside / "precious.png").write_bytes(b"mine")
    (maps / "photo.heatmap.png").symlink_to(outside / "precious.png")
    (maps / "photo.heatmap-2.png").symlink_to(outside / "new.png")  # dangling
    assert main(["predict", "heat", str(photo), "--heatmaps", str(maps)]) == 0
    out = capsys.readouterr().out
    assert out.strip().endswith(f"heatmap {maps / 'photo.heatmap-3.png'}")
    assert (outside / "precious.png").read_bytes() == b"mine"
    assert sorted(p.name for p in outside.iterdir()) == ["precious.png"]
    assert [p.name for p in maps.iterdir() if p.name.startswith(".")] == []  # no temporary left


@pytest.mark.parametrize("kind", ["link", "fifo", "folder"])
def test_a_lock_file_that_is_no_file_refuses_training_without_blocking(
    kind: str, tmp_path: Path
) -> None:
    run = runs_dir() / "locked"
    run.mkdir(parents=True)
    target = tmp_path / "elsewhere"
    lock = run / "train.lock"
    {"link": lambda: lock.symlink_to(target), "fifo": lambda: os.mkfifo(lock),
     "folder": lambda: lock.mkdir()}[kind]()  # fmt: skip
    done: list[BaseException] = []
    worker = threading.Thread(target=lambda: done.append(_raises(runs.RunLock.acquire, run)))
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "acquiring the lock blocked"
    [error] = done
    assert isinstance(error, runs.RunError), error
    what = {"link": "is a symbolic link; catdog never follows links, remove it",
            "fifo": "is a named pipe (FIFO), not a regular file; remove it",
            "folder": "cannot be read"}[kind]  # fmt: skip
    assert str(error).startswith("cannot lock run locked for training")
    assert kind == "folder" or what in str(error), str(error)
    assert not target.exists()
    assert runs.lock_taken(run) is None  # a listing neither blocks nor follows it


def _raises(action: Callable[..., object], *args: object) -> BaseException | None:
    try:
        action(*args)
    except BaseException as exc:  # handed to the test thread
        return exc
    return None


def test_a_link_planted_as_a_run_file_is_replaced_not_followed(tmp_path: Path) -> None:
    run = runs_dir() / "linked"
    run.mkdir(parents=True)
    outside = tmp_path / "outside.json"
    outside.write_text("{}")
    (run / runs.STATUS_FILE).symlink_to(outside)
    runs.write_status(run, "failed")
    assert outside.read_text() == "{}"
    assert not (run / runs.STATUS_FILE).is_symlink()


def test_an_export_never_writes_through_a_link_at_its_target(
    trained: tuple[Path, Path], tmp_path: Path, capsys
) -> None:
    run = runs_dir() / "exp"
    shutil.copytree(trained[1], run)
    target = tmp_path / "model.keras"
    target.symlink_to(tmp_path / "outside.keras")  # dangling: exists() says False
    assert main(["export", "exp", "--out", str(target)]) == 2
    assert "already exists; choose another --out" in one_line_error(capsys.readouterr().err)
    assert not (tmp_path / "outside.keras").exists()


# ---------------------------------------------------------------- messages


ESCAPE = "\x1b[2J\x1b[31m"


@pytest.mark.parametrize(
    "argv",
    [
        ["import", f"/nowhere/{ESCAPE}photos.zip"],
        ["import", f"/nowhere/{ESCAPE}photos", "--out", "x"],
        ["evaluate", f"{ESCAPE}run"],
        ["predict", f"{ESCAPE}run", "a.jpg"],
        ["train", "--data", f"/nowhere/{ESCAPE}data"],
        ["train", "--resume", f"{ESCAPE}run"],
        ["export", f"{ESCAPE}run"],
    ],
    ids=["import-zip", "import-folder", "evaluate", "predict", "train", "resume", "export"],
)
def test_names_with_terminal_escapes_are_shown_escaped(argv: list[str], capsys) -> None:
    assert main(argv) == 2
    error = one_line_error(capsys.readouterr().err)
    assert "\x1b" not in error and "\\x1b[2J" in error, error


def test_a_missing_or_special_photo_is_named_for_what_it_is(
    trained: tuple[Path, Path], tmp_path: Path, capsys
) -> None:
    run = runs_dir() / "said"
    shutil.copytree(trained[1], run)
    good = write(tmp_path / "good.jpg", image_bytes(0))
    fifo, empty, folder = tmp_path / "pipe.jpg", tmp_path / "empty.jpg", tmp_path / "dir.jpg"
    os.mkfifo(fifo)
    empty.write_bytes(b"")
    folder.mkdir()
    paths = [good, fifo, empty, folder, tmp_path / f"{ESCAPE}gone.jpg"]
    assert main(["predict", "said", *map(str, paths)]) == 1
    out, err = capsys.readouterr()
    assert out.startswith(f"{good}: ")  # the good photo is classified all the same
    assert "Traceback" not in err and "[Errno" not in err and "\x1b" not in err
    said = err.splitlines()
    assert "pipe.jpg is a named pipe (FIFO), not a regular file" in said[0]
    assert "empty.jpg is not an image: it is empty (0 bytes)" in said[1]
    assert "dir.jpg is a folder, not an image file" in said[2]
    assert "\\x1b[2J\\x1b[31mgone.jpg could not be read (it does not exist)" in said[3]


@pytest.mark.parametrize(
    ("code", "words"),
    [(errno.ENOSPC, "the disk is full"), (errno.EACCES, "permission denied"),
     (errno.EROFS, "the disk is read-only"), (errno.EISDIR, "it is a folder"),
     (errno.ENOENT, "it does not exist"), (errno.ELOOP, "it is a symbolic link")],
)  # fmt: skip
def test_operating_system_errors_are_said_in_words(code: int, words: str) -> None:
    exc = OSError(code, os.strerror(code), "/some/file")
    assert os_words(exc).startswith(words)
    assert os_words(FileProblem("x.jpg", "is empty (0 bytes)")) == "it is empty (0 bytes)"


def test_evaluate_matches_class_folders_in_any_unicode_form(
    trained: tuple[Path, Path], tmp_path: Path, capsys
) -> None:
    """A run whose classes are Kätzchen and Hunde (composed), evaluated on folders written in
    decomposed form (as macOS writes them): one class each, not "missing X; unexpected X"."""
    run = runs_dir() / "umlaut"
    shutil.copytree(trained[1], run)
    runs.update_config(run, classes=["Hunde", "Kätzchen"])
    for k, name in enumerate(["Hunde", unicodedata.normalize("NFD", "Kätzchen")]):
        for i in range(2):
            write(tmp_path / "eval" / name / f"{i}.jpg", image_bytes(1 - k, seed=i))
    assert main(["evaluate", "umlaut", "--data", str(tmp_path / "eval"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["count"] == 4 and report["classes"] == ["Hunde", "Kätzchen"]


def test_import_never_targets_the_datasets_folder_or_a_dataset(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    from conftest import make_dataset

    from catdog.data.paths import data_home, datasets_dir

    existing = make_dataset(datasets_dir() / "pets", counts=(3, 1, 1), size=32)
    source = make_dataset(tmp_path / "src", counts=(3, 1, 1), size=32)
    before = tree_digest(data_home())
    for out in (datasets_dir(), data_home(), existing / "train", existing / "new"):
        assert main(["import", str(source), "--out", str(out)]) == 2
        error = one_line_error(capsys.readouterr().err)
        assert "folder that holds all datasets" in error or "inside the dataset pets" in error
    monkeypatch.chdir(existing / "train")  # `import ..` from inside a dataset: out is that dataset
    assert main(["import", ".."]) == 2
    one_line_error(capsys.readouterr().err)
    assert tree_digest(data_home()) == before


# ---------------------------------------------------------------- the dashboard's uploads


DASHBOARD_ZIPS = ["overlapping-entries", "declared-total-vs-size", "case-twin-folders",
                  "nested-zip"]  # fmt: skip


@pytest.mark.slow
@pytest.mark.usefixtures("navigation_only")
def test_the_dataset_page_refuses_hostile_zips_in_one_sentence(tmp_path: Path) -> None:
    """The Dataset page's zip upload: each hostile archive refused (or its entry skipped)
    with the archive's own sentence, no exception, nothing imported but what is good."""
    from hostile import ARCHIVES, P
    from pagetest import open_page

    from catdog.data.paths import datasets_dir

    at = open_page("dataset")
    for k, case in enumerate(a for a in ARCHIVES if a.id in DASHBOARD_ZIPS):
        data = case.build(tmp_path / f"{k}-{P}").read_bytes()
        at.file_uploader[0].set_value((P, data, "application/zip")).run()
        at.text_input[0].set_value(f"upload-{k}").run()
        next(b for b in at.button if b.label == "Import").click().run()
        assert not at.exception, [e.value for e in at.exception]
        said = [e.value for e in at.error] + [c.value for c in at.code]
        expected = case.message if isinstance(case.message, str) else case.message.pattern
        literal = re.escape(expected) if isinstance(case.message, str) else expected
        assert any(re.search(literal, text) for text in said), (case.id, said)
        assert all("catdog-upload-" not in text for text in said)  # no staging path shown
        imported = (datasets_dir() / f"upload-{k}").exists()
        assert imported == (case.skipped is not None), case.id


@pytest.mark.slow
@pytest.mark.usefixtures("navigation_only")
def test_the_train_page_refuses_hostile_weights_uploads(tmp_path: Path) -> None:
    from pagetest import open_page

    from catdog.data import demo
    from catdog.data.paths import demo_dataset_dir, weights_dir

    demo.generate_demo_dataset(demo_dataset_dir(), counts=(4, 2, 2))
    at = open_page("train")
    at.selectbox(key="train_model").set_value("mobilenet-v3-small").run()
    at.radio(key="train_weights_source").set_value("upload").run()
    for case in (c for c in WEIGHTS_FILES if c.upload and c.id != "empty"):
        case.build(tmp_path / case.id, b"")
        upload = ("base.weights.h5", (tmp_path / case.id).read_bytes(), "application/x-hdf5")
        at.file_uploader(key="train_weights_upload").set_value(upload).run()
        assert not at.exception, [e.value for e in at.exception]
        (error,) = [e.value for e in at.error]
        assert re.search(case.message, error), (case.id, error)
        assert "\n" not in error
    assert not [p for p in weights_dir().iterdir() if p.is_file()]  # nothing refused is kept


# ---------------------------------------------------------------- full and read-only disks


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A folder a test mounts a tmpfs on (tests/test_full_disk.py's mount_tmpfs); unmounted
    after the test."""
    folder = tmp_path / "disk"
    yield folder
    if os.path.ismount(folder):
        subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.slow
def test_predictions_come_before_heatmaps_on_a_full_disk(
    trained: tuple[Path, Path], tmp_path: Path, small_disk: Path, capsys
) -> None:
    """Heatmaps are extras: on a full disk the predictions are all printed, then one line
    about the heatmaps, and no partial PNG (nor a temporary file) is left."""
    from builders import encode, noise_rgb
    from test_full_disk import mount_tmpfs

    run = runs_dir() / "full"
    shutil.copytree(trained[1], run)
    photos = [write(tmp_path / f"big{i}.png", encode(noise_rgb(300, 300, seed=i), "PNG"))
              for i in range(2)]  # fmt: skip
    mount_tmpfs(small_disk, "64k")  # a heatmap of a 300-px photo is ~270 kB
    code = main(["predict", "full", *map(str, photos), "--heatmaps", str(small_disk / "maps")])
    out, err = capsys.readouterr()
    assert code == 1
    assert [line.split(":")[0] for line in out.splitlines()] == [str(p) for p in photos]
    assert one_line_error(err) == (
        f"error: heatmaps not written into {small_disk / 'maps'} (the disk is full); the "
        "predictions above are complete"
    )
    assert list((small_disk / "maps").iterdir()) == []


@pytest.mark.slow
def test_an_export_onto_a_full_disk_says_so_and_leaves_nothing(
    trained: tuple[Path, Path], small_disk: Path, capsys
) -> None:
    from test_full_disk import mount_tmpfs

    run = runs_dir() / "full-export"
    shutil.copytree(trained[1], run)
    mount_tmpfs(small_disk, "256k")  # the model takes megabytes
    for fmt in ("keras", "tflite"):
        out = small_disk / f"model.{'keras' if fmt == 'keras' else 'tflite'}"
        assert main(["export", "full-export", "--format", fmt, "--out", str(out)]) == 2
        error = one_line_error(capsys.readouterr().err)
        assert error == (f"error: the disk holding {small_disk} is full: nothing was exported and "
                         "nothing is left behind; free some space and export again")  # fmt: skip
        assert list(small_disk.iterdir()) == []


@pytest.mark.slow
def test_a_read_only_data_home_still_predicts_and_refuses_writes_in_words(
    trained: tuple[Path, Path], tmp_path: Path, small_disk: Path, capsys, monkeypatch
) -> None:
    from conftest import make_dataset
    from test_full_disk import mount_tmpfs

    mount_tmpfs(small_disk, "64m")
    shutil.copytree(trained[1], small_disk / "runs" / "ro")
    runs.update_config(small_disk / "runs" / "ro", train={
        **runs.read_object(trained[1] / runs.CONFIG_FILE)["train"], "epochs": 2})  # fmt: skip
    runs.write_status(small_disk / "runs" / "ro", "failed", epochs_done=1)
    (small_disk / "datasets").mkdir()
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    monkeypatch.setenv("CATDOG_HOME", str(small_disk))
    photo = write(tmp_path / "cat.jpg", image_bytes(0))
    assert main(["predict", "ro", str(photo)]) == 0  # reading needs no write
    assert capsys.readouterr().out.startswith(f"{photo}: ")
    source = make_dataset(tmp_path / "src", counts=(3, 1, 1), size=32)
    for argv in (["import", str(source)], ["train", "--resume", "ro"]):
        assert main(argv) != 0
        error = one_line_error(capsys.readouterr().err)
        assert "read-only" in error, error
