"""`cnnc run` leaves its pictures and report.html; drawing never costs a run its results."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from png_checks import assert_drawn, load_png
from viz_spec import VIZ_SPEC

from cnnc.cli import main

PICTURES = ("curves.png", "confusion.png", "mistakes.png", "filters.png")


class References(HTMLParser):
    """Every src and href in a page."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        self.found += [(tag, value) for name, value in attrs if name in ("src", "href")]


def references(page: str) -> list[tuple[str, str]]:
    parser = References()
    parser.feed(page)
    return parser.found


def _run(spec, data, out, *extra) -> int:
    return main(["run", str(spec), "--data", str(data), "--out", str(out), "--backend", "numpy",
                 "--progress", "off", *extra])


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, small_data):
    folder = tmp_path_factory.mktemp("run")
    spec = folder / "small.yaml"
    spec.write_text(VIZ_SPEC)
    out = folder / "run"
    assert _run(spec, small_data, out) == 0
    return out


def test_a_run_writes_its_pictures(finished_run):
    for name in PICTURES:
        pixels = load_png(finished_run / name)
        assert pixels.shape[0] > 200 and pixels.shape[1] > 400
        assert_drawn(pixels)


def test_the_report_references_only_files_that_exist(finished_run):
    page = (finished_run / "report.html").read_text()
    refs = references(page)
    assert {value for tag, value in refs if tag == "img"} == set(PICTURES)
    for tag, value in refs:
        assert not re.match(r"^[a-z]+:", value), f"{value}: the report must not fetch anything"
        assert (finished_run / value).is_file(), f"{value} is referenced but missing"
    assert "<script" not in page and "@import" not in page


def test_the_report_holds_summary_settings_and_per_class_scores(finished_run):
    page = (finished_run / "report.html").read_text()
    test = json.loads((finished_run / "test_metrics.json").read_text())
    assert f"Test accuracy <b>{test['accuracy']:.2%}</b>" in page
    assert "<th>training</th>" in page and "adam" in page  # the settings
    assert "Total params: " in page and "RF size" in page  # the summary, with the fields
    assert "<th class=num>precision</th><th class=num>recall</th>" in page
    for name in test["class_names"]:
        assert f"<td>{name}</td>" in page
    assert 'href="weights.safetensors"' in page


def test_a_picture_that_fails_is_left_out_and_the_run_succeeds(spec_file, small_data, tmp_path,
                                                                monkeypatch, capsys):
    import cnnc.viz.curves

    def broken(*args, **kwargs):
        raise RuntimeError("no ink")

    monkeypatch.setattr(cnnc.viz.curves, "curves_figure", broken)
    out = tmp_path / "run"
    assert _run(spec_file, small_data, out, "--epochs", "1") == 0
    _, err = capsys.readouterr()
    assert "cnnc: warning: a picture was not drawn: curves.png: RuntimeError: no ink" in err
    assert not (out / "curves.png").exists() and (out / "confusion.png").is_file()
    page = (out / "report.html").read_text()
    assert "Not drawn: RuntimeError: no ink" in page and 'src="curves.png"' not in page
    for name in ("weights.safetensors", "metrics.json", "test_metrics.json", "summary.txt"):
        assert (out / name).is_file()


def test_a_report_that_fails_keeps_the_results(spec_file, small_data, tmp_path, monkeypatch,
                                              capsys):
    import cnnc.viz.report

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(cnnc.viz.report, "write_report", broken)
    out = tmp_path / "run"
    assert _run(spec_file, small_data, out, "--epochs", "1") == 0
    _, err = capsys.readouterr()
    assert "cnnc: warning: the run's report was not written: OSError: disk full" in err
    assert not (out / "report.html").exists()
    assert json.loads((out / "test_metrics.json").read_text())["count"] == 40
    assert Path(out / "weights.safetensors").is_file()
