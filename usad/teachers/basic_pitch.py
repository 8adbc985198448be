"""Spotify Basic Pitch music teacher: its ONNX model (``usad teachers prepare basic-pitch``) in
onnxruntime. Layers per frame (22050 / 256 = 86.13 Hz): the pitch contour (264 bins) and the
88-key note and onset posteriors. Runs on CPU through onnxruntime whatever the trainer's device, so it suits
CPU runs and small corpora; on GPU prefer CREPE (plain torch).

The model takes 2 s windows (43844 samples at 22.05 kHz) and gives 172 frames each; we cut each
clip into consecutive windows and keep each window's first 171.27 frames' worth (43844 / 256),
where the package overlaps windows by 30 frames and trims them (a simplification for teaching).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from usad.config import SAMPLE_RATE
from usad.teachers.base import Teacher, TeacherError, TeacherOutput, frames_mask

MODEL_RATE, HOP, WINDOW = 22_050, 256, 43_844
WINDOW_FRAMES = WINDOW // HOP  # 171 frames start inside one window


class BasicPitchTeacher(Teacher):
    frame_rate = MODEL_RATE / HOP

    def __init__(self, path: str | Path, threads: int = 0):
        super().__init__()
        import onnxruntime as ort

        path = Path(path)
        path = path / "model.onnx" if path.is_dir() else path
        if not path.is_file():
            raise TeacherError(f"{path}: Basic Pitch ONNX model not found (run `usad teachers prepare basic-pitch`)")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # noqa: BLE001 - onnxruntime raises its own untyped errors
            raise TeacherError(f"{path}: not a loadable ONNX model ({err})") from err
        shape = self.session.get_inputs()[0].shape
        if shape[1:] != [WINDOW, 1]:
            raise TeacherError(f"{path}: input shape {shape}, Basic Pitch takes (batch, {WINDOW}, 1)")
        # StatefulPartitionedCall:0 is the 264-bin contour, :1 and :2 the 88-key note and onset posteriors.
        self.outputs = sorted(o.name for o in self.session.get_outputs())

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    def forward(self, waveforms: Tensor, lengths: Tensor) -> TeacherOutput:
        import soxr

        wave = waveforms.detach().float().cpu().numpy()
        per_clip, frames = [], []
        for clip, n in zip(wave, lengths.tolist()):
            audio = soxr.resample(clip[:n], SAMPLE_RATE, MODEL_RATE).astype(np.float32)
            count = max(1, -(-len(audio) // HOP))
            windows = -(-count // WINDOW_FRAMES)
            audio = np.pad(audio, (0, windows * WINDOW_FRAMES * HOP + WINDOW - len(audio)))
            starts = np.arange(windows) * WINDOW_FRAMES * HOP
            batch = np.stack([audio[s:s + WINDOW] for s in starts])[..., None]
            outs = self.session.run(self.outputs, {self.session.get_inputs()[0].name: batch})
            per_clip.append([o[:, :WINDOW_FRAMES].reshape(-1, o.shape[-1])[:count] for o in outs])
            frames.append(count)
        total = max(frames)
        layers = [torch.from_numpy(np.stack([np.pad(c[j], ((0, total - len(c[j])), (0, 0))) for c in per_clip]))
                  .to(waveforms.device) for j in range(3)]
        frames_t = torch.tensor(frames, device=waveforms.device)
        return TeacherOutput(layers, self.frame_rate, frames_mask(frames_t, total))
