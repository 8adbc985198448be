"""USAD-Edge: one universal audio encoder (speech, sound, music), distilled and made deployable.

Importing ``usad`` imports no torch, so ``usad.runtime`` stays torch-free; the torch-facing names
below load on first use.
"""

from importlib import import_module

__version__ = "0.1.0"

_LAZY = {
    "create_model": "usad.model",
    "UsadEncoder": "usad.model",
    "EncoderOutput": "usad.model",
    "EncoderConfig": "usad.config",
    "list_presets": "usad.config",
    "get_preset": "usad.config",
    "save": "usad.modeldir",
    "load": "usad.modeldir",
    "ModelDirError": "usad.modeldir",
    "load_audio": "usad.audio",
    "AudioError": "usad.audio",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'usad' has no attribute {name!r}")
