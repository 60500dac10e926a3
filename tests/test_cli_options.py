"""Options that several commands share are declared once (cnnc/commands/options.py)."""

from __future__ import annotations

import argparse

import pytest

from cnnc.cli import build_parser


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _option(parser: argparse.ArgumentParser, flag: str) -> argparse.Action | None:
    return next((a for a in parser._actions if flag in a.option_strings), None)


def test_device_reads_the_same_wherever_it_selects_the_device():
    commands = _subparsers()
    users = ["compile", "verify", "bench", "run", "eval", "predict"]
    helps = {name: _option(commands[name], "--device").help for name in users}
    assert len(set(helps.values())) == 1, helps
    assert "first usable GPU, then CPU" in helps["compile"]


@pytest.mark.parametrize("command,batch", [("compile", 32), ("verify", 4), ("bench", 32)])
def test_graph_commands_take_spec_device_batch_and_train(command, batch):
    parser = _subparsers()[command]
    args = parser.parse_args(["lenet5"])
    assert (args.spec, args.device, args.batch, args.train) == ("lenet5", None, batch, False)
    args = parser.parse_args(["lenet5", "--device", "cpu", "--batch", "3", "--train"])
    assert (args.device, args.batch, args.train) == ("cpu", 3, True)
    with pytest.raises(SystemExit):
        parser.parse_args(["lenet5", "--batch", "0"])
