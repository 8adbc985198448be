"""Multi-teacher layer-to-layer distillation (USAD): objective, data sampler, trainer."""

from usad.distill.config import ConfigError, load_config
from usad.distill.trainer import Trainer, distill

__all__ = ["ConfigError", "Trainer", "distill", "load_config"]
