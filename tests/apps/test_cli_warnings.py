"""Warnings while a command runs (:func:`splatpack.apps.cli.main`): a failure prints exactly one
line; a success prints each distinct warning once, after the command's own output."""

from __future__ import annotations

import warnings

import numpy as np

from splatpack.apps.cli import main
from splatpack.apps.commands import info
from splatpack.core import SplatpackError


def test_a_failing_command_prints_only_its_error_line(monkeypatch, capsys, tmp_path) -> None:
    def run(args) -> None:
        with np.errstate(divide="warn"):
            np.log(np.zeros(1))  # numpy's RuntimeWarning, as a forged file's ranges give
        warnings.warn("something else", UserWarning, stacklevel=1)
        raise SplatpackError("broken", tmp_path / "x.spk")

    monkeypatch.setattr(info, "run", run)
    assert main(["info", str(tmp_path / "x.spk")]) == 2
    assert capsys.readouterr().err.splitlines() == [f"error: {tmp_path / 'x.spk'}: broken"]


def test_a_successful_command_reports_each_warning_once(monkeypatch, capsys, tmp_path) -> None:
    def run(args) -> None:
        for _ in range(3):
            warnings.warn("the same thing", UserWarning, stacklevel=1)
        print("done")

    monkeypatch.setattr(info, "run", run)
    assert main(["info", str(tmp_path / "x.spk")]) == 0
    out = capsys.readouterr()
    assert out.out == "done\n" and out.err.splitlines() == ["warning: UserWarning: the same thing"]
