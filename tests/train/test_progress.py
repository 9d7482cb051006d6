"""The training progress bar: the whole counter and time left fit 80 columns; the time left is
smoothed over intervals; the compile notice appears only when the work is slow."""

from __future__ import annotations

import io
import itertools
import re
import time

from rich.console import Console

from splatpack.core.notice import notice_if_slow
from splatpack.train.progress import TrainProgress, format_eta


def _console(width: int) -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, width=width, force_terminal=True, color_system=None), buf


def test_counter_and_eta_fit_80_columns():
    console, buf = _console(80)
    clock = iter(range(0, 10_000, 10))
    with TrainProgress(console, 30_000, 0, 50, clock=lambda: float(next(clock))) as bar:
        for step in range(1, 1551):
            bar.update(step, {"loss": 0.0123, "psnr": 25.1}, 123_456)
        bar.progress.refresh()
    last = [line for line in re.split(r"[\r\n]", buf.getvalue()) if "1550/" in line][-1]
    assert "1550/30000" in last and "ETA " in last and "123,456" in last, last
    assert "…" not in last


def test_time_left_is_smoothed():
    """One interval ten times slower (a densification, an evaluation) moves the time left by
    less than a factor of three; a rate that stays slow is reached in time."""
    times = [0.0]
    console, _ = _console(120)
    with TrainProgress(console, 10_000, 0, 100, clock=lambda: times[-1]) as bar:
        etas = []
        for k, step in enumerate(range(100, 3100, 100)):
            times.append(times[-1] + (100.0 if k == 10 else 10.0))  # 0.1 s/step, one interval at 1 s/step
            bar.update(step, {"loss": 0.1, "psnr": 20.0}, 1000)
            etas.append(bar.eta(step))
    assert max(b / a for a, b in itertools.pairwise(etas)) < 3.0
    steady = 0.1 * (10_000 - 3000)
    assert abs(etas[-1] - steady) / steady < 0.05


def test_format_eta():
    assert format_eta(3725) == "ETA 1:02:05"
    assert format_eta(None) == "ETA -:--:--"


def test_notice_only_when_slow():
    said: list[str] = []
    with notice_if_slow(said.append, "slow", after=0.05):
        pass
    time.sleep(0.1)
    assert said == []
    with notice_if_slow(said.append, "slow", after=0.05):
        time.sleep(0.3)
    assert said == ["slow"]
