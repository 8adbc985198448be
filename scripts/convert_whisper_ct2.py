"""Convert the shared Whisper tiny.en encoder to CTranslate2, the peer rows of `usad bench latency --peer`.

    .venv/bin/pip install -e '.[peer]'
    .venv/bin/python scripts/convert_whisper_ct2.py ../shared/teachers/whisper-tiny.en --out runs/whisper-tiny.en-ct2

Writes ``int8/`` and ``float32/`` CTranslate2 model dirs under ``--out``. The shared teacher holds the
encoder only, while CTranslate2's Whisper spec needs a decoder: it gets seeded random weights and a
placeholder vocabulary. Only ``Whisper.encode`` is timed (the decoder never runs), so the peer rows are
the real tiny.en encoder, its weights as published.
"""

from __future__ import annotations

import argparse
from pathlib import Path

QUANTIZATIONS = {"int8": "int8", "float32": None}


def _encoder_only_converter(teacher: Path):
    import ctranslate2
    import torch
    from ctranslate2.converters.transformers import WhisperLoader
    from transformers import WhisperConfig, WhisperForConditionalGeneration, WhisperModel

    class EncoderOnlyWhisper(ctranslate2.converters.Converter):
        def _load(self):
            config = WhisperConfig.from_pretrained(teacher)
            torch.manual_seed(0)
            full = WhisperForConditionalGeneration(config).eval()  # decoder: seeded random, never run
            encoder = WhisperModel.from_pretrained(teacher, dtype=torch.float32).encoder
            full.model.encoder.load_state_dict(encoder.state_dict())
            spec = WhisperLoader().get_model_spec(full)
            spec.register_vocabulary([f"<token_{i}>" for i in range(config.vocab_size)])
            spec.config.suppress_ids, spec.config.suppress_ids_begin, spec.config.lang_ids = [], [], []
            spec.config.alignment_heads = [[config.decoder_layers - 1, 0]]
            return spec

    return EncoderOnlyWhisper()


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("teacher", type=Path, help="Hugging Face Whisper dir, e.g. the shared tiny.en")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if not (args.teacher / "config.json").is_file():
        raise SystemExit(f"{args.teacher}: no config.json, not a Hugging Face Whisper dir")
    try:
        converter = _encoder_only_converter(args.teacher)
    except ImportError as err:
        raise SystemExit(f"{err.name} is missing: pip install -e '.[peer,hf]'") from None
    for name, quantization in QUANTIZATIONS.items():
        converter.convert(str(args.out / name), quantization=quantization, force=True)
        print(f"wrote {args.out / name} ({quantization or 'float32'} weights)")
    print(f"float32 encoder vs Hugging Face on seeded 30 s features: max abs difference {_check(args):.2e}")
    return args.out


def _check(args) -> float:
    """The converted float32 encoder must compute what the Hugging Face one does."""
    import ctranslate2
    import numpy as np
    import torch
    from transformers import WhisperModel

    features = np.random.default_rng(0).standard_normal((1, 80, 3000)).astype(np.float32) * 0.5
    with torch.no_grad():
        encoder = WhisperModel.from_pretrained(args.teacher, dtype=torch.float32).encoder.eval()
        reference = encoder(torch.from_numpy(features)).last_hidden_state.numpy()
    model = ctranslate2.models.Whisper(str(args.out / "float32"), device="cpu")
    ours = np.array(model.encode(ctranslate2.StorageView.from_array(features), to_cpu=True))
    return float(np.abs(ours - reference).max())


if __name__ == "__main__":
    main()
