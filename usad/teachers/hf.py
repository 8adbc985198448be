"""Hugging Face audio encoders as teachers: WavLM, HuBERT, wav2vec2, data2vec-audio (``hf:PATH``),
and the released USAD checkpoints, which are remote code (``usad-hf:REPO``, explicit opt-in only)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import Tensor

from usad.config import SAMPLE_RATE
from usad.teachers.base import Teacher, TeacherError, TeacherOutput, check_features, frames_mask, run_by_length

SUPPORTED = ("wavlm", "hubert", "wav2vec2", "data2vec-audio")


class HFAudioTeacher(Teacher):
    """Layers: the Transformer's input + every layer (``features``: hidden or ffn), 50 Hz.

    Padding never changes a clip's features. Models with a layer-norm conv feature encoder take the
    padded batch with an attention mask. A group-norm feature encoder (WavLM Base+, HuBERT and
    wav2vec2 Base) normalises each channel over the whole input, padding included, and those models
    were trained without attention masks: they run on each set of equal-length clips unpadded.
    """

    def __init__(self, path: str | Path, features: str = "hidden"):
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
        self.features = check_features(features)
        self.use_mask = getattr(config, "feat_extract_norm", "layer") == "layer"  # data2vec-audio: always layer
        preprocessor = path / "preprocessor_config.json"
        self.normalize = (json.loads(preprocessor.read_text()).get("do_normalize", self.use_mask)
                          if preprocessor.is_file() else self.use_mask)
        stride = 1
        for s in config.conv_stride:
            stride *= s
        self.frame_rate = SAMPLE_RATE / stride

    def encode(self, wave: Tensor, attention_mask: Tensor | None = None) -> list[Tensor]:
        """(B, S) in the weights' dtype -> layers (B, T, D): hidden states, or the input and each
        layer's feed-forward output (read by hooks: HF returns only hidden states)."""
        ffn: list[Tensor] = []
        hooks = [layer.feed_forward.register_forward_hook(lambda _m, _i, out: ffn.append(out))
                 for layer in self.model.encoder.layers] if self.features == "ffn" else []
        try:
            hidden = list(self.model(wave, attention_mask=attention_mask, output_hidden_states=True).hidden_states)
        finally:
            for hook in hooks:
                hook.remove()
        return hidden if self.features == "hidden" else [hidden[0], *ffn]

    def forward(self, waveforms: Tensor, lengths: Tensor) -> TeacherOutput:
        with torch.no_grad():
            wave = waveforms.float()
            valid = frames_mask(lengths, wave.shape[1])
            if self.normalize:  # zero mean, unit variance over each clip's real samples
                n = lengths[:, None].clamp(min=1)
                mean = (wave * valid).sum(1, keepdim=True) / n
                var = (((wave - mean) * valid) ** 2).sum(1, keepdim=True) / n
                wave = (wave - mean) / torch.sqrt(var + 1e-7) * valid
            wave = wave.to(self.dtype)
            if self.use_mask:
                layers = self.encode(wave, attention_mask=valid.long())
            else:
                layers = run_by_length(self.encode, wave, lengths)
            frames = self.model._get_feat_extract_output_lengths(lengths)
            return TeacherOutput(layers, self.frame_rate, frames_mask(frames, layers[0].shape[1]))


class UsadHubTeacher(Teacher):
    """MIT-SLS USAD checkpoints (remote code): forward(waveforms) returns a dict with per-layer
    ``hidden_states`` at 50 Hz. The remote code takes no mask: clips run grouped by length, unpadded."""

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
            layers = run_by_length(self._run, waveforms.float(), lengths)
            frames = torch.clamp(lengths * 50 // SAMPLE_RATE, max=layers[0].shape[1])
            return TeacherOutput(layers, self.frame_rate, frames_mask(frames, layers[0].shape[1]))
