"""Chunked attention of a streaming encoder, as one masked forward over the whole sequence.

Frames are cut into chunks of C frames. A chunk attends to the L frames before it (the key/value
cache of the streaming step), to itself, and to R right-context frames: the first R frames after
it, as in Emformer (Shi et al., 2021). The right-context frames are copies appended after the T
main frames, one block of R per chunk, so a main frame's hidden state never depends on more than
R frames of the future whatever the depth, and the streaming step (usad.stream_step) computes
exactly these rows: chunk c's C frames, then its R right-context rows, which it throws away.

Shapes: T main frames, N = ceil(T / C) chunks, T' = T + N * R rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class ChunkLayout:
    source: Tensor  # (T',) int64: the frame each row holds (main rows 0..T-1 first)
    attn_mask: Tensor  # (B, 1, T', T') bool: True where a row may attend to a key row
    row_valid: Tensor  # (B, T') bool: the row holds a real frame of its clip


def chunk_layout(mask: Tensor, chunk: int, left: int, lookahead: int) -> ChunkLayout:
    """Rows and attention mask for frames ``mask`` (B, T) bool (True on real frames).

    A row always sees itself, so padded rows (all of whose keys may be padding) stay finite.
    """
    t = mask.shape[1]
    device = mask.device
    frames = torch.arange(t, device=device)
    chunks = (t + chunk - 1) // chunk
    # Right-context rows: chunk c's r-th row holds frame (c + 1) C + r (maybe past the end).
    rc_chunk = torch.arange(chunks, device=device).repeat_interleave(lookahead)
    rc_source = (rc_chunk + 1) * chunk + torch.arange(lookahead, device=device).repeat(chunks)
    source = torch.cat([frames, rc_source])
    row_chunk = torch.cat([frames // chunk, rc_chunk])
    is_main = torch.arange(source.numel(), device=device) < t
    # Main keys: [c C - L, (c + 1) C) of the query's chunk c; right-context keys: its own chunk's.
    lo, hi = (row_chunk * chunk - left)[:, None], ((row_chunk + 1) * chunk)[:, None]
    main_key = is_main[None, :] & (source[None, :] >= lo) & (source[None, :] < hi)
    rc_key = ~is_main[None, :] & (row_chunk[None, :] == row_chunk[:, None])
    padded = torch.cat([mask, torch.zeros(mask.shape[0], 1, dtype=torch.bool, device=device)], 1)
    row_valid = padded[:, source.clamp(max=t)]  # index t is the padding column: frames past the end
    eye = torch.eye(source.numel(), dtype=torch.bool, device=device)
    attn_mask = ((main_key | rc_key)[None] & row_valid[:, None, :]) | eye[None]
    return ChunkLayout(source.clamp(max=t - 1), attn_mask[:, None], row_valid)
