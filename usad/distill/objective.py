"""The USAD distillation objective: per (student layer, teacher layer) pair, a 2-layer MLP head
predicts the teacher's features from the student's; loss = mean L1 - log-sigmoid(cosine).

Student and teacher frames are aligned in time: each teacher frame takes the average of the student
frames that overlap it (weighted by overlap), which covers teachers at 50 Hz (identity), at other
rates, and clip-level teachers (one frame spanning the clip).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from usad.teachers.base import TeacherOutput


@dataclass(frozen=True)
class TeacherSpec:
    """What the objective needs to know about one teacher (read off one probe forward)."""

    name: str
    dims: tuple[int, ...]  # feature width of each teacher layer
    frame_rate: float | None  # None: clip-level
    weight: float = 1.0


def layer_pairs(student_layers: int, teacher_layers: int, k: int) -> list[tuple[int, int]]:
    """USAD's sparse pairs: student floor(i*Ls/K) -> teacher floor(i*Lt/K), i = 1..K (deduplicated).

    Layer counts exclude the input layer: hidden state 0 is the embedding, so Ls = len(hidden) - 1."""
    pairs = [(i * student_layers // k, i * teacher_layers // k) for i in range(1, k + 1)]
    return list(dict.fromkeys(pairs))


def overlap_pooling(student_frames: Tensor, student_rate: float, teacher_frames: Tensor, teacher_rate: float,
                    ts: int, tt: int) -> Tensor:
    """(B, Tt, Ts) weights averaging student frames over each teacher frame's time span, rows summing
    to 1 (0 where a teacher frame overlaps no real student frame). Frame counts are (B,)."""
    device = student_frames.device
    s_start = torch.arange(ts, device=device, dtype=torch.float32) / student_rate
    t_start = torch.arange(tt, device=device, dtype=torch.float32) / teacher_rate
    overlap = (torch.minimum(t_start[:, None] + 1 / teacher_rate, s_start[None, :] + 1 / student_rate)
               - torch.maximum(t_start[:, None], s_start[None, :])).clamp(min=0)
    real = torch.arange(ts, device=device)[None, :] < student_frames[:, None]  # (B, Ts)
    weights = overlap[None] * real[:, None, :]
    return weights / weights.sum(-1, keepdim=True).clamp(min=1e-9)


def masked_mean_over_time(x: Tensor, mask: Tensor) -> Tensor:
    """(B, T, D), (B, T) -> (B, D)."""
    w = mask[..., None].to(x.dtype)
    return (x * w).sum(1) / w.sum(1).clamp(min=1)


class DistillHead(nn.Module):
    """Student features (..., Ds) -> predicted teacher features (..., Dt)."""

    def __init__(self, student_dim: int, teacher_dim: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(student_dim, hidden), nn.GELU(), nn.Linear(hidden, teacher_dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def pair_loss(pred: Tensor, target: Tensor, mask: Tensor | None) -> Tensor:
    """Mean L1 - log-sigmoid(cosine) over real frames. pred/target (B, T, D) or (B, D); mask (B, T)."""
    pred, target = pred.float(), target.float()
    l1 = (pred - target).abs().mean(-1)
    cos = F.cosine_similarity(pred, target, dim=-1)
    per_frame = l1 - F.logsigmoid(cos)
    if mask is None:
        return per_frame.mean()
    mask = mask.to(per_frame.dtype)
    return (per_frame * mask).sum() / mask.sum().clamp(min=1)


class DistillObjective(nn.Module):
    """Heads for every (teacher, student layer, teacher layer) pair, and the weighted loss."""

    def __init__(self, student_dim: int, student_layers: int, student_rate: float, teachers: list[TeacherSpec],
                 pairs: int = 4, head_hidden: int | None = None, normalize_targets: bool = False):
        super().__init__()
        self.teachers = teachers
        self.student_rate = student_rate
        self.normalize_targets = normalize_targets
        self.pairs = {t.name: layer_pairs(student_layers, len(t.dims) - 1, pairs) for t in teachers}
        hidden = head_hidden or student_dim
        self.heads = nn.ModuleDict({
            f"{t.name}__s{s}_t{j}": DistillHead(student_dim, t.dims[j], hidden)
            for t in teachers for s, j in self.pairs[t.name]
        })

    def align(self, hidden: Tensor, student_mask: Tensor, teacher: TeacherOutput, tt: int) -> Tensor:
        """Student (B, Ts, D) -> (B, Tt, D) on the teacher's frames, or (B, D) for a clip teacher."""
        if teacher.clip_level:
            return masked_mean_over_time(hidden, student_mask)
        if teacher.frame_rate == self.student_rate:
            t = min(tt, hidden.shape[1])
            return F.pad(hidden[:, :t], (0, 0, 0, tt - t))
        weights = overlap_pooling(student_mask.sum(1), self.student_rate, teacher.mask.sum(1),
                                  teacher.frame_rate, hidden.shape[1], tt)
        return weights.to(hidden.dtype) @ hidden

    def forward(self, hidden_states: list[Tensor], student_mask: Tensor,
                targets: dict[str, TeacherOutput]) -> tuple[Tensor, dict[str, Tensor]]:
        """Total weighted loss and each teacher's (unweighted, pair-averaged) loss."""
        total, per_teacher = hidden_states[0].new_zeros((), dtype=torch.float32), {}
        for spec in self.teachers:
            out = targets[spec.name]
            mask = None
            if not out.clip_level:
                # A teacher frame counts where the teacher has real audio and the student covers it.
                tt = out.layers[0].shape[1]
                covered = torch.arange(tt, device=out.mask.device)[None] / out.frame_rate < (
                    student_mask.sum(1, keepdim=True) / self.student_rate)
                mask = out.mask & covered
            losses = []
            for s, j in self.pairs[spec.name]:
                student = self.align(hidden_states[s], student_mask, out, None if out.clip_level else tt)
                target = out.layers[j]
                if self.normalize_targets:
                    target = F.layer_norm(target.float(), target.shape[-1:])
                losses.append(pair_loss(self.heads[f"{spec.name}__s{s}_t{j}"](student), target, mask))
            per_teacher[spec.name] = torch.stack(losses).mean()
            total = total + spec.weight * per_teacher[spec.name]
        return total, per_teacher


def probe_teacher(name: str, output: TeacherOutput, weight: float = 1.0) -> TeacherSpec:
    """A TeacherSpec from one forward's output."""
    return TeacherSpec(name, tuple(int(x.shape[-1]) for x in output.layers), output.frame_rate, weight)
