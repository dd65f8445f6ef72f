"""The Dataset page's New dataset tab, driven by Streamlit's AppTest as a browser would."""

from __future__ import annotations

import os

import pytest
from builders import image_bytes
from pagetest import navigation_only, open_page  # noqa: F401  (an autouse fixture)
from streamlit.testing.v1 import AppTest

from catdog import policy as hosting
from catdog.data import demo
from catdog.data.datasets import scan_dataset
from catdog.data.paths import datasets_dir, demo_dataset_dir


@pytest.fixture(autouse=True)
def small_demo() -> None:
    """A small demo dataset already drawn, so the Browse tab does not draw one."""
    demo.generate_demo_dataset(demo_dataset_dir(), counts=(4, 2, 2))


def uploads(kind: int, n: int, prefix: str) -> list[tuple[str, bytes, str]]:
    return [(f"{prefix}{i}.jpg", image_bytes(kind, seed=50 * kind + i), "image/jpeg")
            for i in range(n)]  # fmt: skip


def uploader(at: AppTest, k: int):
    """The k-th class's uploader (its key changes each time it is emptied)."""
    return [u for u in at.file_uploader if (u.key or "").startswith("builder_upload_")][k]


def class_ids(at: AppTest) -> list[int]:
    return [e["id"] for e in at.session_state["builder_classes"]]


def test_photos_by_upload_and_camera_make_a_dataset_that_becomes_active() -> None:
    at = open_page("dataset")
    first, second = class_ids(at)
    uploader(at, 0).set_value([*uploads(0, 4, "cat"), ("notes.jpg", b"hello", "image/jpeg")])
    at.run()
    assert any(w.value.startswith("class 1/notes\\.jpg is not an image") for w in at.warning)
    uploader(at, 1).set_value(uploads(1, 4, "dog")).run()
    at.toggle(key=f"builder_camera_on_{second}").set_value(True).run()
    camera = next(c for c in at.camera_input if c.key.startswith(f"builder_camera_{second}_"))
    camera.set_value(("shot.jpg", image_bytes(1, seed=99), "image/jpeg")).run()
    assert len(at.session_state["builder_photos"][second]) == 5
    # A wrong photo is removed from its thumbnail.
    wrong = at.session_state["builder_photos"][first][0]["pid"]
    at.button(key=f"builder_remove_{wrong}").click().run()
    at.text_input(key=f"builder_class_{first}").set_value("cats")
    at.text_input(key=f"builder_class_{second}").set_value("dogs")
    at.text_input(key="builder_name").set_value("pets").run()
    split = next(m.value for m in at.markdown if m.value.startswith("**Split**"))
    assert "3 cats\\: 1 train, 1 validation, 1 test" in split
    assert "5 dogs\\: 3 train, 1 validation, 1 test" in split
    at.button(key="builder_create").click().run()
    assert not at.exception, [e.value for e in at.exception]
    info = scan_dataset(datasets_dir() / "pets")
    assert info.classes == ("cats", "dogs") and info.total == 8
    assert any(p.name == "camera-5.jpg" for p in info.root.rglob("*.jpg"))
    assert at.session_state["dataset"] == str(info.root)  # the active dataset now
    assert any(s.value.startswith("Made dataset pets from 8 photo") for s in at.success)


def test_three_classes_added_renamed_and_one_removed() -> None:
    at = open_page("dataset")
    at.button(key="builder_add_class").click().run()
    at.button(key="builder_add_class").click().run()
    assert len(class_ids(at)) == 4
    at.button(key=f"builder_drop_{class_ids(at)[3]}").click().run()
    ids = class_ids(at)
    for k, (name, cid) in enumerate(zip(("cats", "dogs", "owls"), ids, strict=True)):
        uploader(at, k).set_value(uploads(k, 3, name)).run()
        at.text_input(key=f"builder_class_{cid}").set_value("cats" if k == 2 else name)
    at.run()
    assert any("two classes are called 'cats'" in e.value for e in at.error)
    assert at.button(key="builder_create").disabled
    at.text_input(key=f"builder_class_{ids[2]}").set_value("owls").run()
    at.button(key="builder_create").click().run()
    created = at.session_state["dataset"]
    assert scan_dataset(created).classes == ("cats", "dogs", "owls")


def test_photos_added_to_the_active_dataset_make_a_new_version() -> None:
    at = open_page("dataset")
    for k in range(2):
        uploader(at, k).set_value(uploads(k, 3, f"c{k}_")).run()
    at.button(key="builder_create").click().run()
    made = at.session_state["dataset"]
    at.radio(key="builder_for").set_value(made).run()
    assert [e["name"] for e in at.session_state["builder_classes"]] == ["class 1", "class 2"]
    uploader(at, 0).set_value(uploads(0, 2, "more")).run()
    assert at.radio(key="builder_how").options == [
        f"As a new version ({os.path.basename(made)}-v2); {os.path.basename(made)} stays as it is",
        f"Into {os.path.basename(made)} itself (only adds files)",
    ]
    at.button(key="builder_add").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["dataset"] == made + "-v2"
    assert scan_dataset(made).total == 6 and scan_dataset(made + "-v2").total == 8


def test_hosted_mode_refuses_photos_past_the_dataset_cap(monkeypatch) -> None:
    monkeypatch.setenv(hosting.ENV_VAR, "1")
    monkeypatch.setenv("CATDOG_HOSTED_MAX_DATASET_IMAGES", "3")
    at = open_page("dataset")
    uploader(at, 0).set_value(uploads(0, 4, "cat")).run()
    assert len(at.session_state["builder_photos"][class_ids(at)[0]]) == 3
    assert any("a dataset of 4 images is over hosted mode's cap of 3" in w.value.replace("\\", "")
               for w in at.warning)  # fmt: skip
    assert any(c.value.startswith("Hosted demo: a .zip") for c in at.caption)
