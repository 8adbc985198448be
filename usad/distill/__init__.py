"""Multi-teacher layer-to-layer distillation (USAD): recipe, objective, trainer, checkpoints."""

from usad.distill.checkpoint import TrainingInterrupted
from usad.distill.recipe import Recipe, RecipeError, load_recipe
from usad.distill.trainer import Trainer, distill
from usad.errors import EXIT_INTERRUPTED

__all__ = ["EXIT_INTERRUPTED", "Recipe", "RecipeError", "Trainer", "TrainingInterrupted", "distill", "load_recipe"]
