"""The streaming encoder in torch: presets, the chunked mask, causality, the chunk step equal to the
masked full-sequence forward on real audio with real (usad-tiny-distilled) weights, and the
full-context path unchanged for existing weights."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from usad.config import EncoderConfig, get_preset
from usad.model import UsadEncoder
from usad.modeldir import load_weights
from usad.stream_mask import chunk_layout
from usad.stream_step import StreamStep, TorchStepRunner
from usad.streaming import FrameStream, algorithmic_latency_ms

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "models" / "usad-tiny-distilled"


def stream_model(preset: str) -> UsadEncoder:
    """A streaming preset holding the trained full-context usad-tiny's weights (same shapes)."""
    model = UsadEncoder(get_preset(preset))
    model.load_state_dict(load_weights(TINY))
    return model.eval()


@pytest.fixture(scope="module")
def speech(shared) -> np.ndarray:
    from usad.audio import load_audio

    files = sorted((shared / "data/gcompris-voices/de/colors").glob("*.ogg"))[:12]
    return np.concatenate([load_audio(f) for f in files])[: 16_000 * 9 + 777]


def test_full_context_outputs_unchanged_for_existing_weights(shared):
    """Against outputs saved by the code before streaming existed (tests/fixtures, made on main by
    scripts/make_full_context_fixture.py, whose ``full_context_outputs`` runs here on today's code)."""
    spec = importlib.util.spec_from_file_location("fixture", ROOT / "scripts" / "make_full_context_fixture.py")
    fixture = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fixture)
    expected = load_file(ROOT / "tests/fixtures/full_context_usad_tiny.safetensors")
    out = fixture.full_context_outputs(shared, TINY)
    torch.testing.assert_close(out["pooled"], expected["pooled"], rtol=0, atol=1e-6)
    torch.testing.assert_close(out["last_frames"], expected["last_frames"], rtol=0, atol=1e-6)
    assert torch.equal(out["mask"], expected["mask"])


def test_streaming_presets_and_config_round_trip():
    config = get_preset("usad-tiny-stream")
    assert (config.chunk_frames, config.left_frames, config.lookahead_frames) == (16, 200, 0)
    assert algorithmic_latency_ms(config) == 335.0
    assert algorithmic_latency_ms(get_preset("usad-tiny-stream-160-la160")) == 335.0
    assert algorithmic_latency_ms(get_preset("usad-tiny-stream-160")) == 175.0
    assert EncoderConfig.from_dict(config.to_dict()) == config
    assert "stream_chunk_ms" not in get_preset("usad-tiny").to_dict()  # full-context configs as before
    with pytest.raises(ValueError, match="multiples of one 20 ms frame"):
        get_preset("usad-tiny", stream_chunk_ms=330, stream_left_ms=2000)
    with pytest.raises(ValueError, match="stream_left_ms > 0"):
        get_preset("usad-tiny", stream_chunk_ms=320)
    with pytest.raises(ValueError, match="need stream_chunk_ms"):
        get_preset("usad-tiny", stream_lookahead_ms=320)


def test_chunk_mask_sees_left_context_own_chunk_and_right_context():
    chunk, left, lookahead = 4, 6, 2
    mask = torch.ones(1, 11, dtype=torch.bool)
    layout = chunk_layout(mask, chunk, left, lookahead)
    assert layout.source.tolist() == list(range(11)) + [4, 5, 8, 9, 10, 10]  # 3 chunks x 2 copies, clamped
    allowed = layout.attn_mask[0, 0]
    # Frame 9 (chunk 2): main keys 2..10 (left context 6 before frame 8), then its chunk's copies.
    assert allowed[9, :11].nonzero().flatten().tolist() == list(range(2, 11))
    assert allowed[9, 11:].tolist() == [False] * 4 + [False, False]  # chunk 2's copies are past the end
    assert allowed[1, 11:13].all() and not allowed[1, 13:].any() and not allowed[1, 4:11].any()
    assert allowed[15, 15] and not layout.row_valid[0, 15]  # a padded row sees only itself


@pytest.mark.parametrize("preset", ["usad-tiny-stream", "usad-tiny-stream-160-la160"])
def test_no_frame_depends_on_audio_past_its_lookahead(preset, speech):
    model = stream_model(preset)
    config = model.config
    hop, chunk = config.samples_per_frame, config.chunk_frames
    # Chunks 0..4 need frames up to 5 C + R - 1, whose last fbank window ends 80 samples past their hop.
    cut = (5 * chunk + config.lookahead_frames) * hop + 80
    changed = speech.copy()
    changed[cut:] = np.random.default_rng(0).standard_normal(changed.size - cut) * 0.3
    with torch.no_grad():
        a = model(torch.from_numpy(speech)[None]).hidden_states
        b = model(torch.from_numpy(changed)[None]).hidden_states
        full_a = model(torch.from_numpy(speech)[None], full_context=True).hidden_states
        full_b = model(torch.from_numpy(changed)[None], full_context=True).hidden_states
    done = 5 * chunk
    for x, y in zip(a, b):
        assert torch.equal(x[:, :done], y[:, :done])
    assert not torch.allclose(a[-1][:, done:done + chunk], b[-1][:, done:done + chunk])
    assert not torch.allclose(full_a[-1][:, :done], full_b[-1][:, :done])  # full context does look ahead


@pytest.mark.parametrize("preset", ["usad-tiny-stream", "usad-tiny-stream-160-la160"])
def test_torch_stream_equals_masked_forward_on_real_audio(preset, speech):
    model = stream_model(preset)
    step = StreamStep(model, list(range(model.config.depth + 1)))
    runner = TorchStepRunner(step)
    stream = FrameStream(runner, runner.state_shapes, model.config, range(model.config.depth + 1))
    rng, position, parts = np.random.default_rng(1), 0, []
    while position < speech.size:
        size = int(rng.integers(1, 9000))
        parts.append(stream.push(speech[position:position + size]))
        position += size
    parts.append(stream.close())
    with torch.no_grad():
        reference = torch.stack(model(torch.from_numpy(speech)[None]).hidden_states)[:, 0].numpy()
    streamed = np.concatenate([p.hidden for p in parts], 1)
    index = np.concatenate([p.index for p in parts])
    assert streamed.shape == reference.shape and index.tolist() == list(range(reference.shape[1]))
    assert np.abs(streamed - reference).max() < 1e-4
    assert np.allclose(np.concatenate([p.start for p in parts]), index * 0.02)


def test_streaming_student_trains_under_its_mask(speech):
    """Gradients reach every weight through the chunked mask and causal convolutions, and stay finite."""
    model = stream_model("usad-tiny-stream-160-la160").train()
    waves = torch.from_numpy(np.stack([speech[:48_000], speech[8_000:56_000]]))
    out = model(waves, torch.tensor([48_000, 30_000]))
    loss = sum(h.pow(2).mean() for h in out.hidden_states)
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert model.pos_encoder.convs[0].weight.grad.abs().sum() > 0


def test_padded_batch_gives_each_clip_what_it_gets_alone(speech):
    model = stream_model("usad-tiny-stream-160-la160")
    clips = [speech[:40_000], speech[5_000:27_777]]
    waves = torch.zeros(2, 40_000)
    waves[0], waves[1, :22_777] = torch.from_numpy(clips[0]), torch.from_numpy(clips[1])
    with torch.no_grad():
        batch = model(waves, torch.tensor([40_000, 22_777]))
        alone = [model(torch.from_numpy(c)[None]) for c in clips]
    for i, out in enumerate(alone):
        frames = out.hidden_states[-1].shape[1]
        assert int(batch.mask[i].sum()) == frames
        torch.testing.assert_close(batch.hidden_states[-1][i, :frames], out.hidden_states[-1][0], atol=1e-5, rtol=0)
