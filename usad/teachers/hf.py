"""Hugging Face audio encoders as teachers: WavLM, HuBERT, wav2vec2, data2vec-audio (``hf:PATH``),
and the released USAD checkpoints, which are remote code (``usad-hf:REPO``, explicit opt-in only)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from usad.config import SAMPLE_RATE
from usad.teachers.base import Teacher, TeacherError, TeacherOutput, frames_mask

SUPPORTED = ("wavlm", "hubert", "wav2vec2", "data2vec-audio")


class HFAudioTeacher(Teacher):
    """Layers: the feature projection output + every Transformer layer (``output_hidden_states``), 50 Hz."""

    def __init__(self, path: str | Path):
        super().__init__()
        from transformers import AutoConfig, AutoModel

        path = Path(path)
        try:
            config = AutoConfig.from_pretrained(path)
        except (OSError, ValueError) as err:
            raise TeacherError(f"{path}: not a Hugging Face model directory ({err})") from err
        if config.model_type not in SUPPORTED:
            raise TeacherError(f"{path}: model_type {config.model_type!r}; hf: teachers are {', '.join(SUPPORTED)}")
        try:
            self.model = AutoModel.from_pretrained(path, dtype=torch.float32)
        except (OSError, ValueError, RuntimeError) as err:
            raise TeacherError(f"{path}: cannot load weights ({err})") from err
        # Models with group-norm feature encoders were trained without attention masks on zero padding.
        self.use_mask = getattr(config, "feat_extract_norm", "layer") == "layer"  # data2vec-audio: always layer
        preprocessor = path / "preprocessor_config.json"
        self.normalize = (json.loads(preprocessor.read_text()).get("do_normalize", self.use_mask)
                          if preprocessor.is_file() else self.use_mask)
        stride = 1
        for s in config.conv_stride:
            stride *= s
        self.frame_rate = SAMPLE_RATE / stride

    def forward(self, waveforms: Tensor, lengths: Tensor) -> TeacherOutput:
        with torch.no_grad():
            wave = waveforms.float()
            valid = frames_mask(lengths, wave.shape[1])
            if self.normalize:  # zero mean, unit variance over each clip's real samples
                n = lengths[:, None].clamp(min=1)
                mean = (wave * valid).sum(1, keepdim=True) / n
                var = (((wave - mean) * valid) ** 2).sum(1, keepdim=True) / n
                wave = (wave - mean) / torch.sqrt(var + 1e-7) * valid
            out = self.model(wave.to(self.dtype), attention_mask=valid.long() if self.use_mask else None,
                             output_hidden_states=True)
            layers = list(out.hidden_states)
            frames = self.model._get_feat_extract_output_lengths(lengths)
            return TeacherOutput(layers, self.frame_rate, frames_mask(frames, layers[0].shape[1]))


class UsadHubTeacher(Teacher):
    """MIT-SLS USAD checkpoints (remote code): forward(waveforms) returns a dict with per-layer
    ``hidden_states`` at 50 Hz. Clips of different lengths run one by one: the remote code takes no mask."""

    frame_rate = 50.0

    def __init__(self, repo: str, trust_remote_code: bool = False):
        super().__init__()
        if not trust_remote_code:
            raise TeacherError(f"usad-hf:{repo} runs code from the checkpoint; opt in with --trust-remote-code")
        from transformers import AutoModel

        try:
            self.model = AutoModel.from_pretrained(repo, trust_remote_code=True)
        except (OSError, ValueError) as err:
            raise TeacherError(f"usad-hf:{repo}: cannot load ({err})") from err

    def _run(self, wave: Tensor) -> list[Tensor]:
        out = self.model(wave.to(self.dtype))
        if not isinstance(out, dict) or "hidden_states" not in out:
            raise TeacherError("usad-hf: the remote model's forward must return a dict with 'hidden_states'")
        return list(out["hidden_states"])

    def forward(self, waveforms: Tensor, lengths: Tensor) -> TeacherOutput:
        with torch.no_grad():
            wave = waveforms.float()
            if bool((lengths == wave.shape[1]).all()):
                layers = self._run(wave)
            else:
                per_clip = [self._run(wave[i:i + 1, : int(n)]) for i, n in enumerate(lengths)]
                total = max(p[0].shape[1] for p in per_clip)
                layers = [torch.cat([F.pad(p[j], (0, 0, 0, total - p[j].shape[1])) for p in per_clip])
                          for j in range(len(per_clip[0]))]
            frames = torch.clamp(lengths * 50 // SAMPLE_RATE, max=layers[0].shape[1])
            return TeacherOutput(layers, self.frame_rate, frames_mask(frames, layers[0].shape[1]))
