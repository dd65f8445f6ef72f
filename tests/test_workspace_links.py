"""Workspace links in hosted mode: issued by the server only, capped per hour, and a read-only
share link that opens the same workspace without the power to change it (library and pages)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_dataset
from pagetest import ROOT, open_page
from test_hosting import (  # noqa: F401 - fixtures
    A,
    _error_details_restored,
    example_run,
    hosted_mode,
    tiny_config,
)
from test_pages import _zip_of, texts

from catdog.data.choices import import_named
from catdog.data.datasets import delete_dataset
from catdog.data.paths import (
    data_home,
    datasets_dir,
    in_workspace,
    shared_datasets_dir,
    workspaces_dir,
)
from catdog.data.workspace_links import (
    SECRET_FILE,
    IssueLimiter,
    TooManyWorkspacesError,
    WorkspaceLinkError,
    link_for,
    open_link,
    server_secret,
)
from catdog.inference.export import export_run
from catdog.jobs import manager
from catdog.policy import HostedLimitError, read_only_access
from catdog.train import runs
from catdog.train.runs import delete_run, runs_training_on
from ui.frame import FORGED_LINK, READ_ONLY_NOTE


def test_links_open_their_workspace_and_nothing_made_up_does() -> None:
    full, viewing = link_for(A), link_for(A, read_only=True)
    assert full != viewing and full[:22] == viewing[:22] == A and len(full) == 44
    assert open_link(full).token == A and not open_link(full).read_only
    assert open_link(viewing).token == A and open_link(viewing).read_only
    altered = full[:-1] + ("A" if full[-1] != "A" else "B")
    swapped = "B" * 22 + full[22:]  # another workspace with this one's signature
    other_secret = link_for(A, secret=b"x" * 32)
    for forged in (A, "a" * 44, altered, swapped, other_secret, "../" * 15, "", None, 7):
        with pytest.raises(WorkspaceLinkError, match="not made by this server"):
            open_link(forged)


def test_the_secret_is_made_once_private_even_by_processes_starting_together() -> None:
    code = "from catdog.data.workspace_links import server_secret; print(server_secret().hex())"
    starts = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, text=True,
                               stdout=subprocess.PIPE) for _ in range(3)]  # fmt: skip
    secrets = {p.communicate(timeout=60)[0].strip() for p in starts}
    path = data_home() / SECRET_FILE
    assert secrets == {path.read_bytes().hex()} and len(path.read_bytes()) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in data_home().iterdir() if "secret" in p.name] == [SECRET_FILE]
    os.chmod(path, 0o644)  # loosened by hand: made private again when read
    assert server_secret(data_home()).hex() in secrets
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_new_workspaces_are_capped_per_hour() -> None:
    limiter = IssueLimiter()
    made = {open_link(limiter.issue(3, now=t)).token for t in (0.0, 10.0, 20.0)}
    assert len(made) == 3
    with pytest.raises(TooManyWorkspacesError, match=r"made its 3 new workspaces for this hour; "
                       r"please come back in about 60 minute\(s\)"):  # fmt: skip
        limiter.issue(3, now=30.0)
    assert open_link(limiter.issue(3, now=3601.0))  # the first one left the window


@pytest.mark.usefixtures("hosted_mode")
def test_a_forged_link_gets_a_new_workspace_and_one_sentence() -> None:
    forged = A + "x" * 22
    at = open_page(query={"ws": forged})
    link = at.query_params["ws"]
    assert link != forged and open_link(link).token != A
    assert [w.value for w in at.warning] == [FORGED_LINK]
    assert not (workspaces_dir() / A).exists()
    at.run()
    assert not at.warning and at.query_params["ws"] == link  # said once


@pytest.mark.usefixtures("hosted_mode")
def test_the_server_stops_making_workspaces_at_its_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CATDOG_HOSTED_NEW_WORKSPACES_PER_HOUR", "2")
    first, second = open_page(), open_page()
    assert first.query_params["ws"] != second.query_params["ws"]
    third = open_page()
    assert "made its 2 new workspaces for this hour" in third.error[0].value
    assert "ws" not in third.query_params and len(list(workspaces_dir().iterdir())) == 2
    again = open_page(query={"ws": first.query_params["ws"]})  # a link given still opens
    assert again.query_params["ws"] == first.query_params["ws"] and not again.error


@pytest.mark.usefixtures("hosted_mode")
def test_home_says_the_link_gives_full_control_and_offers_a_read_only_one() -> None:
    at = open_page()
    token = open_link(at.query_params["ws"]).token
    assert "gives **full control** of it" in texts(at)
    links = [c.value for c in at.caption if c.value.startswith("Read-only link")]
    assert links == ["Read-only link to this workspace (sees everything, changes nothing): "
                     f"`?ws={link_for(token, read_only=True)}`"]  # fmt: skip
    viewer = open_page(query={"ws": link_for(token, read_only=True)})
    assert READ_ONLY_NOTE in texts(viewer)
    assert not [c for c in viewer.caption if c.value.startswith("Read-only link")]


@pytest.mark.usefixtures("hosted_mode")
def test_a_read_only_link_changes_nothing_in_the_library(tiny_dataset: Path) -> None:
    with in_workspace(A):
        mine = make_dataset(datasets_dir() / "mine", counts=(2, 1, 1))
        run = runs.create_run(tiny_config(mine))
        runs.write_status(run, "stopped")
    refused = "is refused: this link only lets you look"
    with in_workspace(A), read_only_access():
        attempts = {
            "import": lambda: import_named(("pets.zip", _zip_of(tiny_dataset)), "pets"),
            "new run": lambda: runs.create_run(tiny_config(mine)),
            "train": lambda: manager().start(tiny_config(mine)),
            "resume": lambda: manager().start(resume_run=run.name),
            "delete run": lambda: delete_run(run.name),
            "delete dataset": lambda: delete_dataset(mine, runs_training_on),
            "export": lambda: export_run(run.name, "keras"),
        }
        for what, attempt in attempts.items():
            with pytest.raises(HostedLimitError, match=refused):
                attempt()
                pytest.fail(f"{what} was allowed")
        assert [r.id for r in runs.list_runs()] == [run.name]  # it still sees everything
    assert sorted(p.name for p in (workspaces_dir() / A / "datasets").iterdir()) == ["mine"]
    assert sorted(p.name for p in (workspaces_dir() / A / "runs").iterdir()) == [run.name]


@pytest.mark.slow
@pytest.mark.usefixtures("hosted_mode")
def test_pages_offer_no_change_with_a_read_only_link() -> None:
    example_run(make_dataset(shared_datasets_dir() / "pets", counts=(2, 1, 1)))
    with in_workspace(A):
        mine = make_dataset(datasets_dir() / "mine", counts=(2, 1, 1))
        runs.write_status(runs.create_run(tiny_config(mine)), "stopped")
    query = {"ws": link_for(A, read_only=True), "data": "mine"}
    train = open_page("train", query)
    assert READ_ONLY_NOTE in texts(train) and not [b for b in train.button]
    dataset = open_page("dataset", query)
    assert not dataset.tabs and not [b for b in dataset.button if "Delete" in b.label]
    assert any(o.startswith("mine — ") for o in dataset.radio[0].options)
    history = open_page("history", query)
    keys = {b.key for b in history.button}
    assert not keys & {"history_delete", "history_export", "history_resume"}
    assert len(history.selectbox(key="history_run").options) == 2
