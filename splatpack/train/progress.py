"""The progress bar of a training run."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

__all__ = ["TrainProgress"]


class TrainProgress:
    """A bar from ``step`` to ``steps`` on ``console`` showing the loss and PSNR (exponential
    moving averages), the number of Gaussians and the rate every ``log_every`` steps; without a
    terminal (logs, CI) also a line every ten of those."""

    def __init__(self, console: Console, steps: int, step: int, log_every: int):
        self.console, self.steps, self.log_every = console, steps, log_every
        self.ema_psnr: float | None = None
        self.ema_loss: float | None = None
        self.t_last, self.s_last = time.perf_counter(), step
        columns = [
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        ]
        self.progress = Progress(*columns, console=console, transient=False)
        self.start = step

    def __enter__(self) -> TrainProgress:
        self.progress.__enter__()
        self.task = self.progress.add_task("train", total=self.steps, completed=self.start, stats="")
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def update(self, step: int, stats: dict[str, float], num_gaussians: int) -> None:
        """After ``step`` steps, with the last step's ``loss`` and ``psnr`` in ``stats``."""
        self.ema_psnr = stats["psnr"] if self.ema_psnr is None else 0.9 * self.ema_psnr + 0.1 * stats["psnr"]
        self.ema_loss = stats["loss"] if self.ema_loss is None else 0.9 * self.ema_loss + 0.1 * stats["loss"]
        if step % self.log_every == 0 or step == self.steps:
            now = time.perf_counter()
            rate = (step - self.s_last) / max(now - self.t_last, 1e-9)
            self.t_last, self.s_last = now, step
            line = f"loss {self.ema_loss:.4f} psnr {self.ema_psnr:5.2f} N {num_gaussians:,} {rate:5.1f} it/s"
            self.progress.update(self.task, completed=step, stats=line)
            if not self.console.is_terminal and step % (10 * self.log_every) == 0:
                self.console.print(f"step {step}/{self.steps} {line}")  # logs and CI
