"""Spectrogram images: pixels that mean something, stored incrementally, drawn on request."""

import numpy as np
import pytest
from click.testing import CliRunner

from cli import main
from sercap.corpora.ingest import ingest
from sercap.errors import SercapError
from sercap.features.extract import extract
from sercap.features.featureset import get_feature_set
from sercap.features.images import (
    decode_png,
    encode_png,
    logmel_db,
    spectrogram_image,
    to_uint8,
)
from sercap.features.lld import n_frames
from sercap.store.views import stored_image
from tests.helpers import GOOD, make_corpus

SR = 16000
PARAMS = dict(get_feature_set("mel").params)


def tone(freq: float, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_width_is_proportional_to_duration() -> None:
    for seconds in (0.3, 1.0, 2.5):
        image = spectrogram_image(tone(440, seconds), PARAMS)
        assert image.shape == (64, n_frames(int(seconds * SR), PARAMS))
        assert image.dtype == np.uint8


def test_a_low_tone_is_bright_at_the_bottom_and_a_high_one_at_the_top() -> None:
    low = spectrogram_image(tone(150, 0.5), PARAMS).mean(axis=1)
    high = spectrogram_image(tone(6000, 0.5), PARAMS).mean(axis=1)
    assert np.argmax(low) > 50  # row 63 is the lowest band
    assert np.argmax(high) < 14


def test_levels_are_absolute_and_clipped() -> None:
    loud = spectrogram_image(tone(440, 0.5, 0.5), PARAMS)
    quiet = spectrogram_image(tone(440, 0.5, 0.05), PARAMS)
    assert loud.max() - quiet.max() == pytest.approx(20 / 90 * 255, abs=3)  # 20 dB apart
    silence = spectrogram_image(np.zeros(SR // 2, np.float32), PARAMS)
    assert silence.max() == 0
    db = np.array([[-200.0, -90.0, -45.0, 0.0, 10.0]]).T
    assert to_uint8(db, -90, 0)[::-1, 0].tolist() == [0, 0, 128, 255, 255]


def test_png_round_trip() -> None:
    image = spectrogram_image(tone(300, 0.4), PARAMS)
    assert np.array_equal(decode_png(encode_png(image)), image)
    with pytest.raises(ValueError):
        encode_png(image.astype(np.float32))


def test_logmel_matches_the_lld_logmel_family() -> None:
    db = logmel_db(tone(300, 0.4), PARAMS)
    assert db.shape[0] == 64 and np.isfinite(db).all()


def test_images_are_stored_incrementally(tmp_path) -> None:
    from sercap.store import connect

    manifest = make_corpus(tmp_path / "corpus")
    with connect(tmp_path / "wh") as wh:
        ingest(wh, "manifest", manifest, name="toy")
        first = extract(wh, "mel", progress=False)
        assert first.done == GOOD + 1 and first.failed == 3
        assert extract(wh, "mel", progress=False).done == 0
        rows = wh.query("SELECT i.utt_id, height, width, n_frames, png FROM images i "
                        "JOIN extractions e USING (utt_id) WHERE e.feature_set_hash = "
                        f"'{get_feature_set('mel').hash}'")  # fmt: skip
        assert rows.height == GOOD + 1
        for row in rows.iter_rows(named=True):
            pixels = decode_png(row["png"])
            assert pixels.shape == (row["height"], row["width"]) == (64, row["n_frames"])
        image = stored_image(wh, "good3")
        assert image.pixels.shape == (64, image.width)
        with pytest.raises(SercapError, match="no 'mel' image for utterance 'silent'"):
            stored_image(wh, "silent")
        # The API's drawing refuses the warehouse's own folders, as `images show --out` does:
        # a PNG among the parts was deleted as a crash's leftover by the next extract.
        import sercap

        inside = wh.root / "features" / "good3.png"
        with pytest.raises(SercapError, match="in the warehouse's features/ folder"):
            sercap.plot_image(image, inside)
        assert not inside.exists()
        with pytest.raises(SercapError, match="name a .png file"):
            sercap.plot_image(image, tmp_path / "good3.jpg")
        assert sercap.plot_image(image, tmp_path / "good3.png").stat().st_size > 5000


def test_cli_images_and_show(tmp_path) -> None:
    manifest = make_corpus(tmp_path / "corpus")
    runner = CliRunner()
    w = ["-w", str(tmp_path / "wh")]
    runner.invoke(main, [*w, "ingest", "manifest", str(manifest)])
    missing = runner.invoke(main, [*w, "images", "show", "good1"])
    assert missing.exit_code == 1
    assert "run `sercap images` / `sercap.images(wh)` first" in missing.output
    result = runner.invoke(main, [*w, "images", "--jobs", "1"])
    assert result.exit_code == 0, result.output
    assert f"mel ({get_feature_set('mel').hash}): {GOOD + 1} extracted" in result.output
    out = tmp_path / "good1.png"
    shown = runner.invoke(main, [*w, "images", "show", "good1", "--out", str(out)])
    assert shown.exit_code == 0, shown.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000
    raw = tmp_path / "raw.png"
    runner.invoke(main, [*w, "images", "show", "good1", "--raw", "--out", str(raw)])
    assert decode_png(raw.read_bytes()).shape[0] == 64
