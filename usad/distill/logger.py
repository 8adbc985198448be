"""Training logs: JSONL (one record per log step, appended across resumes), TensorBoard when
installed, and a rich progress bar with audio-hours per second (a plain line per log step when
stdout is not a terminal, e.g. under torchrun or nohup)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

LOG_FILE = "train_log.jsonl"


class TrainLogger:
    def __init__(self, out: Path, total_steps: int, start_step: int, enabled: bool = True):
        self.enabled = enabled
        if not enabled:
            return
        out.mkdir(parents=True, exist_ok=True)
        self.jsonl = open(out / LOG_FILE, "a")
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(out / "tb"))
        except ImportError:  # tensorboard is an optional extra
            self.tb = None
        self.console = Console(stderr=True)
        self.interactive = sys.stderr.isatty()
        self.progress = Progress(TextColumn("distill"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                                 TextColumn("{task.fields[info]}"), console=self.console,
                                 disable=not self.interactive)
        self.progress.start()
        self.task = self.progress.add_task("distill", total=total_steps, completed=start_step, info="")
        self.window_start, self.window_audio = time.perf_counter(), 0.0

    def info(self, message: str) -> None:
        if self.enabled:
            self.console.print(message)

    def advance(self, step: int, audio_seconds: float) -> None:
        if self.enabled:
            self.window_audio += audio_seconds
            self.progress.update(self.task, completed=step)

    def log(self, record: dict) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        # Audio throughput over the steps since the last log line (the batch of this step included).
        record["audio_hours_per_s"] = self.window_audio / 3600 / max(now - self.window_start, 1e-9)
        self.window_start, self.window_audio = now, 0.0
        record["time"] = time.time()
        self.jsonl.write(json.dumps(record) + "\n")
        self.jsonl.flush()
        if self.tb is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and key not in ("step", "time"):
                    self.tb.add_scalar(key, value, record["step"])
        losses = " ".join(f"{k[5:]} {v:.3f}" for k, v in record.items() if k.startswith("loss/"))
        info = (f"loss {record['loss']:.3f} ({losses}) lr {record['lr']:.2e} "
                f"{record['audio_hours_per_s'] * 3600:.0f} audio-s/s ({record['audio_hours_per_s']:.3f} audio-h/s)")
        self.progress.update(self.task, completed=record["step"], info=info)
        if not self.interactive:
            print(f"step {record['step']}: {info}", flush=True)

    def close(self) -> None:
        if self.enabled:
            self.progress.stop()
            self.jsonl.close()
            if self.tb is not None:
                self.tb.close()
