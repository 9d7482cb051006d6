"""Ctrl-C during `splatpack train` (a real subprocess, interrupted at random moments: while
importing, setting up, compiling or stepping): never a traceback, exit 130, and once the loop runs
a checkpoint and a line saying how to resume; an existing run is not overwritten by accident."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

from splatpack.apps.cli import main

RUNS = 20


def test_ctrl_c_never_prints_a_traceback(tmp_path):
    rng = random.Random(0)
    for i in range(RUNS):
        out = tmp_path / f"run{i}"
        p = subprocess.Popen(
            [sys.executable, "-m", "splatpack", "train", "default", "--steps", "100000", "--out", str(out)],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        time.sleep(rng.uniform(0.2, 8.0))
        p.send_signal(signal.SIGINT)
        err = p.communicate(timeout=120)[1]
        assert "Traceback" not in err and "SystemError" not in err, err
        assert p.returncode == 130, (p.returncode, err)
        if "resume with: splatpack train default" in err:
            assert (out / "checkpoint.pt").is_file()


def test_ctrl_c_in_the_loop_writes_a_checkpoint_and_says_how_to_resume(tmp_path):
    """Interrupted right after a progress line (a line every 10 steps without a terminal, with
    ``log_every: 1``), so the signal lands in the loop whatever the machine's load."""
    from splatpack.captures.synthetic import make_synthetic_scene

    root = make_synthetic_scene(tmp_path / "capture", width=40, height=40, n_train=8, n_test=2)
    scene = tmp_path / "t.yaml"
    scene.write_text(f"name: t\ndata: {root}\nformat: blender\noverrides: {{log_every: 1, eval_lpips: false}}\n")
    for i in range(3):
        out = tmp_path / f"run{i}"
        p = subprocess.Popen(
            [sys.executable, "-m", "splatpack", "train", str(scene), "--steps", "100000", "--out", str(out)],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        lines = []
        for line in p.stderr:  # until the loop reports a step
            lines.append(line)
            if line.startswith("step "):
                break
        p.send_signal(signal.SIGINT)
        err = "".join(lines) + p.communicate(timeout=120)[1]
        assert "Traceback" not in err and p.returncode == 130, (p.returncode, err)
        assert "resume with: splatpack train" in err and "--resume" in err, err
        assert (out / "checkpoint.pt").is_file()


def test_resume_without_a_checkpoint_and_overwrite(tmp_path, capsys):
    assert main(["train", "default", "--steps", "5", "--out", str(tmp_path), "--resume"]) == 2
    assert "no checkpoint to resume from" in capsys.readouterr().err
    assert main(["train", "default", "--steps", "5", "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["train", "default", "--steps", "5", "--out", str(tmp_path)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["train", "default", "--steps", "5", "--out", str(tmp_path), "--overwrite"]) == 0


def test_a_ctrl_c_swallowed_during_setup_still_stops_the_loop_at_its_first_step():
    """A library that swallows the KeyboardInterrupt of a Ctrl-C (one raised inside a finaliser,
    which Python only reports as "Exception ignored") cannot make it vanish: within
    ``noticed_interrupts`` it is remembered, and the loop's ``StopRequest`` starts with the
    request made; outside, or once handled, nothing is remembered."""
    from splatpack.train.interrupt import StopRequest, noticed_interrupts

    with noticed_interrupts():
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)  # the handler runs between bytecodes
        except KeyboardInterrupt:
            pass  # swallowed, as a finaliser would
        with StopRequest() as stop:
            assert stop.requested
        with StopRequest() as stop:
            assert not stop.requested  # taken once
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with noticed_interrupts(), StopRequest() as stop:
        assert not stop.requested
