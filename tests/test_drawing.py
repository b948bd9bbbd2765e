"""The helper process that draws a run's PNGs: same files as drawing here, never missing."""

from __future__ import annotations

import pytest

from dlrun.errors import DlrunError
from dlrun.outputs import drawing
from dlrun.outputs.plots import plot_curves

ROWS = [
    {"epoch": e, "train_loss": 1 / e, "test_loss": 1.2 / e, "train_acc": 0.5, "test_acc": 0.4}
    for e in (1, 2, 3)
]


@pytest.fixture(autouse=True)
def fresh_helper():
    drawing.wait()
    yield
    drawing.wait()


def test_the_helper_draws_the_same_png_as_this_process(tmp_path):
    drawing.draw(drawing.CURVES, tmp_path / "helper.png", rows=ROWS, title="t", log_loss=False)
    drawing.wait()
    assert drawing._helper is not None and drawing._helper.process.poll() is None
    plot_curves(ROWS, tmp_path / "here.png", "t", False)
    assert (tmp_path / "helper.png").read_bytes() == (tmp_path / "here.png").read_bytes()


def test_drawings_a_killed_helper_had_not_confirmed_are_drawn_here(tmp_path):
    drawing.start()
    drawing._helper.process.kill()
    drawing._helper.process.wait()
    drawing.draw(drawing.CURVES, tmp_path / "a.png", rows=ROWS, title="", log_loss=False)
    drawing.draw(drawing.CURVES, tmp_path / "b.png", rows=ROWS, title="", log_loss=True)
    drawing.wait()
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "b.png").read_bytes()[:4] == b"\x89PNG"


def test_a_helper_that_cannot_start_leaves_the_drawing_to_this_process(tmp_path, monkeypatch):
    drawing.wait()
    if drawing._helper is not None:
        drawing._helper.stop()
        drawing._helper = None
    monkeypatch.setattr(drawing.sys, "executable", str(tmp_path / "no-such-python"))
    drawing.draw(drawing.CURVES, tmp_path / "c.png", rows=ROWS, title="", log_loss=False)
    assert drawing._helper is None
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"  # drawn before draw() returned


def test_a_drawing_that_fails_is_reported_by_wait_with_the_file(tmp_path):
    (tmp_path / "curves.png").mkdir()  # a folder where the PNG should go
    drawing.draw(drawing.CURVES, tmp_path / "curves.png", rows=ROWS, title="", log_loss=False)
    drawing.draw(drawing.CURVES, tmp_path / "fine.png", rows=ROWS, title="", log_loss=False)
    with pytest.raises(DlrunError, match=r"Could not draw curves\.png .*dlrun-report"):
        drawing.wait()
    assert (tmp_path / "fine.png").is_file()  # the other drawings went on
    drawing.wait()  # reported once
