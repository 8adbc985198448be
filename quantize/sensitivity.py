"""Which parts of the encoder hurt most when quantized, measured at its output, one layer group at a time.

Leave-one-in per group (``usad.quantize.roles.layer_groups``: the fbank, the subsampler, the positional
encoder, each Transformer block): the recipe quantizes that group alone and the per-frame cosine against
float is measured on held-out audio. Errors that only show after a nonlinearity (the mel matmul before the
log) are caught, which per-tensor SQNR is blind to. One trial per group (14 for usad-small) instead of one
per node (56): the search that took 17 minutes now takes one or two.
"""

from __future__ import annotations

from collections.abc import Callable


def group_sensitivity(groups: dict[str, list[str]], trial: Callable[[list[str]], float],
                      on_group: Callable[[str, float], None] | None = None) -> dict[str, float]:
    """Sensitivity of each group, worst first: 1 - ``trial(nodes)`` (the fidelity with only them quantized)."""
    sensitivity = {}
    for name, nodes in groups.items():
        sensitivity[name] = 1.0 - trial(nodes)
        if on_group:
            on_group(name, sensitivity[name])
    return dict(sorted(sensitivity.items(), key=lambda kv: -kv[1]))
