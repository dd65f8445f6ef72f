"""Hosted mode's policy and the bounds it holds in the library: disk, decode pixels, CPU slots,
the training queue, exports, precision, run ids and messages.

Every bound is exercised through a library entry point a visitor reaches (import, create_run,
the job manager, export, training), with real files and real zips built here: highly
compressible large-pixel images, archives of many entries, uploads near the quota.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import make_dataset
from PIL import Image
from test_hosting import A, B, example_run, tiny_config

import catdog.policy as hosted_policy
from catdog import workspaces
from catdog.data import images
from catdog.data.choices import import_named
from catdog.data.datasets import DatasetError, delete_dataset
from catdog.data.paths import (
    datasets_dir,
    in_workspace,
    runs_dir,
    shared_runs_dir,
    workspace_dir,
)
from catdog.jobs import JobManager
from catdog.policy import HostedLimitError, current_policy, read_only_access
from catdog.train import runs
from catdog.train.runs.lock import LOCK_FILE, lock_taken

C, D = "C" * 21 + "c", "D" * 21 + "d"


@pytest.fixture
def hosted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hosted mode on, with its default limits."""
    monkeypatch.setenv(hosted_policy.ENV_VAR, "1")
    for name in list(os.environ):
        if name.startswith(hosted_policy.ENV_PREFIX):
            monkeypatch.delenv(name)


def _jpeg(seed: int, size: int = 40) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _pets(count: int = 6, **extra: bytes) -> dict[str, bytes]:
    """A small honest dataset (cats and dogs folders of noisy JPEGs) plus ``extra`` entries."""
    photos = {f"pets/{c}/{c[:-1]}.{i}.jpg": _jpeg(i + 100 * k, size=64)
              for k, c in enumerate(("cats", "dogs")) for i in range(count)}  # fmt: skip
    return photos | {f"pets/cats/{name}": data for name, data in extra.items()}


def _flat_png(side: int) -> bytes:
    """A one-colour PNG of side × side pixels: megapixels that compress to a few kB."""
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (200, 120, 40)).save(buffer, "PNG", optimize=False)
    return buffer.getvalue()


def _nothing_left(token: str) -> None:
    """The workspace holds no dataset and no import work folder."""
    folder = workspace_dir(token) / "datasets"
    assert not folder.exists() or list(folder.iterdir()) == []


# ------------------------------------------------------------------------- the policy


def test_the_local_policy_has_no_caps_and_refuses_nothing(tmp_path: Path) -> None:
    policy = current_policy({})
    assert not policy.hosted
    assert (policy.max_upload_mb, policy.max_upload_bytes, policy.quota_bytes) == (None,) * 3
    assert (policy.strategies, policy.precisions, policy.max_trainings) == (None,) * 3
    assert policy.allows_server_files and policy.describe() == []
    assert policy.precision_for("auto") == ("auto", None)
    policy.check_upload(10**12, "huge.zip")
    policy.check_export_target(tmp_path / "anywhere.keras")
    with policy.job_slot("import"), policy.job_slot("import"):
        pass  # no slots locally


def test_the_hosted_policy_offers_its_caps(hosted, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CATDOG_HOSTED_MAX_UPLOAD_MB", "0.5")
    policy = current_policy()
    assert policy.hosted and not policy.allows_server_files
    assert policy.max_upload_mb == 1  # a widget takes whole megabytes, at least 1
    assert policy.max_upload_bytes == 512 * 1024  # what the library enforces
    assert policy.strategies == ("auto", "one") and policy.precisions == ("float32",)
    assert policy.precision_for("bfloat16")[0] == "float32"
    assert policy.capped_settings({"precision": "auto", "epochs": 99}) == {
        "precision": "float32",
        "epochs": 30,
    }


def test_no_message_a_visitor_sees_names_a_server_folder(hosted) -> None:
    with in_workspace(A):
        one_class = make_dataset(datasets_dir() / "single", classes=("cats",), counts=(2, 1, 1))
        with pytest.raises(DatasetError) as refused:
            runs.create_run(tiny_config(one_class))
        assert str(refused.value).startswith("datasets/single is not a dataset: train/ has 1")
        from catdog.inference.evaluate import EvaluationError, evaluate_run

        data = make_dataset(datasets_dir() / "photos", counts=(2, 1, 1))
        run = runs.create_run(tiny_config(data))
        shutil.rmtree(data / "test")
        with pytest.raises(EvaluationError, match=r"^the run's dataset datasets/photos has no"):
            evaluate_run(run.name)
        shown = current_policy().shown(f"failed in {one_class}/train and {shared_runs_dir()}/x")
        assert shown == "failed in datasets/single/train and runs/x"


def test_run_ids_carry_64_random_bits() -> None:
    ids = {runs.new_run_id("seed-baseline") for _ in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(r"\d{8}-\d{6}-seed-baseline-[0-9a-f]{16}", i) for i in ids)


def test_a_read_only_visitor_changes_nothing(hosted) -> None:
    archive = _zip(_pets(4))
    with in_workspace(A), read_only_access():
        with pytest.raises(HostedLimitError, match="importing pets is refused: this link only"):
            import_named(("pets.zip", archive), "pets")
        data = make_dataset(datasets_dir() / "mine", counts=(2, 1, 1))
        with pytest.raises(HostedLimitError, match="training seed-baseline is refused"):
            runs.create_run(tiny_config(data, model="seed-baseline"))
        with pytest.raises(HostedLimitError, match="deleting dataset mine is refused"):
            delete_dataset(data, runs.runs_training_on)
    assert not (workspace_dir(A) / "runs").exists() or not list(
        (workspace_dir(A) / "runs").iterdir()
    )


# -------------------------------------------------------------------------- imports


def test_a_zip_declaring_more_than_the_free_quota_is_refused_before_a_byte_is_written(
    hosted, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A 3 MB BMP of black and white pixels compresses ~20× (a ratio no bomb rule refuses):
    # the upload fits the quota, its expansion does not.
    bits = np.random.default_rng(0).integers(0, 2, (1000, 1000), dtype=np.uint8) * 255
    bmp = io.BytesIO()
    Image.fromarray(np.repeat(bits[..., None], 3, axis=2)).save(bmp, "BMP")
    archive = _zip(_pets(2, **{"big.bmp": bmp.getvalue()}))
    assert len(archive) < 300_000
    monkeypatch.setenv("CATDOG_HOSTED_WORKSPACE_QUOTA_MB", "1")
    with in_workspace(A):
        with pytest.raises(HostedLimitError, match=r"pets.zip would expand to 2.9 MB \(5 files\)"
                           r", more than the 1.0 MB this import may write"):  # fmt: skip
            import_named(("pets.zip", archive), "pets")
        _nothing_left(A)
        assert current_policy().workspace_usage() == 0


def test_an_import_stops_at_the_quota_while_it_stages_and_leaves_nothing(
    hosted, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = _zip(_pets(12))
    with in_workspace(A):
        (workspace_dir(A)).mkdir(parents=True)
        # Room for the extracted photos, not for staging them again as the dataset.
        quota = 1.5 * len(archive)
        monkeypatch.setenv("CATDOG_HOSTED_WORKSPACE_QUOTA_MB", str(quota / hosted_policy.MB))
        with pytest.raises(HostedLimitError, match=r"importing pets.zip stopped: it would take "
                           r"your workspace to 0.\d MB, over its quota"):  # fmt: skip
            import_named(("pets.zip", archive), "pets")
        _nothing_left(A)
        assert current_policy().workspace_usage() <= quota
        monkeypatch.setenv("CATDOG_HOSTED_WORKSPACE_QUOTA_MB", str(3 * quota / hosted_policy.MB))
        report, _ = import_named(("pets.zip", archive), "pets")  # with room: imported
        assert report.total == 24


def test_huge_pixel_images_are_skipped_from_their_headers_before_any_decode(hosted) -> None:
    # 49-megapixel PNGs of one colour: ~150 kB each in the zip, 147 MB each decoded.
    big = _flat_png(7000)
    archive = _zip(_pets(3, **{f"huge{i}.png": big for i in range(3)}))
    assert len(archive) < 1_000_000
    images._BUDGET.peak = 0
    with in_workspace(A):
        report, _ = import_named(("pets.zip", archive), "pets")
    assert report.total == 6  # the honest photos
    reasons = [s.reason for s in report.skipped]
    assert len(reasons) == 3  # each said once
    assert sum("decodes to 7,000×7,000 pixels (49.0 megapixels), over hosted mode's cap of 4 "
               "per photo" in r for r in reasons) == 3  # fmt: skip
    assert images._BUDGET.peak < 1_000_000  # only the 64-px photos were ever decoded


def test_a_class_whose_every_image_is_over_the_pixel_cap_is_named_and_nothing_is_left(
    hosted,
) -> None:
    # Every image of one class (or of all) refused from its header: one sentence naming the
    # class and why, not an import of what is left (or a crash on an empty dataset).
    big = _flat_png(3000)
    dogs_only = {f"pets/dogs/dog.{i}.jpg": _jpeg(i, size=64) for i in range(6)}
    for entries in (
        {f"pets/{c}/{c}{i}.png": big for c in ("cats", "dogs") for i in range(3)},
        dogs_only | {f"pets/cats/cat{i}.png": big for i in range(3)},
    ):
        with in_workspace(A), pytest.raises(DatasetError) as caught:
            import_named(("pets.zip", _zip(entries)), "pets")
        assert "none of the 3 image(s) of class cats can be used" in str(caught.value)
        assert "3,000×3,000 pixels (9.0 megapixels), over hosted mode's cap" in str(caught.value)
        _nothing_left(A)


def test_an_import_over_the_pixel_total_is_refused_before_decoding(
    hosted, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CATDOG_HOSTED_MAX_IMPORT_MEGAPIXELS", "3")
    archive = _zip(_pets(2, **{f"large{i}.png": _flat_png(1000) for i in range(4)}))
    images._BUDGET.peak = 0
    with in_workspace(A):
        with pytest.raises(HostedLimitError, match=r"pets.zip: its photos decode to 4 megapixels, "
                           r"over hosted mode's cap of 3 per import"):  # fmt: skip
            import_named(("pets.zip", archive), "pets")
        _nothing_left(A)
    assert images._BUDGET.peak == 0


def test_a_phone_sized_jpeg_is_decoded_reduced_in_hosted_mode(hosted) -> None:
    photo = io.BytesIO()
    Image.new("RGB", (4032, 3024), (10, 200, 30)).save(photo, "JPEG")  # 12 megapixels
    archive = _zip(_pets(4, **{"phone.jpg": photo.getvalue()}))
    images._BUDGET.peak = 0
    with in_workspace(A):
        report, _ = import_named(("pets.zip", archive), "pets")
    assert report.total == 9  # kept: it decodes to 504×378 at 1/8 scale
    assert images._BUDGET.peak < 1_000_000


def test_a_zip_of_too_many_entries_is_refused_before_extraction(
    hosted, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CATDOG_HOSTED_MAX_DATASET_IMAGES", "10")  # at most 2 × 10 + 1000 entries
    archive = _zip({f"pets/cats/{i}.jpg": b"" for i in range(1100)})
    with in_workspace(A), pytest.raises((DatasetError, HostedLimitError), match="1,100 entries"):
        import_named(("pets.zip", archive), "pets")
    _nothing_left(A)


def _importing(token: str, release: threading.Event, kind: str = "import") -> threading.Thread:
    """Another visitor's import (or ``kind``) in workspace ``token``: a thread holding its slot
    until ``release`` is set."""
    held = threading.Event()

    def hold() -> None:
        with in_workspace(token), current_policy().job_slot(kind):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert held.wait(10)
    return thread


def test_one_import_per_workspace_and_a_few_per_server(
    hosted, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CATDOG_HOSTED_MAX_IMPORTS", "2")
    archive = _zip(_pets(4))
    release = threading.Event()
    try:
        _importing(A, release)  # A is importing (in another tab)
        mine = "an import is already running in your workspace"
        with in_workspace(A), pytest.raises(HostedLimitError, match=mine):
            import_named(("pets.zip", archive), "pets")
        _importing(B, release)  # B too: the server's 2
        busy = r"the server is busy \(2 import\(s\) running, its limit\)"
        with in_workspace(C), pytest.raises(HostedLimitError, match=busy):
            import_named(("pets.zip", archive), "pets")
    finally:
        release.set()
    time.sleep(0.2)
    with in_workspace(C):
        assert import_named(("pets.zip", archive), "pets")[0].total == 8  # free again


# ----------------------------------------------------------------- the training queue


def _queueing_manager() -> JobManager:
    """A job manager whose every job waits (no training slot): the queue alone, no TF."""
    return JobManager(limit=0)


def _data(token: str) -> Path:
    with in_workspace(token):
        return make_dataset(datasets_dir() / "photos", counts=(2, 1, 1))


def _open_lock_files() -> list[str]:
    fds = Path("/proc/self/fd")
    found = []
    for fd in fds.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.endswith(LOCK_FILE):
            found.append(target)
    return found


def test_one_training_per_workspace_a_capped_queue_and_no_lock_held_while_waiting(
    hosted, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CATDOG_HOSTED_MAX_QUEUED_JOBS", "2")
    jobs = _queueing_manager()
    data = {token: _data(token) for token in (A, B, C)}
    with in_workspace(A):
        first = jobs.start(tiny_config(data[A]))
        assert first.queued and not lock_taken(first.path)
        assert _open_lock_files() == []  # a waiting job holds no file open
        assert runs.run_info(first.path).state == "queued"
        with pytest.raises(runs.RunError, match="is waiting in the training queue; cancel it"):
            runs.delete_run(first.run_id)
        with pytest.raises(HostedLimitError, match=f"your workspace already has a run waiting "
                           f"in the queue \\({first.run_id}\\)"):  # fmt: skip
            jobs.start(tiny_config(data[A]))
        assert len(list(runs_dir().iterdir())) == 1  # the refused one made no run
    with in_workspace(B):
        jobs.start(tiny_config(data[B]))
    with in_workspace(C):
        with pytest.raises(HostedLimitError, match=r"the server's training queue is full \(2 "
                           r"waiting\); try again in a few minutes"):  # fmt: skip
            jobs.start(tiny_config(data[C]))
        assert list(runs_dir().iterdir()) == []
    with in_workspace(A):
        assert jobs.cancel(first.run_id) and runs.run_info(first.path).state == "cancelled"


def test_queued_jobs_of_unvisited_workspaces_are_cancelled(
    hosted, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CATDOG_HOSTED_QUEUED_IDLE_MINUTES", "0.002")  # 0.12 s
    jobs = _queueing_manager()
    data = {token: _data(token) for token in (A, B, C)}
    started = {}
    for token in (A, B):
        with in_workspace(token):
            started[token] = jobs.start(tiny_config(data[token]))
    time.sleep(0.3)
    workspaces.touch_workspace(B)  # B's visitor is still there; A's left
    with in_workspace(C):
        jobs.start(tiny_config(data[C]))  # the queue is looked over
    assert not started[A].running and started[B].queued
    snap = started[A].snapshot()
    assert snap.state == "cancelled" and snap.reason.startswith("nobody visited its workspace")
    with in_workspace(A):
        assert runs.run_info(started[A].path).state == "cancelled"  # resumable later
        assert "nobody visited" in runs.read_json(started[A].path / runs.STATUS_FILE)["reason"]


def test_a_refused_resume_of_a_shared_example_touches_none_of_its_files(hosted) -> None:
    data = make_dataset(datasets_dir() / "photos", counts=(2, 1, 1))
    example = example_run(data)
    before = {p.name: p.stat().st_mtime_ns for p in example.iterdir()}
    refused = "is a shared example: it cannot be trained here"
    with in_workspace(A), pytest.raises(runs.RunError, match=refused):
        JobManager().start(resume_run=example.name)
    assert {p.name: p.stat().st_mtime_ns for p in example.iterdir()} == before
    assert not (example / LOCK_FILE).exists()


# ------------------------------------------------------------------ exports, precision


def test_export_refuses_a_target_outside_the_workspace(hosted, tmp_path: Path) -> None:
    from catdog.inference.export import default_target, export_run

    example = example_run(make_dataset(datasets_dir() / "photos", counts=(2, 1, 1)))
    with in_workspace(A):
        with pytest.raises(HostedLimitError, match="exports go into your workspace"):
            export_run(example.name, "keras", tmp_path / "out.keras")
        target = default_target(example, "keras", False)
        assert target.is_relative_to(workspace_dir(A))  # a shared run's export: the visitor's
    assert not (example / "exports").exists()


@pytest.mark.slow
def test_a_shared_examples_export_goes_to_the_visitors_workspace(
    trained: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from catdog.inference.export import export_run

    _, run_path = trained
    monkeypatch.setenv("CATDOG_HOME", str(run_path.parent.parent))  # the run is shared there
    monkeypatch.setenv(hosted_policy.ENV_VAR, "1")
    before = sorted(p.name for p in run_path.iterdir())
    with in_workspace(A):
        result = export_run(run_path.name, "keras")
        assert result.path.is_relative_to(workspace_dir(A)) and result.path.is_file()
        assert str(workspace_dir(A)) not in result.summary()
    assert sorted(p.name for p in run_path.iterdir()) == before


def test_hosted_mode_trains_in_float32_without_timing_anything(hosted, catdog_home) -> None:
    from catdog.train.precision import choose_precision

    before = sorted(p.name for p in catdog_home.iterdir())
    for asked in ("auto", "bfloat16"):
        choice = choose_precision("seed-baseline", 48, 8, asked)
        assert (choice.precision, choice.requested) == ("float32", asked)
        assert "hosted mode trains in float32 only" in choice.reason
    assert sorted(p.name for p in catdog_home.iterdir()) == before  # no timing cache written


# ------------------------------------------------------------------ quota during training


@pytest.mark.slow
def test_a_run_that_would_pass_the_quota_stops_before_saving_and_says_why(
    hosted, monkeypatch: pytest.MonkeyPatch
) -> None:
    from catdog.job_status import outcome_line

    monkeypatch.setenv("CATDOG_HOSTED_RUN_RESERVE_MB", "0.01")
    with in_workspace(A):
        data = make_dataset(datasets_dir() / "photos", counts=(8, 4, 4))
        quota = current_policy().workspace_usage() + 200_000  # less than one model
        monkeypatch.setenv("CATDOG_HOSTED_WORKSPACE_QUOTA_MB", str(quota / hosted_policy.MB))
        job = JobManager(limit=None).start(tiny_config(data, model="seed-baseline", epochs=2))
        assert job.join(300)
        snap = job.snapshot()
        assert (snap.state, snap.history) == ("stopped", [])
        line = outcome_line(snap)
        assert line.startswith(f"Run {job.run_id} stopped after 0 epoch(s): stopped before "
                               "saving epoch 1: your workspace holds")  # fmt: skip
        assert "over its quota" in line and str(workspace_dir(A)) not in line
        status = runs.read_json(job.path / runs.STATUS_FILE)
        assert status["reason"].startswith("stopped before saving epoch 1")
        assert current_policy().workspace_usage() <= quota
        assert not (job.path / runs.LAST_MODEL).exists()


def test_meters_of_one_workspace_share_its_room(hosted, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CATDOG_HOSTED_WORKSPACE_QUOTA_MB", "1")
    errors: list[Exception] = []
    with in_workspace(A):
        policy = current_policy()
        with policy.disk_meter("one") as first:
            first.add(700_000)
            with pytest.raises(HostedLimitError, match="two stopped"):

                def other() -> None:
                    with in_workspace(A), current_policy().disk_meter("two") as second:
                        second.add(700_000)

                worker = threading.Thread(target=lambda: _catch(other, errors))
                worker.start()
                worker.join()
                raise errors[0]
            with pytest.raises(HostedLimitError):
                policy.check_quota(500_000, "more")
        policy.check_quota(500_000, "more")  # the first meter's bytes were never written


def _catch(function, errors: list[Exception]) -> None:
    try:
        function()
    except Exception as exc:
        errors.append(exc)


@pytest.mark.slow  # the cache's writer loads TensorFlow
def test_the_servers_disk_cache_of_decoded_images_is_capped_in_hosted_mode(
    hosted, monkeypatch: pytest.MonkeyPatch, dataset_factory
) -> None:
    from catdog.data.datasets import labelled_images
    from catdog.train import shards

    def entry(data: Path) -> Path:
        folder = data / "train"
        paths, labels = labelled_images(folder, ["cats", "dogs"])
        split = shards.open_streamed(folder, paths, labels, ["cats", "dogs"], 32, shuffled=True)
        split.hold.release()
        return split.folder

    monkeypatch.setenv("CATDOG_HOSTED_MAX_CACHE_MB", "0.04")  # less than two entries (48 kB)
    first = entry(dataset_factory(seed=1))
    assert first.is_dir()
    second = entry(dataset_factory(seed=2))  # made room: the least recently used went
    assert second.is_dir() and not first.exists()
    monkeypatch.setenv(hosted_policy.ENV_VAR, "0")  # locally the disk decides
    third = entry(dataset_factory(seed=3))
    assert third.is_dir() and second.is_dir()


def test_one_audit_at_a_time_on_a_hosted_server(hosted) -> None:
    from catdog.data.health import AuditError, audit_dataset

    release = threading.Event()
    try:
        _importing(B, release, kind="audit")  # another visitor's audit
        with in_workspace(A):
            data = make_dataset(datasets_dir() / "photos", counts=(2, 1, 1))
            busy = r"the server is busy \(1 data audit\(s\) running, its limit\)"
            with pytest.raises(AuditError, match=busy):
                audit_dataset(data)
    finally:
        release.set()
