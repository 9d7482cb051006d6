"""The command-line parser: one-line errors of our own, the command table, help, defaults and choices."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from splatpack.apps import cli
from splatpack.apps.commands import COMMANDS, info
from splatpack.apps.parser import BACKENDS, build_parser, int_in, parse_args, quality_level
from splatpack.core import SplatpackError


def one_error_line(args: list[str], capsys) -> str:
    """The one stderr line of a refused command line (exit status 2)."""
    rc = cli.main(args)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["train", "x", "--steps", "0"], ["splatpack train", "--steps", "≥ 1", "'0'"]),
        (["train", "x", "--steps", "-3"], ["--steps", "'-3'"]),
        (["train", "x", "--steps", "many"], ["--steps", "'many'"]),
        (["train", "x", "--viewer-port", "65536"], ["--viewer-port", "0..65535"]),
        (["train", "x", "--viewer-every", "0"], ["--viewer-every"]),
        (["train", "x", "--backend", "gpu"], ["--backend", "'gpu'"]),
        (["compress", "x.ply", "-o", "y.spk", "--quality", "11"], ["--quality", "0..10", "sog", "'11'"]),
        (["compress", "x.ply", "-o", "y.spk", "--finetune-steps", "0"], ["--finetune-steps"]),
        (["render", "run", "--frames", "0"], ["--frames"]),
        (["view", "x.spk", "--port", "-1"], ["--port", "0..65535"]),
        (["bench", "--qualities", "3", "12"], ["--qualities", "'12'"]),
        (["export", "x.spk", "-o", "y", "--format", "jpg"], ["--format", "'jpg'"]),
        (["export", "x.spk"], ["splatpack export", "-o/--out"]),
        (["frobnicate"], ["unknown command 'frobnicate'", "train"]),
        (["train", "x", "--bogus"], ["splatpack train", "unknown option '--bogus'"]),
        (["train", "x", "--step", "5"], ["--step"]),  # no abbreviations
        ([], ["COMMAND"]),
    ],
)
def test_bad_arguments_give_one_error_line(args, fragments, capsys):
    err = one_error_line(args, capsys)
    for f in fragments:
        assert f in err, (f, err)


def test_debug_shows_the_traceback_of_a_parse_error():
    with pytest.raises(SplatpackError, match="--steps"):
        cli.main(["train", "x", "--steps", "0", "--debug"])


def test_ctrl_c_exits_130(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(info, "run", interrupted)
    assert cli.main(["info", "x.spk"]) == 130
    assert capsys.readouterr().err == "interrupted\n"


def test_python_m_splatpack_help():
    r = subprocess.run([sys.executable, "-m", "splatpack", "--help"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage: splatpack") and r.stderr == ""
    for name in COMMANDS:
        assert name in r.stdout


def test_command_help_lists_options_with_their_help(capsys):
    assert cli.main(["train", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--config", "--compact", "--steps", "--resume, --no-resume", "--viewer-port", "--viewer-every"):
        assert option in out, option
    assert "the live view's port" in out and "(default: 8080)" in out


def test_command_table():
    assert list(COMMANDS) == [
        "train",
        "process",
        "render",
        "info",
        "decompress",
        "export",
        "compress",
        "bench",
        "view",
        "completion",
        "prior",
        "generate",
    ]
    for name, module in COMMANDS.items():
        assert module.__doc__ and callable(module.add_arguments) and callable(module.run), name


def parsed(*argv: str) -> dict:
    args = parse_args(build_parser(COMMANDS, ""), list(argv), list(COMMANDS))
    return {k: v for k, v in vars(args).items() if k not in ("command", "run")}


def test_defaults_are_those_of_the_earlier_command_line():
    assert parsed("train", "scene") == {
        "path": "scene",
        "config": None,
        "compact": False,
        "downscale": None,
        "steps": None,
        "batch_size": None,
        "nproc": 1,
        "out": None,
        "backend": "auto",
        "resume": False,
        "overwrite": False,
        "threads": 0,
        "viewer": False,
        "viewer_port": 8080,
        "viewer_every": 100,
    }
    assert parsed("process", "imgs", "--out", "o") == {
        "images_dir": Path("imgs"),
        "out": Path("o"),
        "matching": "exhaustive",
        "poses": None,
        "downscale": None,
        "max_size": None,
    }
    assert parsed("render", "run") == {
        "run_dir": Path("run"),
        "out": None,
        "orbit": False,
        "frames": 120,
        "fps": 30,
        "backend": "auto",
    }
    assert parsed("info", "a.spk") == {"file": Path("a.spk"), "json": False}
    assert parsed("decompress", "a.spk", "-o", "b.ply") == {
        "file": Path("a.spk"),
        "out": Path("b.ply"),
        "follow_symlinks": False,
    }
    assert parsed("export", "a.spk", "-o", "b.sog") == {
        "file": Path("a.spk"),
        "out": Path("b.sog"),
        "format": None,
        "follow_symlinks": False,
    }
    assert parsed("compress", "a.ply", "-o", "b.spk") == {
        "file": Path("a.ply"),
        "out": Path("b.spk"),
        "quality": 6,
        "target_size": None,
        "target_psnr": None,
        "prune": 0.0,
        "sh_cull": None,
        "sh_zero": None,
        "adaptive_precision": None,
        "allocate": False,
        "refine": None,
        "sh_basis": None,
        "finetune": None,
        "finetune_steps": 1000,
        "backend": "auto",
        "prior": None,
        "latent": None,
        "latents_only": False,
        "follow_symlinks": False,
    }
    assert parsed("bench") == {
        "out": Path("outputs/bench/rd"),
        "inputs": None,
        "tools": None,
        "qualities": None,
        "alloc_psnrs": None,
        "views": 32,
        "size": 384,
        "subset": 0,
        "tool_timeout": 0.0,
        "sog_iterations": 10,
    }
    assert parsed("view", "a.spk") == {
        "file": Path("a.spk"),
        "port": 0,
        "no_browser": False,
        "desktop": False,
        "width": 1024,
        "height": 768,
    }


def test_options_as_spelled_before():
    """Hyphens (and the underscore spelling), flags, pairs, ``-o`` and ``--option=value``."""
    a = parsed(
        "train", "s", "--viewer_port", "0", "--viewer-every=5", "--compact", "--viewer", "--resume", "--steps", "7"
    )
    assert [a[k] for k in ("viewer_port", "viewer_every", "compact", "viewer", "resume", "steps")] == [
        0,
        5,
        True,
        True,
        True,
        7,
    ]
    assert parsed("train", "s", "--resume", "--no-resume")["resume"] is False
    assert parsed("render", "r", "--orbit")["orbit"] is True and parsed("info", "f", "--json")["json"] is True
    assert parsed("view", "f", "--no-browser", "--desktop")["no_browser"] is True
    assert parsed("compress", "a", "--out", "b", "--quality", "sog")["quality"] == "sog"
    assert parsed("compress", "a", "-o", "b", "--quality", "high")["quality"] == "high"
    assert parsed("compress", "a", "-o", "b", "--quality", "0")["quality"] == 0
    b = parsed("bench", "--inputs", "a.ply", "b.spz", "--tools", "spz", "--qualities", "2", "8")
    assert b["inputs"] == [Path("a.ply"), Path("b.spz")] and b["tools"] == ["spz"] and b["qualities"] == [2, 8]
    assert BACKENDS == ("auto", "cpu", "cuda")


def test_value_types():
    assert int_in(1)("3") == 3 and int_in(0, 10)("10") == 10
    for bad in ("0", "x", "1.5"):
        with pytest.raises(argparse.ArgumentTypeError, match="an integer ≥ 1"):
            int_in(1)(bad)
    assert quality_level("6") == 6 and quality_level("max") == "max"
    with pytest.raises(argparse.ArgumentTypeError, match=r"0\.\.10"):
        quality_level("-1")
