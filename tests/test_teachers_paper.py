"""The paper's teachers without their weights: WavLM Base+ (transformers), ATST-Frame and BEATs (ours,
from their public sources). Randomly initialised models of the published architectures: parameter
counts within 1 % of the published ones, tensor names and shapes equal to the official modules'
(tests/fixtures/teacher_keys.json), every layer equal to the official code's on tiny configs
(tests/fixtures/teacher_reference.safetensors), frame rates, masks, and a padded batch of real speech,
drums and music giving each clip what it gets alone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open

from usad.audio import load_audio
from usad.config import SAMPLE_RATE
from usad.teachers import TeacherError, load_teacher
from usad.teachers.atst_frame import ARCHS, FrameAST, reflect_pad
from usad.teachers.beats import Beats, BeatsConfig, relative_buckets

FIXTURES = Path(__file__).parent / "fixtures"
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DRUM = Path("/usr/share/hydrogen/data/drumkits/Audiophob/124101__connersaw8__crash.wav")
LOOP = Path("/usr/share/sonic-pi/samples/loop_amen.flac")
PUBLISHED_PARAMS = {"wavlm-base-plus": 95e6, "atst-frame-base": 86e6, "beats-iter3": 90e6}  # paper, Table III
SPEC = {"wavlm-base-plus": "hf", "atst-frame-base": "atst-frame", "beats-iter3": "beats"}


@pytest.fixture(scope="module")
def clips() -> list[torch.Tensor]:
    """Real audio of three domains and three lengths: speech 1.6 s, a crash cymbal 1 s, a drum loop 1.3 s."""
    if not (SHARED / "data").is_dir() or not DRUM.is_file() or not LOOP.is_file():
        pytest.skip("needs ../shared and the hydrogen-drumkits / sonic-pi-samples packages (make system-deps)")
    files = sorted((SHARED / "data/gcompris-voices").rglob("*.ogg"))[:30]
    speech = np.concatenate([load_audio(f) for f in files])[:25_600]
    return [torch.from_numpy(a.astype(np.float32)) for a in (speech, load_audio(DRUM)[:16_000],
                                                              load_audio(LOOP)[:21_000])]


@pytest.fixture(scope="module")
def teacher_dirs(untrained_teacher) -> dict[str, Path]:
    return {name: untrained_teacher(name) for name in PUBLISHED_PARAMS}


def assert_batch_is_each_clip_alone(teacher, clips: list[torch.Tensor]) -> None:
    lengths = torch.tensor([len(c) for c in clips])
    batch = torch.stack([F.pad(c, (0, int(lengths.max()) - len(c))) for c in clips])
    together = teacher(batch, lengths)
    for i, clip in enumerate(clips):
        alone = teacher(clip[None], lengths[i:i + 1])
        n = int(alone.mask.sum())
        assert n == int(together.mask[i].sum()) and alone.mask.all()
        for a, b in zip(alone.layers, together.layers):
            torch.testing.assert_close(b[i, :n], a[0], atol=2e-4, rtol=1e-3)


@pytest.mark.parametrize("name", list(PUBLISHED_PARAMS))
def test_parameter_counts_match_the_published_ones(name, teacher_dirs):
    teacher = load_teacher(f"{SPEC[name]}:{teacher_dirs[name]}")
    params = sum(p.numel() for p in teacher.parameters())
    assert abs(params / PUBLISHED_PARAMS[name] - 1) < 0.01, params
    assert json.loads((teacher_dirs[name] / "teacher.json").read_text())["untrained"] is True


@pytest.mark.parametrize("name, module", [
    ("atst-frame-base", lambda: FrameAST(*ARCHS["base"])),
    ("atst-frame-small", lambda: FrameAST(*ARCHS["small"])),
    ("beats-iter3", lambda: Beats(BeatsConfig.from_checkpoint(json.loads(
        (FIXTURES / "teacher_keys.json").read_text())["_source"]["beats_cfg"]))),
])
def test_tensor_names_and_shapes_equal_the_official_modules(name, module):
    official = json.loads((FIXTURES / "teacher_keys.json").read_text())[name]
    ours = {k: list(v.shape) for k, v in module().state_dict().items()}
    assert ours == official


def deterministic(module: torch.nn.Module) -> torch.nn.Module:
    """The fixture's weights (see its metadata): tensor i of the sorted state dict = 0.1 sin(0.37 n + i),
    LayerNorm gains + 1."""
    state = module.state_dict()
    gains = ("norm.weight", "norm1.weight", "norm2.weight", "norm_frame.weight")
    with torch.no_grad():
        for i, key in enumerate(sorted(state)):
            n = torch.arange(state[key].numel(), dtype=torch.float64)
            state[key].copy_((0.1 * torch.sin(0.37 * n + i)).reshape(state[key].shape) + key.endswith(gains))
    return module.eval()


def test_every_layer_equals_the_official_code_on_tiny_networks():
    with safe_open(FIXTURES / "teacher_reference.safetensors", "pt") as f:
        ref, meta = {k: f.get_tensor(k) for k in f.keys()}, f.metadata()
    atst = deterministic(FrameAST(dim=32, depth=2, heads=4))
    mel = ref["atst.mel"]  # (64, 203): 50 tokens of 4 frames, the last 3 frames dropped
    patches = mel[:, :200].reshape(64, 50, 4).permute(1, 0, 2).reshape(1, 50, 256)
    with torch.no_grad():
        layers = atst(patches, torch.ones(1, 50, dtype=torch.bool))
    torch.testing.assert_close(torch.cat(layers[1:]), ref["atst.layers"], atol=1e-5, rtol=1e-5)
    beats = deterministic(Beats(BeatsConfig.from_checkpoint(json.loads(meta["beats_cfg"]))))
    with torch.no_grad():
        tokens = beats.tokens(ref["beats.fbank"][None])
        layers = beats.encoder(tokens, torch.ones(1, tokens.shape[1], dtype=torch.bool), "hidden")
    torch.testing.assert_close(torch.cat(layers), ref["beats.layers"], atol=1e-5, rtol=1e-5)


def test_wavlm_base_plus_layers_rate_and_padding(teacher_dirs, clips):
    teacher = load_teacher(f"hf:{teacher_dirs['wavlm-base-plus']}")
    hidden = teacher(clips[0][None], torch.tensor([len(clips[0])])).layers
    assert len(hidden) == 13 and teacher.frame_rate == 50.0 and hidden[0].shape == (1, 79, 768)
    assert not teacher.use_mask  # group-norm feature encoder: runs unpadded, grouped by length
    assert_batch_is_each_clip_alone(teacher, clips[1:])
    ffn = load_teacher(f"hf:{teacher_dirs['wavlm-base-plus']}", features="ffn")
    layers = ffn(clips[0][None], torch.tensor([len(clips[0])])).layers
    torch.testing.assert_close(layers[0], hidden[0])  # the Transformer's input either way
    assert len(layers) == 13 and not torch.allclose(layers[5], hidden[5])


def test_atst_frame_25hz_padding_and_10s_chunks(teacher_dirs, clips):
    teacher = load_teacher(f"atst-frame:{teacher_dirs['atst-frame-base']}", features="ffn")
    assert teacher.frame_rate == 25.0
    assert_batch_is_each_clip_alone(teacher, clips)
    long = torch.cat([clips[0]] * 8)[: 12 * SAMPLE_RATE]  # 1201 mel frames: chunks of 1001 + 200
    out = teacher(long[None], torch.tensor([len(long)]))
    assert len(out.layers) == 13 and out.layers[-1].shape == (1, 500, 768) and int(out.mask.sum()) == 300


def test_beats_frequency_averaged_6_25hz_and_padding(teacher_dirs, clips):
    teacher = load_teacher(f"beats:{teacher_dirs['beats-iter3']}")
    out = teacher(clips[0][None], torch.tensor([len(clips[0])]))
    # 158 fbank frames -> 9 patches of 160 ms, each the mean of its 8 frequency patches
    assert teacher.frame_rate == 6.25 and len(out.layers) == 13 and out.layers[0].shape == (1, 9, 768)
    assert_batch_is_each_clip_alone(teacher, clips)


def test_reflect_padding_per_clip_matches_torch():
    wave = torch.randn(2, 3000)
    lengths = torch.tensor([3000, 1700])
    padded = reflect_pad(wave, lengths, 512)
    for i, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(padded[i, : n + 1024], F.pad(wave[i:i + 1, :n], (512, 512), mode="reflect")[0])
    assert padded[1, 1700 + 1024:].abs().sum() == 0


def test_relative_position_buckets():
    buckets = relative_buckets(1000, 320, 800, torch.device("cpu"))
    assert buckets[0, 0] == 0 and buckets[0, 1] == 161 and buckets[1, 0] == 1  # + offsets use the upper half
    assert buckets[0, 79] == 160 + 79 and buckets[0, 999] == 319 and buckets[999, 0] == 159


def test_bad_options_are_clear_errors(teacher_dirs, tmp_path):
    with pytest.raises(TeacherError, match="features="):
        load_teacher(f"atst-frame:{teacher_dirs['atst-frame-base']}", features="logits")
    with pytest.raises(TeacherError, match="unknown option"):
        load_teacher(f"beats:{teacher_dirs['beats-iter3']}", hop=3)
    with pytest.raises(TeacherError, match="not found"):
        load_teacher(f"atst-frame:{tmp_path}")
    with pytest.raises(TeacherError, match="teacher.json"):
        load_teacher(f"beats:{tmp_path}")
