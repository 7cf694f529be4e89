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

from greater.engine.kv import Prefix
from greater.engine.losses import span_cross_entropy
from greater.engine.memory import run_with_backoff

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
    answer_temperature: float,
) -> PositionGradient:
    """Gradient of each example's loss w.r.t. the embedding of prompt token `position`, the answer logits divided
    by `answer_temperature` (no default: the setting's is GreaterConfig.answer_temperature, 0.2).

    sequences[i][prompt_starts[i] + t] == prompt_ids[t]; spans[i] is the answer span in sequences[i].
    """

    def run(chunk: list[int]) -> PositionGradient:
        head, rest, answers, later_prompt, keep, column = split_at_position(
            lm, sequences, spans, prompt_starts, prompt_ids, position, control_weight, chunk
        )
        with torch.enable_grad():
            logits, delta = _rest_pass(lm, head, rest, keep)
            a_loss = torch.stack(
                [
                    _span_ce(logits[k], column, a, r[a:b], answer_temperature)
                    for k, ((a, b), r) in enumerate(zip(answers, rest))
                ]
            )
            f_loss = torch.zeros_like(a_loss)
            if control_weight:  # mean NLL over the whole prompt: the head's part is a constant here
                later = [
                    _span_ce(logits[k], column, 1, later_prompt) * len(later_prompt) if later_prompt else 0.0
                    for k in range(len(rest))
                ]
                f_loss = torch.stack([(head.fluency_sum[k] + later[k]) / len(prompt_ids) for k in range(len(rest))])
            total = (a_loss + control_weight * f_loss).sum()  # sum: each row's gradient is its own loss's
            (grad,) = torch.autograd.grad(total, delta)
        return PositionGradient(grad.detach(), head.next_logits, a_loss.detach(), f_loss.detach())

    # A backward pass keeps every layer's activations: on a GPU the batch that fits is found by halving.
    # The planner remembers across steps what fit, so a run pays one out-of-memory, not one per step.
    items = list(range(len(sequences)))
    parts = run_with_backoff(run, items, lm.loss_batch_size, lm.memory, "gradient", lambda i: len(sequences[i]))
    return PositionGradient(*(torch.cat([getattr(p, f) for p in parts]) for f in PositionGradient.__dataclass_fields__))


def split_at_position(lm, sequences, spans, prompt_starts, prompt_ids, position, control_weight, chunk):
    """The chunk's sequences cut at prompt token j: the head pass over what comes before it, each row's rest
    (from token j on), the answer spans in rest coordinates, the prompt tokens after j (whose fluency depends
    on token j), and the rest columns where a loss reads logits with their index. Shared by the gradient and
    the exact candidate losses (greater/engine/exact.py), so both read the same positions."""
    cuts = [prompt_starts[i] + position for i in chunk]  # where token j sits in each sequence
    span = 2 * max(len(sequences[i]) for i in chunk)  # the widest the store's padding can make a row
    heads = [sequences[i][:c] for i, c in zip(chunk, cuts)]
    head = _head_pass(lm, heads, prompt_ids[: position + 1], control_weight, lm.engine.gaps_change_window(span))
    rest = [sequences[i][c:] for i, c in zip(chunk, cuts)]
    answers = [(spans[i][0] - c, spans[i][1] - c) for i, c in zip(chunk, cuts)]
    later = prompt_ids[position + 1 :]
    keep = sorted({t - 1 for a, b in answers for t in range(a, b)} | set(range(len(later))))
    return head, rest, answers, later, keep, {p: c for c, p in enumerate(keep)}


@dataclass
class _Head:
    """The sequences up to (not including) token j, run once without gradients: nothing in them depends on
    e_j, so their cache stands in for them in the differentiable pass and their activations are never kept
    for a backward pass."""

    prefix: Prefix  # left-padded
    next_logits: torch.Tensor  # [B, V] the model's distribution over token j
    fluency_sum: torch.Tensor  # [B] summed NLL of prompt tokens 0..j (zeros without the fluency term)


@torch.no_grad()
def _head_pass(
    lm: LanguageModel, heads: list[list[int]], prompt_head: list[int], control_weight: float, gapless: bool = False
) -> _Head:
    keep = len(prompt_head) if control_weight else 1  # the last positions predict prompt tokens 0..j
    lm.count("tokens_forwarded", sum(len(h) for h in heads))
    lm.count("calls")
    # A question's chat before the prompt comes from the model's prefix store when it is there, unless the
    # store's padding inside a row could change a sliding window's contents (`gapless`).
    prefix, logits = lm.engine.prefill(heads, keep, from_store=not gapless)
    logits = logits.float()  # [B, keep, V]
    fluency = torch.zeros(len(heads), device=logits.device)
    if control_weight:
        target = torch.tensor(prompt_head, device=logits.device)
        fluency = torch.stack([span_cross_entropy(row, target) * len(prompt_head) for row in logits])
    return _Head(prefix, logits[:, -1].clone(), fluency)


def _rest_pass(lm: LanguageModel, head: _Head, rest: list[list[int]], keep: list[int]):
    """The differentiable pass from token j on, over the head's cache: (logits at `keep` [B, K, V], delta),
    where delta [B, d] is added to e_j and the gradient is taken with respect to it."""
    weight = lm.embedding_matrix
    delta = torch.zeros(len(rest), weight.shape[-1], dtype=weight.dtype, device=weight.device, requires_grad=True)
    lm.count("tokens_forwarded", sum(len(r) for r in rest))
    lm.count("calls")
    logits = lm.engine.append(head.prefix, rest, torch.tensor(keep), shift_first=delta)
    return logits.float(), delta


def rank_by_gradient(lm: LanguageModel, grads: torch.Tensor, candidates: list[int]) -> list[tuple[int, float]]:
    """Score every candidate by E[c] . mean_i dL_i/de_j (lower means the loss falls faster); best first."""
    direction = grads.mean(0)  # [d]
    weight = lm.embedding_matrix
    embeddings = weight[torch.tensor(candidates, device=weight.device)].float()  # [C, d]
    scores = (embeddings @ direction.float().to(weight.device)).tolist()
    return sorted(zip(candidates, scores), key=lambda pair: pair[1])
