"""Prediction on every kind of file a user may drop, with a real tiny trained run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import striped_image
from PIL import Image

from catdog.inference.predict import Prediction, Predictor, centre_zoom, class_probabilities


@pytest.fixture(scope="module")
def predictor(trained: tuple[Path, Path]) -> Predictor:
    return Predictor.from_run(trained[1])


def _assert_predicted(prediction: Prediction, classes: list[str]) -> None:
    assert prediction.error is None, prediction.error
    assert list(prediction.probabilities) == classes
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0)
    assert all(0.0 <= p <= 1.0 for p in prediction.probabilities.values())
    assert prediction.label == max(prediction.probabilities, key=prediction.probabilities.get)


def test_from_run_knows_classes_size_and_id(
    trained: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, run = trained
    monkeypatch.setenv("CATDOG_HOME", str(run.parent.parent))
    predictor = Predictor.from_run(run.name[:-2])  # an id prefix
    assert predictor.classes == ["cats", "dogs"]
    assert predictor.image_size == 48
    assert predictor.run_id == run.name


def test_every_readable_format_is_predicted_and_bad_files_carry_errors(
    predictor: Predictor, tmp_path: Path
) -> None:
    rng = np.random.default_rng(1)
    rgb = striped_image(1, 48, rng)
    files: dict[str, Path] = {}

    def save(name: str, image: Image.Image, **kwargs) -> None:
        files[name] = tmp_path / name
        image.save(files[name], **kwargs)

    save("rgb.png", rgb)
    rgba = rgb.convert("RGBA")
    rgba.putalpha(128)
    save("rgba.png", rgba)
    save("grey.png", rgb.convert("L"))
    save("palette.gif", rgb.convert("P", palette=Image.Palette.ADAPTIVE))
    deep = np.asarray(rgb.convert("L"), dtype=np.uint16) * 257
    save("deep16.png", Image.fromarray(deep))
    save("huge.jpg", rgb.resize((4000, 3000), Image.Resampling.NEAREST), quality=80)
    assert Image.open(files["deep16.png"]).mode.startswith("I")
    assert Image.open(files["palette.gif"]).mode == "P"

    good = files["rgb.png"].read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(files["huge.jpg"].read_bytes()[:2000])
    (tmp_path / "notes.jpg").write_text("this is not a photo of a dog")
    (tmp_path / "empty.jpg").write_bytes(b"")
    bad = ["truncated.jpg", "notes.jpg", "empty.jpg"]

    sources = [
        *files.values(),
        *(str(tmp_path / name) for name in bad),
        good,
        ("upload.png", good),
    ]
    predictions = predictor.predict(sources)

    assert [p.file for p in predictions] == [
        *(str(path) for path in files.values()),
        *(str(tmp_path / name) for name in bad),
        "image-10",
        "upload.png",
    ]
    for prediction in predictions[: len(files)] + predictions[-2:]:
        _assert_predicted(prediction, predictor.classes)
    for name, prediction in zip(bad, predictions[len(files) : len(files) + 3], strict=True):
        assert prediction.label is None and prediction.probabilities == {}
        assert name in prediction.error and "\n" not in prediction.error
    assert "empty" in predictions[len(files) + 2].error
    # Bytes and a path of the same file give the same answer.
    assert predictions[-1].probabilities == pytest.approx(predictions[0].probabilities)
    assert predictions[-2].probabilities == pytest.approx(predictions[0].probabilities)


def test_prediction_matches_the_training_pipeline(
    trained: tuple[Path, Path], predictor: Predictor
) -> None:
    from catdog.model.pixels import scale_pixels
    from catdog.train.pipeline import load_split

    data, _ = trained
    split = load_split(data, "test", predictor.classes, predictor.image_size)
    expected = predictor.model.predict(scale_pixels(split.images), verbose=0)[:, 0]

    predictions = predictor.predict(split.paths, batch_size=3)

    got = np.array([p.uncalibrated["dogs"] for p in predictions])  # the model's own
    np.testing.assert_allclose(got, expected, atol=1e-5)
    shown = np.array([list(p.probabilities.values()) for p in predictions])  # calibrated
    np.testing.assert_allclose(shown[:, 1], predictor.trust.calibrate(np.c_[1 - got, got])[:, 1])


def test_heatmaps_come_with_each_readable_prediction(
    trained: tuple[Path, Path], predictor: Predictor, tmp_path: Path
) -> None:
    from catdog.inference.explain import grad_cam
    from catdog.model.pixels import scale_pixels
    from catdog.train.pipeline import load_split

    data, _ = trained
    split = load_split(data, "test", predictor.classes, predictor.image_size)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a photo")
    predictions = predictor.predict([*split.paths[:3], broken], batch_size=2, heatmaps=True)
    assert predictions[3].heatmap is None and predictions[3].error
    labels = [predictor.classes.index(p.label) for p in predictions[:3]]
    expected = grad_cam(predictor.model, scale_pixels(split.images[:3]), labels)
    got = np.stack([p.heatmap for p in predictions[:3]])  # the map of each one's own label
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert got.shape[1:] == (1, 1)  # the seed's convnet at 48 px ends on a 1×1 feature map
    assert predictor.predict(split.paths[:1])[0].heatmap is None  # only when asked for
    assert "heatmap" not in predictions[0].to_dict()


def test_test_time_views_are_averaged(predictor: Predictor) -> None:
    from catdog.model.pixels import scale_pixels

    images = (np.random.default_rng(1).random((3, 48, 48, 3)) * 255).astype("uint8")
    x = scale_pixels(images)
    one = lambda v: predictor.model.predict(v, verbose=0)[:, 0]  # noqa: E731
    zoomed = Predictor(predictor.model, predictor.classes, 48, tta=True, tta_zoom=1.1)
    expected = np.mean([one(x), one(x[:, :, ::-1]), one(centre_zoom(x, 1.1)),
                        one(centre_zoom(x[:, :, ::-1], 1.1))], axis=0)  # fmt: skip
    np.testing.assert_allclose(zoomed.probabilities(images)[:, 1], expected, atol=1e-5)
    # The four views of a mirrored image are the same four: the same prediction.
    np.testing.assert_allclose(
        zoomed.probabilities(images[:, :, ::-1]), zoomed.probabilities(images), atol=1e-5
    )
    mirror_only = Predictor(predictor.model, predictor.classes, 48, tta=True)
    np.testing.assert_allclose(
        mirror_only.probabilities(images)[:, 1], (one(x) + one(x[:, :, ::-1])) / 2, atol=1e-5
    )
    assert not np.allclose(zoomed.probabilities(images), mirror_only.probabilities(images))


def test_centre_zoom_crops_the_middle_and_keeps_the_size() -> None:
    image = np.zeros((1, 20, 20, 1), np.float32)
    image[:, 5:15, 5:15] = 1.0  # a centred bright square, half the side
    out = centre_zoom(image, 2.0)  # the middle 10×10, scaled back to 20×20: all bright
    assert out.shape == image.shape
    np.testing.assert_allclose(out, 1.0)
    np.testing.assert_array_equal(centre_zoom(image, 1.0), image)


def test_to_dict_shows_error_only_when_failed(predictor: Predictor, tmp_path: Path) -> None:
    photo = tmp_path / "a.jpg"
    striped_image(0, 40, np.random.default_rng(0)).save(photo)
    ok, failed = predictor.predict([photo, ("b.jpg", b"nope")])

    assert json.loads(json.dumps(ok.to_dict())) == {
        "file": str(photo),
        "label": ok.label,
        "probabilities": {c: round(v, 4) for c, v in ok.probabilities.items()},
        "answered": ok.answered,
        "calibrated": True,
        "score": round(ok.score, 6),
    }
    assert failed.to_dict() == {
        "file": "b.jpg",
        "label": None,
        "probabilities": {},
        "error": failed.error,
    }
    assert failed.error.startswith("b.jpg is not an image")


def test_an_error_names_the_file_on_one_line(predictor: Predictor) -> None:
    names = ["a\nb.jpg", "\x1b[31mred.jpg", "photo\u202egpj.png"]
    results = predictor.predict([(name, b"junk") for name in names])
    assert [r.file for r in results] == names  # the name as given, for the caller
    assert [r.error for r in results] == [
        f"{shown} is not an image (got 4 bytes of text)"
        for shown in ("a\\nb.jpg", "\\x1b[31mred.jpg", "photo\\u202egpj.png")
    ]  # the message: one line, nothing hidden


def test_unsupported_source_type_is_named(predictor: Predictor) -> None:
    with pytest.raises(TypeError, match="cannot predict on a int"):
        predictor.predict([42])


def test_class_probabilities_binary_and_softmax() -> None:
    binary = class_probabilities(np.array([[0.25], [0.9]], dtype=np.float32), 2)
    np.testing.assert_allclose(binary, [[0.75, 0.25], [0.1, 0.9]], atol=1e-7)
    softmax = np.array([[0.2, 0.3, 0.5]])
    np.testing.assert_allclose(class_probabilities(softmax, 3), softmax)
    with pytest.raises(ValueError, match=r"1 output unit.*3 classes"):
        class_probabilities(np.array([[0.5]]), 3)
