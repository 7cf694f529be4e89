"""The one span cross-entropy: how well the logits predict a run of target tokens.

Used by the GReaTer gradient (greater/engine/gradient.py) and by `Passes.batch_span_losses`
(scoring), so the loss that is differentiated is the loss that is reported.

`temperature` divides the logits before the softmax. The reference implementation sharpens the answer
loss this way (psunlpgroup/GreaTer llm_opt/gcg/greater_opt.py:27,103: `CrossEntropyLoss()(logits / 0.2, ...)`);
1.0 is the plain cross-entropy. The argmax, and so exact-match accuracy, does not depend on it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def span_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Mean cross-entropy of targets [T] under logits [T, V] (row t predicts targets[t]); a scalar."""
    if temperature <= 0:
        raise ValueError(f"answer temperature {temperature} must be > 0 (1.0 is the plain cross-entropy)")
    return F.cross_entropy(logits / temperature if temperature != 1.0 else logits, targets)
