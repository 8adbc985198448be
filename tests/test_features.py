from pathlib import Path

import torch
from safetensors import safe_open

from usad.config import fbank_frames
from usad.features import KaldiFbank

FIXTURE = Path(__file__).parent / "fixtures" / "fbank_kaldi.safetensors"


def _fixture():
    with safe_open(FIXTURE, "pt") as f:
        waves = sorted(k for k in f.keys() if k.startswith("wave"))
        return [(f.get_tensor(k), f.get_tensor(k.replace("wave", "fbank"))) for k in waves], f.metadata()


def test_fbank_matches_torchaudio_kaldi_on_real_audio():
    clips, metadata = _fixture()
    assert "torchaudio" in metadata and len(clips) == 7  # FSDD and GCompris clips
    fbank = KaldiFbank()
    for wave, reference in clips:
        out, frames = fbank(wave[None], torch.tensor([len(wave)]))
        assert frames.item() == reference.shape[0]
        assert (out[0] - reference).abs().max().item() < 1e-4


def test_fbank_batched_equals_single():
    clips, _ = _fixture()
    lengths = torch.tensor([len(w) for w, _ in clips])
    batch = torch.zeros(len(clips), int(lengths.max()))
    for i, (wave, _) in enumerate(clips):
        batch[i, : len(wave)] = wave
    out, frames = KaldiFbank()(batch, lengths)
    for i, (_, reference) in enumerate(clips):
        n = reference.shape[0]
        assert frames[i].item() == n
        assert (out[i, :n] - reference).abs().max().item() < 1e-4
        assert out[i, n:].abs().max().item() == 0 if out.shape[1] > n else True


def test_num_frames_follows_kaldi_snip_edges():
    assert fbank_frames(torch.tensor([399, 400, 559, 560, 16000])).tolist() == [0, 1, 1, 2, 98]


def test_fbank_stays_float32_under_bf16_autocast():
    clips, _ = _fixture()
    wave = clips[0][0][None]
    lengths = torch.tensor([wave.shape[1]])
    fbank = KaldiFbank()
    reference, _ = fbank(wave, lengths)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = fbank(wave, lengths)
    assert out.dtype == torch.float32 and torch.equal(out, reference)
