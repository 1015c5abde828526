"""The precision the loss computations widen to."""

from __future__ import annotations

import torch


def at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32, or unchanged when it is float64.

    The losses and the patch head compute in float32 whatever the autocast precision (bfloat16 and
    float16 lose the small differences they measure); a float64 network (the parity harness's
    exact-arithmetic reference) keeps float64 throughout instead of being rounded to float32.
    """
    return x if x.dtype == torch.float64 else x.float()
