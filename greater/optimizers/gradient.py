"""The loss and its gradient at one prompt position (paper, sections 3.3-3.4).

L = mean_i [ CE_T(answer_i | x_i, p, r_i, extractor) + control_weight * CE(p | x_i) ],
where CE_T divides the answer logits by the answer temperature T (0.2 in the reference,
psunlpgroup/GreaTer llm_opt/gcg/greater_opt.py:103; the fluency term is not tempered there, GO:105).
One forward and one backward per batch give, at position j, both the model's next-token logits
(for proposal) and dL/de_j; every candidate c is then scored by E[c] . dL/de_j, which equals the
gradient with respect to the one-hot entry of c (the one-hot times E is the input embedding).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from greater.losses import span_cross_entropy
from greater.models.memory import run_with_backoff

if TYPE_CHECKING:
    from greater.models.language_model import LanguageModel


@dataclass
class PositionGradient:
    grads: torch.Tensor  # [N, d] dL_i/de_j per example
    next_token_logits: torch.Tensor  # [N, V] the model's distribution over the token at j
    answer_loss: torch.Tensor  # [N]
    fluency_loss: torch.Tensor  # [N]


def _span_ce(
    logits: torch.Tensor, column: dict[int, int], first: int, targets: list[int], temperature: float = 1.0
) -> torch.Tensor:
    """CE of `targets` placed at padded positions first, first+1, ... (each predicted one step earlier)."""
    cols = [column[first + t - 1] for t in range(len(targets))]
    device = logits.device
    rows = logits[torch.tensor(cols, device=device)]
    return span_cross_entropy(rows, torch.tensor(targets, device=device), temperature)


def position_gradient(
    lm: LanguageModel,
    sequences: list[list[int]],
    spans: list[tuple[int, int]],
    prompt_starts: list[int],
    prompt_ids: list[int],
    position: int,
    control_weight: float,
    answer_temperature: float = 1.0,
) -> PositionGradient:
    """Gradient of each example's loss w.r.t. the embedding of prompt token `position`.

    sequences[i][prompt_starts[i] + t] == prompt_ids[t]; spans[i] is the answer span in sequences[i].
    """
    embed = lm.model.get_input_embeddings()

    def run(chunk: list[int]) -> PositionGradient:
        seqs = [sequences[i] for i in chunk]
        batch = lm.pad(seqs)
        starts = [batch.offsets[k] + prompt_starts[i] for k, i in enumerate(chunk)]  # padded prompt starts
        answer = [(batch.offsets[k] + spans[i][0], spans[i][1] - spans[i][0]) for k, i in enumerate(chunk)]
        # Logits are needed only where a loss or the proposal reads them.
        keep = {s + position - 1 for s in starts}
        keep |= {s + t - 1 for s in starts for t in range(len(prompt_ids))} if control_weight else set()
        keep |= {a + t - 1 for a, n in answer for t in range(n)}
        keep_sorted = sorted(keep)
        column = {p: c for c, p in enumerate(keep_sorted)}

        with torch.enable_grad():
            base = embed(batch.input_ids).detach()  # [B, L, d]
            delta = torch.zeros(len(seqs), base.shape[-1], dtype=base.dtype, device=base.device, requires_grad=True)
            rows = torch.arange(len(seqs), device=base.device)
            cols = torch.tensor([s + position for s in starts], device=base.device)
            inputs = base.index_put((rows, cols), delta, accumulate=True)  # e_j + delta, differentiable at j
            logits = lm.logits_at(batch, torch.tensor(keep_sorted, device=base.device), inputs).float()
            a_loss = torch.stack(
                [
                    _span_ce(logits[k], column, a, seqs[k][a - batch.offsets[k] :][:n], answer_temperature)
                    for k, (a, n) in enumerate(answer)
                ]
            )
            f_loss = torch.zeros_like(a_loss)
            if control_weight:
                f_loss = torch.stack([_span_ce(logits[k], column, s, prompt_ids) for k, s in enumerate(starts)])
            total = (a_loss + control_weight * f_loss).sum()  # sum: each row's gradient is its own loss's
            (grad,) = torch.autograd.grad(total, delta)
        next_logits = torch.stack([logits[k, column[s + position - 1]] for k, s in enumerate(starts)])
        return PositionGradient(grad.detach(), next_logits.detach(), a_loss.detach(), f_loss.detach())

    # A backward pass keeps every layer's activations: on a GPU the batch that fits is found by halving.
    parts = run_with_backoff(run, list(range(len(sequences))), lm.loss_batch_size)
    return PositionGradient(*(torch.cat([getattr(p, f) for p in parts]) for f in PositionGradient.__dataclass_fields__))


def rank_by_gradient(lm: LanguageModel, grads: torch.Tensor, candidates: list[int]) -> list[tuple[int, float]]:
    """Score every candidate by E[c] . mean_i dL_i/de_j (lower means the loss falls faster); best first."""
    direction = grads.mean(0)  # [d]
    embeddings = lm.embedding_matrix[torch.tensor(candidates, device=direction.device)].float()  # [C, d]
    scores = (embeddings @ direction.float()).tolist()
    return sorted(zip(candidates, scores), key=lambda pair: pair[1])
