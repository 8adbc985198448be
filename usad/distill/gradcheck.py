"""Check that DDP computes the single-process gradients: run one training step's forward and backward
on the same global batch under ``torchrun`` (N ranks, each its share) and in one process, and compare.

    torchrun --nproc_per_node 2 -m usad.distill.gradcheck --config C --out grads_ddp.safetensors
    python -m usad.distill.gradcheck --config C --out grads_single.safetensors

The global batch is the ``step``-th batch of one in-process data stream (as a 1-rank run without
workers would see it); rank r trains on its rows r, r + N, ... Gradients are equal when every rank's
loss carries the same weight, i.e. when all crops in the global batch have the same length (DDP
averages per-rank means); the test corpus ensures that.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import tempfile

import torch.distributed as dist
from safetensors.torch import save_file

from usad.data.stream import ShardStream
from usad.distill.recipe import Recipe, load_recipe
from usad.distill.trainer import Trainer


def step_gradients(recipe: Recipe, step: int = 0) -> dict:
    """Gradients (averaged over ranks) of one training step's loss, by parameter name."""
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(recipe, tmp)
    single = ShardStream(dataclasses.replace(recipe.data, workers=0), recipe.train.batch_size, recipe.train.seed)
    batch = next(itertools.islice(iter(single), step, None))
    waveforms, lengths = batch.to(trainer.device)
    rows = slice(trainer.rank, None, trainer.world)
    waveforms, lengths = waveforms[rows], lengths[rows]
    targets = trainer.teacher_targets(waveforms, lengths)
    with trainer.autocast:
        loss, _ = trainer.ddp(waveforms, lengths, targets)
    loss.backward()
    return {name: p.grad.detach().cpu().clone() for name, p in trainer.model.named_parameters() if p.grad is not None}


def main() -> None:
    parser = argparse.ArgumentParser(description="gradients of one distillation step (DDP check)")
    parser.add_argument("--config", required=True)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--out", required=True)
    parser.add_argument("--step", type=int, default=0)
    args = parser.parse_args()
    grads = step_gradients(load_recipe(args.config, args.overrides), args.step)
    if not dist.is_initialized() or dist.get_rank() == 0:
        save_file(grads, args.out)
    if dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
