"""The progress bar of a training run."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

__all__ = ["COMPILING", "TrainProgress", "format_eta"]

COMPILING = "compiling the CPU kernels (first run only: they are cached for later runs)…"
NARROW = 100  # below this many columns the bar is short and the loss and elapsed time are left out


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "ETA -:--:--"
    s = int(round(seconds))
    return f"ETA {s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class TrainProgress:
    """A bar from ``step`` to ``steps`` on ``console`` showing the PSNR (and loss, on wide
    terminals) as exponential moving averages, the number of Gaussians, the rate and the time left
    every ``log_every`` steps; without a terminal (logs, CI) also a line every ten of those.

    The time left is the steps left times an exponential moving average of the seconds per step
    (weight ``smoothing`` on the newest interval), so one slow or fast interval (densification, a
    test-view evaluation, a checkpoint) moves it a little, not several-fold."""

    def __init__(
        self,
        console: Console,
        steps: int,
        step: int,
        log_every: int,
        smoothing: float = 0.2,
        clock: Callable[[], float] = time.perf_counter,
    ):
        self.console, self.steps, self.log_every, self.smoothing = console, steps, log_every, smoothing
        self.clock = clock
        self.ema_psnr: float | None = None
        self.ema_loss: float | None = None
        self.sec_per_step: float | None = None
        self.t_last, self.s_last = clock(), step
        self.narrow = console.width < NARROW
        columns = [
            TextColumn("[bold]train"),
            BarColumn(bar_width=10 if self.narrow else 30),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"),
        ]
        self.progress = Progress(*columns, console=console, transient=False)
        self.start = step

    def __enter__(self) -> TrainProgress:
        self.progress.__enter__()
        self.task = self.progress.add_task("train", total=self.steps, completed=self.start, stats="")
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def eta(self, step: int) -> float | None:
        """Seconds left after ``step`` steps, from the smoothed seconds per step."""
        return None if self.sec_per_step is None else (self.steps - step) * self.sec_per_step

    def update(self, step: int, stats: dict[str, float], num_gaussians: int) -> None:
        """After ``step`` steps, with the last step's ``loss`` and ``psnr`` in ``stats``."""
        self.ema_psnr = stats["psnr"] if self.ema_psnr is None else 0.9 * self.ema_psnr + 0.1 * stats["psnr"]
        self.ema_loss = stats["loss"] if self.ema_loss is None else 0.9 * self.ema_loss + 0.1 * stats["loss"]
        if step % self.log_every == 0 or step == self.steps:
            now = self.clock()
            if step > self.s_last:
                interval = (now - self.t_last) / (step - self.s_last)
                w = self.smoothing
                self.sec_per_step = (
                    interval if self.sec_per_step is None else (1 - w) * self.sec_per_step + w * interval
                )
            self.t_last, self.s_last = now, step
            rate = 1.0 / max(self.sec_per_step or 0.0, 1e-9)
            loss = "" if self.narrow else f"loss {self.ema_loss:.4f} "
            line = f"{loss}psnr {self.ema_psnr:5.2f} N {num_gaussians:,} {rate:.1f} it/s {format_eta(self.eta(step))}"
            self.progress.update(self.task, completed=step, stats=line)
            if not self.console.is_terminal and step % (10 * self.log_every) == 0:
                self.console.print(f"step {step}/{self.steps} {line}")  # logs and CI
