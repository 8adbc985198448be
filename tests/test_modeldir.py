import json

import pytest
import torch

import usad
from usad.modeldir import INDEX_FILE, ModelDirError, load_weights, save_weights


@pytest.fixture
def tiny_dir(tmp_path):
    torch.manual_seed(0)
    model = usad.create_model("usad-nano")
    return model, usad.save(model, tmp_path / "nano")


def test_round_trip_gives_identical_outputs(tiny_dir):
    model, path = tiny_dir
    loaded = usad.load(path)
    config = json.loads((path / "config.json").read_text())
    assert config["format_version"] == 1 and config["variant"] == "usad-nano" and config["frame_rate"] == 50
    wave = torch.randn(1, 16000)
    with torch.no_grad():
        assert torch.equal(model.eval()(wave).hidden_states[-1], loaded(wave).hidden_states[-1])


def test_large_weights_are_sharded_with_an_index(tmp_path):
    model = usad.create_model("usad-small")
    usad.save(model, tmp_path / "small")
    shards = sorted(p.name for p in (tmp_path / "small").glob("model-*-of-*.safetensors"))
    assert len(shards) >= 6 and (tmp_path / "small" / INDEX_FILE).is_file()
    assert all((tmp_path / "small" / s).stat().st_size <= 16 * 1024 * 1024 for s in shards)
    state = load_weights(tmp_path / "small")
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def test_missing_config(tiny_dir):
    _, path = tiny_dir
    (path / "config.json").unlink()
    with pytest.raises(ModelDirError, match="config.json: missing"):
        usad.load(path)


def test_missing_weights(tiny_dir):
    _, path = tiny_dir
    (path / "model.safetensors").unlink()
    with pytest.raises(ModelDirError, match="no model.safetensors"):
        usad.load(path)


def test_truncated_weights_name_the_file(tiny_dir):
    _, path = tiny_dir
    weights = path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ModelDirError, match="model.safetensors: unreadable or truncated"):
        usad.load(path)


def test_missing_shard_names_the_file(tmp_path):
    save_weights({f"w{i}": torch.zeros(1024, 1024) for i in range(3)}, tmp_path, shard_bytes=5_000_000)
    (tmp_path / "model-00002-of-00003.safetensors").unlink()
    with pytest.raises(ModelDirError, match="model-00002-of-00003.safetensors: weight shard listed"):
        load_weights(tmp_path)


def test_weights_that_do_not_match_the_config(tiny_dir):
    _, path = tiny_dir
    config = json.loads((path / "config.json").read_text())
    config["encoder"]["dim"] = 96
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelDirError, match="has shape .* in the weights"):
        usad.load(path)


def test_wrong_format_version_and_bad_json(tiny_dir):
    _, path = tiny_dir
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**config, "format_version": 99}))
    with pytest.raises(ModelDirError, match="format_version 99"):
        usad.load(path)
    (path / "config.json").write_text("{not json")
    with pytest.raises(ModelDirError, match="not valid JSON"):
        usad.load(path)
