"""The model directory: ``config.json`` + safetensors weights, the one currency between stages.

Weights above ``SHARD_BYTES`` are split into ``model-0000N-of-0000M.safetensors`` with a
``model.safetensors.index.json`` weight map, so each file fits the GPU machine's transfer limit.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from usad.config import FORMAT_VERSION, SAMPLE_RATE, EncoderConfig
from usad.errors import UsadError
from usad.model import UsadEncoder, count_parameters

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
SHARD_BYTES = 16 * 1024 * 1024


class ModelDirError(UsadError, RuntimeError):
    """A model directory that cannot be loaded; the message names the offending file."""


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _shards(state: dict[str, torch.Tensor], limit: int) -> list[dict[str, torch.Tensor]]:
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name, tensor in state.items():
        nbytes = tensor.numel() * tensor.element_size()
        if shards[-1] and size + nbytes > limit:
            shards.append({})
            size = 0
        shards[-1][name] = tensor
        size += nbytes
    return shards


def save_weights(state: dict[str, torch.Tensor], directory: str | Path, shard_bytes: int = SHARD_BYTES,
                 metadata: dict[str, str] | None = None) -> list[str]:
    """Write a state dict as one safetensors file, or shards + index above ``shard_bytes``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    for stale in [*directory.glob("model-*-of-*.safetensors"), directory / WEIGHTS_FILE, directory / INDEX_FILE]:
        stale.unlink(missing_ok=True)
    shards = _shards(state, shard_bytes)
    if len(shards) == 1:
        names = [WEIGHTS_FILE]
    else:
        names = [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
    for name, shard in zip(names, shards):
        tmp = directory / (name + ".tmp")
        save_file(shard, tmp, metadata=metadata or {})
        os.replace(tmp, directory / name)
    if len(shards) > 1:
        weight_map = {key: name for name, shard in zip(names, shards) for key in shard}
        index = {"metadata": {"total_size": sum(t.numel() * t.element_size() for t in state.values())},
                 "weight_map": weight_map}
        _atomic_write_text(directory / INDEX_FILE, json.dumps(index, indent=1))
    return names


def load_weights(directory: str | Path) -> dict[str, torch.Tensor]:
    """Read the safetensors weights of a model directory (single file or sharded)."""
    directory = Path(directory)
    if (directory / INDEX_FILE).is_file():
        try:
            weight_map = json.loads((directory / INDEX_FILE).read_text())["weight_map"]
        except (json.JSONDecodeError, KeyError) as err:
            raise ModelDirError(f"{directory / INDEX_FILE}: not a valid weight index ({err})") from err
        files = sorted(set(weight_map.values()))
    elif (directory / WEIGHTS_FILE).is_file():
        weight_map, files = None, [WEIGHTS_FILE]
    else:
        raise ModelDirError(f"{directory}: no {WEIGHTS_FILE} or {INDEX_FILE}")
    state: dict[str, torch.Tensor] = {}
    for name in files:
        path = directory / name
        if not path.is_file():
            raise ModelDirError(f"{path}: weight shard listed in {INDEX_FILE} is missing")
        try:
            with safe_open(path, "pt") as f:
                for key in f.keys():
                    state[key] = f.get_tensor(key)
        except (SafetensorError, OSError, ValueError) as err:
            raise ModelDirError(f"{path}: unreadable or truncated safetensors file ({err})") from err
    if weight_map is not None and set(weight_map) != set(state):
        missing = sorted(set(weight_map) - set(state))[:5]
        raise ModelDirError(f"{directory / INDEX_FILE}: tensors listed but not found in shards: {missing}")
    return state


def save(model: UsadEncoder, directory: str | Path, extra: dict | None = None) -> Path:
    """Write ``config.json`` (architecture, front end, format version) and the weights."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = {
        "format_version": FORMAT_VERSION,
        "architecture": "usad-encoder",
        "encoder": model.config.to_dict(),
        "variant": model.config.name,
        "frame_rate": model.config.frame_rate,
        "parameters": count_parameters(model),
        "frontend": {"sample_rate": SAMPLE_RATE, "fbank": "kaldi", "n_mels": model.config.n_mels,
                     "frame_length_ms": 25, "frame_shift_ms": 10, "norm_mean": -4.268, "norm_std": 4.569},
        **(extra or {}),
    }
    save_weights(model.state_dict(), directory)
    _atomic_write_text(directory / CONFIG_FILE, json.dumps(config, indent=2))
    return directory


def read_config(directory: str | Path) -> dict:
    """The parsed ``config.json`` of a model directory, with its format version checked."""
    path = Path(directory) / CONFIG_FILE
    if not Path(directory).is_dir():
        raise ModelDirError(f"{directory}: not a model directory")
    if not path.is_file():
        raise ModelDirError(f"{path}: missing; a model directory needs {CONFIG_FILE}")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ModelDirError(f"{path}: not valid JSON ({err})") from err
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelDirError(f"{path}: format_version {version!r}, this usad reads {FORMAT_VERSION}")
    if "encoder" not in config:
        raise ModelDirError(f"{path}: no 'encoder' section")
    return config


def load_config(directory: str | Path) -> EncoderConfig:
    path = Path(directory) / CONFIG_FILE
    try:
        return EncoderConfig.from_dict(read_config(directory)["encoder"])
    except (TypeError, ValueError) as err:
        raise ModelDirError(f"{path}: invalid encoder config ({err})") from err


def load(directory: str | Path, device: str | torch.device = "cpu") -> UsadEncoder:
    """The torch encoder of a model directory, in eval mode."""
    model = UsadEncoder(load_config(directory))
    state = load_weights(directory)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ModelDirError(
            f"{directory}: weights do not match {CONFIG_FILE} (missing {missing[:5]}, unexpected {unexpected[:5]})"
        )
    for key, tensor in state.items():
        if tensor.shape != expected[key].shape:
            raise ModelDirError(
                f"{directory}: tensor {key} has shape {tuple(tensor.shape)} in the weights but "
                f"{tuple(expected[key].shape)} per {CONFIG_FILE}"
            )
    model.load_state_dict(state)
    return model.to(device).eval()
