"""``usad convert DIR``: a downloaded MIT-SLS USAD checkpoint (USAD-Small / Base / Large on the Hugging
Face hub) onto our usad-small / base / large model dir, without running its remote code.

What is known, and from where (the full note, with what is not: docs/paper.md):
- config.json (public): encoder_dim x num_layers x num_attention_heads, FFN x feed_forward_expansion_factor,
  a frame-wise conv subsampler (conv_subsample_channels 64, rate 2) with a LayerNorm after it, the
  data2vec 2.0 conv positional encoder (conv_pos_depth 5, conv_pos_width 95 -> kernel 19 per layer,
  16 groups), attention_type "mhsa", transformer_style (no Conformer convolution module).
- usad_model.py (public, its first lines): the Kaldi fbank, 128 bins, Hann, htk_compat, no dither,
  per-utterance mean removal, (x + 4.268) / (2 x 4.569): our front end, exactly.
- the paper (Sec. IV-A): "a transformer encoder with relative positional encoding [Shaw et al.]".
Not found here: usad_modules.py, the encoder's code, which names its tensors. ``OFFICIAL_TO_OURS`` is
therefore a reconstruction in the config's vocabulary, checked on a random model of that layout;
run on a real checkpoint it either maps every tensor with the right shape or refuses, naming the
tensors it could not place and writing their list to ``OUT/unmapped_tensors.json``. Tensors of the
relative position encoding are refused as what they are: our encoders use rotary positions, so no
mapping of them keeps the network's function.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from usad.config import get_preset
from usad.model import UsadEncoder, create_model
from usad.modeldir import save
from usad.teachers.base import TeacherError, check_state_dict
from usad.teachers.pickles import read_pickled

PRESETS = {(384, 12, 6): "usad-small", (768, 12, 12): "usad-base", (1024, 24, 16): "usad-large"}
# config.json fields whose value our encoder implements (anything else: refused, named)
EXPECTED = {"model_type": "usad", "attention_type": "mhsa", "transformer_style": True, "use_framewise_subsample": True,
            "use_patchwise_subsample": False, "input_dim": 128, "conv_subsample_channels": 64,
            "conv_subsample_rate": 2, "subsample_normalization": True, "conv_pos": True, "conv_pos_depth": 5,
            "conv_pos_width": 95, "conv_pos_groups": 16, "feed_forward_expansion_factor": 4}
P = r"model\.encoder\."
# official name (regex) -> our name (format string over its groups); q, k and v fill thirds of our qkv
OFFICIAL_TO_OURS = [
    (P + r"conv_subsample\.conv(\d)\.(weight|bias)", "subsampler.conv{0}.{1}"),
    (P + r"input_projection\.(weight|bias)", "subsampler.proj.{0}"),
    (P + r"subsample_norm\.(weight|bias)", "subsampler.norm.{0}"),
    (P + r"conv_pos\.(\d+)\.0\.(weight|bias)", "pos_encoder.convs.{0}.{1}"),
    (P + r"layers\.(\d+)\.attention_norm\.(weight|bias)", "blocks.{0}.norm1.{1}"),
    (P + r"layers\.(\d+)\.attention\.(query|key|value)_proj\.(weight|bias)", "blocks.{0}.attn.qkv.{2}"),
    (P + r"layers\.(\d+)\.attention\.out_proj\.(weight|bias)", "blocks.{0}.attn.out.{1}"),
    (P + r"layers\.(\d+)\.feed_forward_norm\.(weight|bias)", "blocks.{0}.norm2.{1}"),
    (P + r"layers\.(\d+)\.feed_forward\.linear1\.(weight|bias)", "blocks.{0}.ffn.0.{1}"),
    (P + r"layers\.(\d+)\.feed_forward\.linear2\.(weight|bias)", "blocks.{0}.ffn.2.{1}"),
    (P + r"final_norm\.(weight|bias)", "final_norm.{0}"),
]
RELATIVE_POSITION = re.compile(r"pos_proj|pos_bias|relative|rel_pos|pos_emb")
QKV = {"query": 0, "key": 1, "value": 2}


def read_checkpoint(directory: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """config.json and the weights (model.safetensors, else pytorch_model.bin read weights-only)."""
    if not (directory / "config.json").is_file():
        raise TeacherError(f"{directory}: no config.json; not a downloaded USAD checkpoint directory")
    try:
        config = json.loads((directory / "config.json").read_text())
    except (OSError, ValueError) as err:
        raise TeacherError(f"{directory / 'config.json'}: unreadable ({err})") from err
    if (directory / "model.safetensors").is_file():
        try:
            return config, load_file(directory / "model.safetensors")
        except (SafetensorError, OSError) as err:
            raise TeacherError(f"{directory / 'model.safetensors'}: unreadable ({err})") from err
    if (directory / "pytorch_model.bin").is_file():
        return config, read_pickled(directory / "pytorch_model.bin")
    raise TeacherError(f"{directory}: no model.safetensors or pytorch_model.bin")


def preset_for(config: dict, source: Path) -> str:
    wrong = {k: config.get(k) for k, v in EXPECTED.items() if config.get(k) != v}
    if wrong:
        raise TeacherError(f"{source}: config {wrong} differs from what usad-* encoders implement ({EXPECTED})")
    shape = (config.get("encoder_dim"), config.get("num_layers"), config.get("num_attention_heads"))
    if shape not in PRESETS:
        raise TeacherError(f"{source}: encoder {shape} (dim, layers, heads) is not USAD Small, Base or Large")
    return PRESETS[shape]


def map_tensors(official: dict[str, torch.Tensor], dim: int) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Our state dict from the official one, and the official names that no rule places."""
    ours: dict[str, torch.Tensor] = {}
    unmapped = []
    for name, tensor in official.items():
        rule = next(((match, target) for pattern, target in OFFICIAL_TO_OURS
                     if (match := re.fullmatch(pattern, name))), None)
        if rule is None:
            unmapped.append(name)
            continue
        match, target = rule
        key = target.format(*match.groups())
        if ".attn.qkv." in key:  # our fused projection: rows [q; k; v]
            fused = ours.setdefault(key, torch.zeros(3 * dim, *tensor.shape[1:], dtype=tensor.dtype))
            third = QKV[match.group(2)]
            fused[third * dim:(third + 1) * dim] = tensor
        else:
            ours[key] = tensor
    return ours, unmapped


def convert_official(directory: str | Path, out: str | Path) -> Path:
    """Write the model dir ``out`` (config.json records the source); returns it."""
    directory, out = Path(directory), Path(out)
    config, official = read_checkpoint(directory)
    preset = preset_for(config, directory)
    relative = sorted(k for k in official if RELATIVE_POSITION.search(k))
    ours, unmapped = map_tensors(official, get_preset(preset).dim)
    if relative or unmapped:
        try:
            out.mkdir(parents=True, exist_ok=True)
            (out / "unmapped_tensors.json").write_text(json.dumps(
                {k: list(official[k].shape) for k in sorted(set(relative) | set(unmapped))}, indent=1))
        except OSError as err:
            raise TeacherError(f"{out}: cannot write ({err})") from err
        if relative:
            raise TeacherError(f"{directory}: {len(relative)} relative-position tensors ({relative[0]}, ...) have no "
                               f"counterpart: usad-* encoders use rotary positions (docs/paper.md); list in "
                               f"{out / 'unmapped_tensors.json'}")
        raise TeacherError(f"{directory}: {len(unmapped)} tensors fit no rule of the reconstructed layout "
                           f"({', '.join(unmapped[:3])}, ...); list in {out / 'unmapped_tensors.json'}")
    model: UsadEncoder = create_model(preset)
    check_state_dict(ours, model, directory)
    model.load_state_dict(ours)
    try:
        return save(model.eval(), out, extra={"converted_from": {
            "checkpoint": str(directory), "format": "MIT-SLS USAD (reconstructed layout, docs/paper.md)",
            "official_config": {k: config.get(k) for k in ("encoder_dim", "num_layers", "num_attention_heads")}}})
    except OSError as err:
        raise TeacherError(f"{out}: cannot write ({err})") from err
