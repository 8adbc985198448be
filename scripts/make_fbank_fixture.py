"""Build tests/fixtures/fbank_kaldi.safetensors: real clips and torchaudio's Kaldi fbank of them.

Two steps, because torchaudio exists only on the GPU machine (torch 2.11) and soundfile only here:
  here:        python scripts/make_fbank_fixture.py inputs --shared ../shared --out .gpu/fbank_inputs.safetensors
  GPU machine: python3 scripts/make_fbank_fixture.py reference --inputs .gpu/fbank_inputs.safetensors \
                   --out $OUT/fbank_kaldi.safetensors
(scripts/gpu/fbank_fixture.sh is the device command.) The test then compares usad.features to it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from usad.config import SAMPLE_RATE

CLIPS = [
    "fsdd/recordings/0_george_0.flac",
    "fsdd/recordings/7_jackson_32.flac",
    "fsdd/recordings/3_lucas_10.flac",
    "fsdd/recordings/9_yweweler_4.flac",
    "gcompris-voices/fr/colors/red.ogg",
    "gcompris-voices/ru/alphabet/U0431.ogg",
    "gcompris-voices/de/colors/blue.ogg",
]
MAX_SECONDS = 0.8  # keeps the committed fixture to a few hundred KB


def make_inputs(shared: Path, out: Path) -> None:
    from safetensors.numpy import save_file

    from usad.audio import load_audio

    tensors = {}
    for i, rel in enumerate(CLIPS):
        wave = load_audio(shared / "data" / rel)[: int(SAMPLE_RATE * MAX_SECONDS)]
        tensors[f"wave_{i}"] = wave
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, out, metadata={"clips": ",".join(CLIPS)})


def make_reference(inputs: Path, out: Path) -> None:
    import torch
    import torchaudio
    from safetensors import safe_open
    from safetensors.torch import save_file

    tensors = {}
    with safe_open(inputs, "pt") as f:
        metadata = f.metadata()
        for key in f.keys():
            wave = f.get_tensor(key).double()
            wave = wave - wave.mean()
            fbank = torchaudio.compliance.kaldi.fbank(
                wave[None].float(), htk_compat=True, sample_frequency=SAMPLE_RATE, use_energy=False,
                window_type="hanning", num_mel_bins=128, dither=0.0, frame_shift=10, frame_length=25,
            )
            tensors[key] = f.get_tensor(key)
            tensors[key.replace("wave", "fbank")] = (fbank + 4.268) / (2 * 4.569)
    metadata["torchaudio"] = torchaudio.__version__
    metadata["torch"] = torch.__version__
    save_file(tensors, out, metadata=metadata)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("inputs")
    p.add_argument("--shared", type=Path, default=Path("../shared"))
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("reference")
    p.add_argument("--inputs", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.step == "inputs":
        make_inputs(args.shared, args.out)
    else:
        make_reference(args.inputs, args.out)
