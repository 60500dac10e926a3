"""A `cnnc run` that its spec's early_stopping ends before the planned epochs says so wherever
the run is reported: summary.txt, run.json, report.html and the closing lines print the epochs
actually run and why training stopped, not the spec's epoch count."""

from __future__ import annotations

import csv
import json

import pytest
from training_spec import TINY_SPEC

from cnnc.cli import main

# min_delta 100: no epoch after the first improves the loss by that much, so with patience 1
# training stops after epoch 2 of 5 and the weights come back from epoch 1, whatever the data.
STOPPING = TINY_SPEC.replace("  epochs: 3\n", "  epochs: 5\n  early_stopping: {monitor: loss, "
                             "patience: 1, min_delta: 100, restore_best_weights: true}\n")


@pytest.fixture(autouse=True)
def no_pictures(monkeypatch):
    """The report's text is what these tests read; its pictures (tested in tests/viz) would
    cost most of their time."""
    monkeypatch.setattr("cnnc.viz.report.draw_pictures", lambda folder, report: [])


def test_an_early_stopped_run_reports_the_epochs_it_ran_and_why(tiny_data, tmp_path, capsys):
    spec = tmp_path / "stopping.yaml"
    spec.write_text(STOPPING)
    out = tmp_path / "run"
    assert main(["run", str(spec), "--data", str(tiny_data), "--out", str(out),
                 "--backend", "numpy", "--progress", "off", "--limit", "64"]) == 0
    printed = capsys.readouterr().out
    with open(out / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    first_loss = float(rows[0]["loss"])
    why = (f"after epoch 2 of 5 by early_stopping: loss had not improved for 1 epoch (best "
           f"{first_loss:.4f} at epoch 1; the weights are that epoch's)")
    assert f"stopped   {why}" in printed
    summary = (out / "summary.txt").read_text()
    assert summary.startswith("cnnc run: tiny (finished early: epoch 2 of 5, stopped by "
                              "early_stopping)\n")
    assert "training    2 of 5 epochs run, batch 16," in summary
    assert f"stopped     {why}\n" in summary
    assert "5 epochs," not in summary
    record = json.loads((out / "run.json").read_text())
    assert record["epochs_run"] == 2 and record["train"]["epochs"] == 5
    stop = record["stopped_early"]
    assert (stop["by"], stop["epochs_run"], stop["epochs_planned"], stop["best_epoch"],
            stop["restored_best_weights"]) == ("early_stopping", 2, 5, 1, True)
    report = (out / "report.html").read_text()
    assert "finished early: epoch 2 of 5, stopped by early_stopping" in report
    assert "2 of 5 epochs run" in report


def test_a_run_of_every_epoch_says_finished(tiny_spec, tiny_data, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", str(tiny_spec), "--data", str(tiny_data), "--out", str(out),
                 "--backend", "numpy", "--progress", "off", "--epochs", "1",
                 "--limit", "32"]) == 0
    assert "stopped " not in capsys.readouterr().out
    summary = (out / "summary.txt").read_text()
    assert summary.startswith("cnnc run: tiny (finished)\n") and "1 epoch, batch" in summary
    record = json.loads((out / "run.json").read_text())
    assert record["epochs_run"] == 1 and record["stopped_early"] is None
