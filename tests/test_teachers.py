"""usad.teachers: each adapter on real weights where they exist here (Whisper tiny.en, aiSFX, CREPE,
Basic Pitch), HF encoders on randomly initialised models of their real configs, the USAD model dir,
the remote-code contract with a local stand-in, and clear errors for bad specs and weight files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from usad.audio import load_audio
from usad.teachers import TeacherError, load_teacher, prepare

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
WHISPER = SHARED / "teachers/whisper-tiny.en"
needs_shared = pytest.mark.skipif(not WHISPER.is_dir(), reason="needs ../shared")


@pytest.fixture(scope="module")
def speech(shared) -> torch.Tensor:
    """5 s of real speech: GCompris recordings joined end to end, (1, 80000)."""
    files = sorted((shared / "data/gcompris-voices").rglob("*.ogg"))[:40]
    return torch.from_numpy(np.concatenate([load_audio(f) for f in files])[:80_000])[None]


@pytest.fixture(scope="module")
def whisper():
    return load_teacher(f"whisper:{WHISPER}")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("teachers")
    return {name: prepare(name, root / name) for name in ("aisfx", "crepe-tiny", "basic-pitch")}


def sine(freq: float, seconds: float = 1.0) -> torch.Tensor:
    t = torch.arange(int(seconds * 16_000)) / 16_000
    return (0.5 * torch.sin(2 * torch.pi * freq * t))[None]


@needs_shared
def test_whisper_logmel_matches_feature_extractor_batched(speech, whisper):
    from transformers import WhisperFeatureExtractor

    teacher = whisper
    extractor = WhisperFeatureExtractor.from_pretrained(WHISPER)
    clips = [speech[0, :48_000], speech[0, 10_000:30_000]]
    batch = torch.stack([F.pad(c, (0, 48_000 - len(c))) for c in clips])
    ours = teacher.logmel(batch, torch.tensor([48_000, 20_000]))
    for i, clip in enumerate(clips):
        ref = extractor(clip.numpy(), sampling_rate=16_000, return_tensors="np").input_features[0]
        frames = len(clip) // 160
        torch.testing.assert_close(ours[i, :, :frames - 1], torch.from_numpy(ref[:, :frames - 1]), atol=2e-4, rtol=0)


@needs_shared
def test_whisper_unpadded_stays_close_to_padded_30s(speech, whisper):
    from transformers import WhisperModel

    teacher = whisper
    n = torch.tensor([speech.shape[1]])
    out = teacher(speech, n)
    assert len(out.layers) == 5 and out.frame_rate == 50.0 and out.layers[0].shape == (1, 250, 384)
    padded = teacher.logmel(F.pad(speech, (0, 480_000 - speech.shape[1])), n)
    full = teacher.encode(padded)
    # The padded path is Hugging Face's own encoder, exactly.
    reference = WhisperModel.from_pretrained(WHISPER, dtype=torch.float32).encoder(padded).last_hidden_state
    torch.testing.assert_close(full[-1], reference, atol=1e-4, rtol=0)
    for layer, (short, long) in enumerate(zip(out.layers, full)):
        cos = F.cosine_similarity(short[0], long[0, :250], dim=-1)
        # The clip's last frames differ most (they see reflect vs zero padding at the edge).
        assert cos.mean() > 0.97 and (cos > 0.75).float().mean() > 0.95, (layer, cos.mean().item())


@needs_shared
def test_teachers_are_frozen_and_stay_in_eval(prepared):
    teacher = load_teacher(f"crepe:{prepared['crepe-tiny']}")
    teacher.train()
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())


def test_crepe_tracks_pitch_of_real_weights(prepared):
    teacher = load_teacher(f"crepe:{prepared['crepe-tiny']}", hop=160)
    for freq in (220.0, 440.0):
        out = teacher(sine(freq), torch.tensor([16_000]))
        assert [x.shape[-1] for x in out.layers] == [128, 16, 16, 16, 32, 256, 360]
        assert out.layers[0].shape[1] == 101 and out.frame_rate == 100.0
        cents = 1997.3794084376191 + 20 * out.layers[-1][0, 10:-10].argmax(-1).float()
        f0 = (10 * 2 ** (cents / 1200)).median().item()
        assert abs(1200 * np.log2(f0 / freq)) < 25, f0


def test_aisfx_blocks_masks_and_batch_invariance(prepared, speech):
    teacher = load_teacher(f"aisfx:{prepared['aisfx']}")
    clip = speech[:, :64_000]
    alone = teacher(clip, torch.tensor([64_000]))
    assert [x.shape[-1] for x in alone.layers] == [64, 128, 256, 512]
    assert alone.layers[0].shape[1] == 2 and alone.mask.all()  # 2.3 s blocks every 1.16 s
    both = teacher(torch.cat([F.pad(clip, (0, 16_000)), speech]), torch.tensor([64_000, 80_000]))
    assert both.mask.sum(1).tolist() == [2, 3]
    torch.testing.assert_close(both.layers[-1][0, :2], alone.layers[-1][0], atol=1e-4, rtol=1e-4)
    other = teacher(sine(440.0, 4.0), torch.tensor([64_000]))
    assert F.cosine_similarity(other.layers[-1][0, 0], alone.layers[-1][0, 0], dim=0) < 0.99


def test_basic_pitch_onnx_finds_the_note(prepared):
    teacher = load_teacher(f"basic-pitch:{prepared['basic-pitch']}")
    out = teacher(torch.cat([sine(440.0, 3.0), sine(220.0, 3.0)]), torch.tensor([48_000, 32_000]))
    assert [x.shape[-1] for x in out.layers] == [264, 88, 88]
    assert out.mask.sum(1).tolist() == [259, 173]
    assert int(out.layers[1][0, :200].mean(0).argmax()) + 21 == 69  # A4
    assert int(out.layers[1][1, :150].mean(0).argmax()) + 21 == 57  # A3


def test_wrong_weight_shape_is_a_clear_error(prepared, tmp_path):
    for name, spec, key in (("crepe-tiny", "crepe", "conv2.weight"),
                            ("aisfx", "aisfx", "embedding_net.conv_block2.conv1.weight")):
        state = load_file(prepared[name] / "model.safetensors")
        state[key] = state[key][:, :-1].contiguous()
        (tmp_path / name).mkdir()
        save_file(state, tmp_path / name / "model.safetensors")
        with pytest.raises(TeacherError, match=f"{key.split('embedding_net.')[-1]} has shape"):
            load_teacher(f"{spec}:{tmp_path / name}")
    with pytest.raises(TeacherError, match="not found"):
        load_teacher(f"aisfx:{tmp_path / 'nowhere'}")


def test_prepare_converts_without_unpickling_at_run_time(prepared):
    info = json.loads((prepared["aisfx"] / "teacher.json").read_text())
    assert info["package"] == "aisfx==0.1.2" and len(info["source_sha256"]) == 64
    assert len(info["datasets"]) == 9
    assert len(load_file(prepared["crepe-tiny"] / "model.safetensors")) == 44
    with pytest.raises(TeacherError, match="unknown teacher"):
        prepare("vggish", prepared["aisfx"])


@pytest.mark.parametrize("kind", ["wavlm", "hubert", "wav2vec2", "data2vec-audio", "wav2vec2-large-lv60"])
def test_hf_encoders_from_real_configs(kind, tmp_path):
    import transformers as tf

    configs = {"wavlm": tf.WavLMConfig, "hubert": tf.HubertConfig, "wav2vec2": tf.Wav2Vec2Config,
               "data2vec-audio": tf.Data2VecAudioConfig}
    if kind == "wav2vec2-large-lv60":  # layer-norm feature encoder: masked, normalised input
        config = tf.Wav2Vec2Config(feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True,
                                   num_hidden_layers=2)
    else:  # the base checkpoints' configs are the library defaults; 2 layers keep the test quick
        config = configs[kind](num_hidden_layers=2)
    torch.manual_seed(0)
    tf.AutoModel.from_config(config).save_pretrained(tmp_path)
    teacher = load_teacher(f"hf:{tmp_path}")
    wave = torch.randn(2, 16_000) * 0.1
    out = teacher(wave, torch.tensor([16_000, 12_000]))
    assert len(out.layers) == 3 and out.layers[0].shape == (2, 49, 768) and out.frame_rate == 50.0
    assert out.mask.sum(1).tolist() == [49, 37]
    if kind == "wav2vec2-large-lv60":  # masked attention: a padded clip gets its own features
        alone = teacher(wave[1:, :12_000], torch.tensor([12_000]))
        torch.testing.assert_close(out.layers[-1][1, :37], alone.layers[-1][0], atol=1e-3, rtol=1e-3)


def test_usad_model_dir_teacher(tmp_path):
    import usad

    model = usad.create_model("usad-nano")
    usad.save(model, tmp_path / "m")
    teacher = load_teacher(f"usad:{tmp_path / 'm'}")
    wave = torch.randn(1, 16_000) * 0.1
    out = teacher(wave, torch.tensor([16_000]))
    with torch.no_grad():
        ref = model.eval()(wave, torch.tensor([16_000]))
    assert out.frame_rate == 50.0 and len(out.layers) == 5
    torch.testing.assert_close(out.layers[-1], ref.hidden_states[-1])
    with pytest.raises(TeacherError, match="config.json"):
        load_teacher(f"usad:{tmp_path}")


STANDIN_CONFIG = '''
from transformers import PretrainedConfig

class StandinConfig(PretrainedConfig):
    model_type = "usad_standin"
    def __init__(self, dim=16, layers=3, **kwargs):
        self.dim, self.layers = dim, layers
        super().__init__(**kwargs)
'''
STANDIN_MODEL = '''
import torch
from transformers import PreTrainedModel
from .configuration_standin import StandinConfig

class StandinModel(PreTrainedModel):
    """Same output form as MIT-SLS USAD: forward(wav) -> dict with per-layer hidden_states (50 Hz)."""
    config_class = StandinConfig
    def __init__(self, config):
        super().__init__(config)
        self.proj = torch.nn.Linear(320, config.dim)
        self.blocks = torch.nn.ModuleList(torch.nn.Linear(config.dim, config.dim) for _ in range(config.layers))
        self.post_init()
    def forward(self, wav):
        x = self.proj(wav[:, : wav.shape[1] // 320 * 320].reshape(wav.shape[0], -1, 320))
        hidden = [x]
        for block in self.blocks:
            x = torch.tanh(block(x))
            hidden.append(x)
        return {"x": x, "hidden_states": hidden}
'''


def test_usad_remote_code_needs_opt_in_and_follows_contract(tmp_path):
    (tmp_path / "configuration_standin.py").write_text(STANDIN_CONFIG)
    (tmp_path / "modeling_standin.py").write_text(STANDIN_MODEL)
    (tmp_path / "config.json").write_text(json.dumps({
        "model_type": "usad_standin", "dim": 16, "layers": 3,
        "auto_map": {"AutoConfig": "configuration_standin.StandinConfig",
                     "AutoModel": "modeling_standin.StandinModel"}}))
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(tmp_path, trust_remote_code=True)
    AutoModel.from_config(config, trust_remote_code=True).save_pretrained(tmp_path)
    with pytest.raises(TeacherError, match="trust-remote-code"):
        load_teacher(f"usad-hf:{tmp_path}")
    teacher = load_teacher(f"usad-hf:{tmp_path} --trust-remote-code")
    wave = torch.randn(2, 16_000)
    out = teacher(wave, torch.tensor([16_000, 8_000]))
    assert len(out.layers) == 4 and out.layers[0].shape == (2, 50, 16) and out.mask.sum(1).tolist() == [50, 25]
    alone = teacher(wave[1:, :8_000], torch.tensor([8_000]))
    torch.testing.assert_close(out.layers[-1][1, :25], alone.layers[-1][0])


def test_bad_specs_are_clear_errors():
    with pytest.raises(TeacherError, match="KIND:PATH"):
        load_teacher("whisper")
    with pytest.raises(TeacherError, match="KIND:PATH"):
        load_teacher("vggish:/x")
