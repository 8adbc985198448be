"""The front ends of ATST-Frame (torchaudio mel + dB + min-max) and BEATs (Kaldi fbank, povey window,
x 2^15) against the official torchaudio preprocessing on real speech, a cymbal and a drum loop, each
clip alone and in one padded batch. The fixture is made on the GPU machine, where torchaudio exists
(scripts/make_teacher_frontend_fixture.py, scripts/gpu/teacher_frontend_fixture.sh)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open

from usad.features import KaldiFbank
from usad.teachers.atst_frame import AtstMel
from usad.teachers.beats import FBANK_MEAN, FBANK_STD, WAVE_SCALE

FIXTURE = Path(__file__).parent / "fixtures" / "teacher_frontends.safetensors"
pytestmark = pytest.mark.skipif(
    not FIXTURE.is_file(), reason="tests/fixtures/teacher_frontends.safetensors is made on the GPU machine "
    "(torchaudio): bash scripts/gpu/teacher_frontend_fixture.sh")


@pytest.fixture(scope="module")
def fixture() -> tuple[list[str], dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(FIXTURE, "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        names = sorted(k[len("wave_"):] for k in tensors if k.startswith("wave_"))
        return names, tensors, f.metadata()


def batch_of(waves: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(w) for w in waves])
    return torch.stack([F.pad(w, (0, int(lengths.max()) - len(w))) for w in waves]), lengths


def test_atst_mel_matches_torchaudio(fixture):
    names, tensors, metadata = fixture
    assert "torchaudio" in metadata and len(names) == 4
    waves = [tensors[f"wave_{n}"] for n in names]
    mel = AtstMel()
    batch, frames = mel(*batch_of(waves))
    for i, name in enumerate(names):
        reference = tensors[f"atst_{name}"]  # (64, frames), in [-1, 1]
        alone, n = mel(waves[i][None], torch.tensor([len(waves[i])]))
        assert n.item() == frames[i].item() == reference.shape[1]
        torch.testing.assert_close(alone[0], reference, atol=2e-4, rtol=0)
        torch.testing.assert_close(batch[i, :, : reference.shape[1]], reference, atol=2e-4, rtol=0)


def assert_close_above_float_noise(ours: torch.Tensor, reference: torch.Tensor) -> None:
    """(frames, 128) normalised log-mel. Bins within 15 nepers (65 dB) of their frame's loudest must agree
    to 2e-4; deeper bins (the empty band above 4 kHz of 8 kHz recordings) hold float32 rounding noise of
    each DFT, x 2^15 here, and need only agree to 0.1 (1.3 nepers)."""
    level = (reference - reference.amax(dim=1, keepdim=True)) * 2 * FBANK_STD
    loud = level > -15
    assert loud.float().mean() > 0.5
    torch.testing.assert_close(ours[loud], reference[loud], atol=2e-4, rtol=0)
    assert (ours - reference).abs().max() < 0.1


def test_beats_fbank_matches_torchaudio_kaldi(fixture):
    names, tensors, _ = fixture
    waves = [tensors[f"wave_{n}"] for n in names]
    fbank = KaldiFbank(128, window_type="povey", remove_utterance_mean=False, norm_mean=FBANK_MEAN,
                       norm_std=FBANK_STD)
    batch, lengths = batch_of(waves)
    out, frames = fbank(batch * WAVE_SCALE, lengths)
    for i, name in enumerate(names):
        reference = tensors[f"beats_{name}"]  # (frames, 128)
        assert frames[i].item() == reference.shape[0]
        assert_close_above_float_noise(out[i, : reference.shape[0]], reference)
