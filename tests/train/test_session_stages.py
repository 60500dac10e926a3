"""`cnnc run`'s stages as a public interface (cnnc/train/session.py's RunSession): run by hand
in order they give what run_spec gives, and a session that does not lead (a data-parallel run's
ranks but rank 0) computes the same but prints nothing and writes nothing."""

from __future__ import annotations

import io

import numpy as np

from cnnc.train.rundir import RunFolder
from cnnc.train.session import RunOptions, RunSession, run_spec


def _options(spec, data, out) -> RunOptions:
    return RunOptions(spec=str(spec), data=str(data), out=str(out), backend="numpy", epochs=2,
                      bars=False)


def _stages(session: RunSession) -> None:
    session.settings()
    session.data()
    session.compile()
    if session.lead:
        session.start_folder()
    session.header()
    session.train()
    session.finish()


def test_the_stages_in_order_are_run_spec(tiny_spec, tiny_data, tmp_path):
    assert run_spec(_options(tiny_spec, tiny_data, tmp_path / "whole"), io.StringIO()) == 0
    session = RunSession(_options(tiny_spec, tiny_data, tmp_path / "staged"), io.StringIO())
    _stages(session)
    whole, staged = RunFolder(tmp_path / "whole"), RunFolder(tmp_path / "staged")
    assert sorted(p.name for p in whole.path.iterdir()) == \
        sorted(p.name for p in staged.path.iterdir())
    assert (whole.path / "test_metrics.json").read_text() == \
        (staged.path / "test_metrics.json").read_text()
    assert session.test is not None and session.test_probs is not None


def test_a_session_that_does_not_lead_prints_and_writes_nothing(tiny_spec, tiny_data,
                                                                  tmp_path):
    lead_out, follower_out = io.StringIO(), io.StringIO()
    lead = RunSession(_options(tiny_spec, tiny_data, tmp_path / "run"), lead_out)
    _stages(lead)
    before = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()}

    follower = RunSession(_options(tiny_spec, tiny_data, tmp_path / "unused"), follower_out,
                          lead=False)
    follower.settings()
    follower.data()
    follower.compile()
    follower.folder = RunFolder(tmp_path / "run")  # the lead's, as a data-parallel rank has it
    follower.header()
    follower.train()
    follower.finish()
    follower.write_summary("finished")

    assert follower_out.getvalue() == "" and "test      accuracy" in lead_out.getvalue()
    assert not (tmp_path / "unused").exists()
    assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()} == before
    # It computed what the lead computed (same seed, same data, one process each).
    assert follower.test.to_dict() == lead.test.to_dict()
    for name, value in lead.model.get_weights().items():
        np.testing.assert_array_equal(follower.model.get_weights()[name], value)
