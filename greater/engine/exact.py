"""The exact loss the GReaTer gradient approximates: each candidate token put at position j, the reasoning held
fixed, scored by forward passes instead of a first-order estimate.

For every candidate c the objective is the gradient's own: mean over examples of the answer cross-entropy at
the answer temperature, plus control_weight times the prompt's mean NLL after the question (now with c at j).
The sequences up to token j are the same for every candidate: they run once, their question chat from the
model's prefix store, and each candidate's rest of the sequence runs over that cache with logits kept only
where a loss reads them (the answer span and the prompt tokens after j).
"""

from __future__ import annotations

import torch

from greater.engine.gradient import _span_ce, split_at_position
from greater.engine.kv import select
from greater.engine.memory import run_with_backoff
from greater.models.language_model import LanguageModel

CANDIDATES_PER_PASS = 4  # each candidate copies the head's cache once per example: bound the copies in memory


@torch.no_grad()
def candidate_losses(
    lm: LanguageModel,
    sequences: list[list[int]],
    spans: list[tuple[int, int]],
    prompt_starts: list[int],
    prompt_ids: list[int],
    position: int,
    candidates: list[int],
    control_weight: float,
    answer_temperature: float,
) -> list[float]:
    """Each candidate's exact objective (lower is better), in the order of `candidates`.

    sequences[i][prompt_starts[i] + t] == prompt_ids[t]; spans[i] is the answer span in sequences[i]."""

    def run(chunk: list[int]) -> torch.Tensor:  # [C] summed over the chunk's examples
        head, rests, answers, later, keep, column = split_at_position(
            lm, sequences, spans, prompt_starts, prompt_ids, position, control_weight, chunk
        )
        # the NLL of the token at j itself, from the head's prediction there: the candidate's, not the current's
        at_j = -torch.log_softmax(head.next_logits.float(), dim=-1)  # [B, V]
        current_nll = at_j[:, prompt_ids[position]]
        totals = []
        for first in range(0, len(candidates), CANDIDATES_PER_PASS):
            group = candidates[first : first + CANDIDATES_PER_PASS]
            rows = [[c, *rest[1:]] for c in group for rest in rests]
            index = torch.arange(len(rests)).repeat(len(group))
            lm.count("tokens_forwarded", sum(len(r) for r in rows))
            lm.count("calls")
            logits = lm.engine.append(select(head.prefix, index), rows, torch.tensor(keep)).float()
            for g, c in enumerate(group):
                total = 0.0
                for k, ((a, b), rest) in enumerate(zip(answers, rests)):
                    row = logits[g * len(rests) + k]
                    loss = float(_span_ce(row, column, a, rest[a:b], answer_temperature))
                    if control_weight:
                        nll = float(head.fluency_sum[k] - current_nll[k] + at_j[k, c])
                        if later:
                            nll += float(_span_ce(row, column, 1, later)) * len(later)
                        loss += control_weight * nll / len(prompt_ids)
                    total += loss
                totals.append(total)
        return torch.tensor(totals)[None]

    items = list(range(len(sequences)))
    parts = run_with_backoff(run, items, lm.loss_batch_size, lm.memory, "exact", lambda i: len(sequences[i]))
    return (torch.cat(parts).sum(0) / len(sequences)).tolist()
