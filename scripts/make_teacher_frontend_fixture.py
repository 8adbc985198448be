"""Build tests/fixtures/teacher_frontends.safetensors: real clips and the official front ends of
ATST-Frame and BEATs on them, computed with torchaudio as their public code does.

Two steps, because torchaudio exists only on the GPU machine and the audio only here:
  here:        .venv/bin/python scripts/make_teacher_frontend_fixture.py inputs \
                   --out .gpu/teacher_frontend_inputs.safetensors
  GPU machine: python3 scripts/make_teacher_frontend_fixture.py reference \
                   --inputs .gpu/teacher_frontend_inputs.safetensors --out $OUT/teacher_frontends.safetensors
(scripts/gpu/teacher_frontend_fixture.sh is the device command.) tests/test_teachers_frontends.py
compares usad.teachers.atst_frame.AtstMel and BEATs' KaldiFbank to it.

ATST-Frame (Audio-WestlakeU/audiossl, methods/atstframe/embedding.py): MelSpectrogram(16000, f_min=60,
f_max=7800, hop_length=160, win_length=1024, n_fft=1024, n_mels=64) -> AmplitudeToDB(stype="power",
top_db=80) -> MinMax(min=-79.6482, max=50.6842). BEATs (microsoft/unilm, beats/BEATs.py preprocess):
kaldi.fbank(wave x 2^15, num_mel_bins=128, sample_frequency=16000, frame_length=25, frame_shift=10),
then (x - 15.41663) / (2 x 6.55582).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from usad.config import SAMPLE_RATE

CLIPS = {  # name -> path; ../shared for speech, Debian sample packages for sound and music
    "speech_fsdd": "{shared}/data/fsdd/recordings/4_theo_21.flac",
    "speech_gcompris": "{shared}/data/gcompris-voices/it/colors/green.ogg",
    "sound_crash": "/usr/share/hydrogen/data/drumkits/Audiophob/124101__connersaw8__crash.wav",
    "music_amen": "/usr/share/sonic-pi/samples/loop_amen.flac",
}
SECONDS = 1.0  # four 1 s clips keep the committed fixture near 0.5 MB


def make_inputs(shared: Path, out: Path) -> None:
    from safetensors.numpy import save_file

    from usad.audio import load_audio

    tensors = {f"wave_{name}": load_audio(path.format(shared=shared))[: int(SECONDS * SAMPLE_RATE)]
               for name, path in CLIPS.items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, out, metadata={name: path.format(shared="../shared") for name, path in CLIPS.items()})


def make_reference(inputs: Path, out: Path) -> None:
    import torch
    import torchaudio
    from safetensors import safe_open
    from safetensors.torch import save_file

    mel = torchaudio.transforms.MelSpectrogram(SAMPLE_RATE, f_min=60, f_max=7800, hop_length=160, win_length=1024,
                                               n_fft=1024, n_mels=64)
    to_db = torchaudio.transforms.AmplitudeToDB(stype="power", top_db=80)
    tensors = {}
    with safe_open(inputs, "pt") as f:
        metadata = f.metadata()
        for key in f.keys():
            wave = f.get_tensor(key)
            atst = to_db(mel(wave[None]))[0]
            tensors[key] = wave
            tensors[key.replace("wave", "atst")] = (atst + 79.6482) / (50.6842 + 79.6482) * 2 - 1
            fbank = torchaudio.compliance.kaldi.fbank(wave[None] * 2**15, num_mel_bins=128,
                                                      sample_frequency=SAMPLE_RATE, frame_length=25, frame_shift=10)
            tensors[key.replace("wave", "beats")] = (fbank - 15.41663) / (2 * 6.55582)
    metadata.update(torchaudio=torchaudio.__version__, torch=torch.__version__)
    save_file({key: value.contiguous() for key, value in tensors.items()}, out, metadata=metadata)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=["inputs", "reference"])
    parser.add_argument("--shared", type=Path, default=Path("../shared"), help="inputs: the shared folder")
    parser.add_argument("--inputs", type=Path, help="reference: the inputs file made here")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    make_inputs(args.shared, args.out) if args.step == "inputs" else make_reference(args.inputs, args.out)
