"""How much the GReaTer gradient knows (issue 20): for sampled (prompt, position) pairs, its first-order
prediction of each proposed token's loss change against the actual change.

At position j of prompt p, with reasonings r under p, the answer loss L (GReaTer's, at its answer
temperature) has gradient g = dL/d(one-hot at j); for a candidate v the linear prediction is
g[v] - g[p_j]. The actual change is read twice: (a) `held`, L with v at j and the same reasoning tokens
teacher-forced (is the linearization right?), and (b) `regenerated`, L after greedy reasoning under the
new prompt (what selection sees). Every piece is GReaTer's own: the shared Scorer's rollouts, the
PromptScorer's sequences, position_gradient, propose_candidates and rank_by_gradient.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from greater.engine.gradient import position_gradient, rank_by_gradient
from greater.engine.losses import span_cross_entropy
from greater.optimizers.greater.candidates import ban_previous_token, propose_candidates, sample_groups
from greater.optimizers.greater.config import GreaterConfig
from greater.optimizers.greater.objective import PromptScorer
from recipes.gradient_summary import append_rows, read_rows

if TYPE_CHECKING:
    from greater.models.language_model import LanguageModel


@dataclass(frozen=True)
class Pair:
    """One sampled (prompt, position): pair `index` of its (model, task); `edit` says how the prompt was made."""

    index: int
    prompt_ids: tuple[int, ...]
    position: int
    edit: str  # "initial", "step<k>" (a prompt the search visited) or "pos<k>-><token id>" (a random edit)


@dataclass(frozen=True)
class CandidateRow:
    """One candidate of one pair: what the CSV holds, enough to recompute every summary."""

    pair: int
    edit: str
    prompt: str
    prompt_ids: str  # space-separated ids
    position: int
    current_token: int
    token: int
    token_text: str
    n_candidates: int
    predicted: float  # g[v] - g[current]
    held: float  # L(v, same reasoning) - L(current)
    held_ce: float  # the same at temperature 1 (the plain cross-entropy)
    regenerated: float  # L(v, its own reasoning) - L(current)
    regenerated_ce: float
    regenerated_acc: float  # training accuracy of the prompt with v (the current prompt's is base_acc)
    base_loss: float  # L(current), at the answer temperature
    base_acc: float


def replaced(prompt: list[int] | tuple[int, ...], position: int, token: int) -> list[int]:
    return [token if i == position else t for i, t in enumerate(prompt)]


def edited_prompts(initial_ids: list[int], allowed: torch.Tensor, n_edits: int, seed: int) -> list[tuple]:
    """`n_edits` seeded single-token edits of the initial prompt (an allowed token at a random position), as
    (ids, label) for `sample_pairs`: the prompts to use where no search has run."""
    rng = random.Random(seed)
    allowed_ids = torch.nonzero(allowed).flatten().tolist()
    edits = []
    for _ in range(n_edits):
        k, token = rng.randrange(len(initial_ids)), rng.choice(allowed_ids)
        edits.append((tuple(replaced(initial_ids, k, token)), f"pos{k}->{token}"))
    return edits


def visited_prompts(history: Path, placeholder: int | None = None) -> list[tuple]:
    """The prompts a GReaTer run moved to, step by step, from its history.jsonl, as (ids, "step<k>"): the
    prompts the search actually visits (duplicates and placeholder-only positions left out)."""
    seen, out = set(), []
    for line in history.read_text().splitlines():
        record = json.loads(line)
        ids = tuple(t for t in record["details"]["prompt_ids"] if t != placeholder)
        if ids and ids not in seen:
            seen.add(ids)
            out.append((ids, f"step{record['step']}"))
    return out


def sample_pairs(prompts: list[tuple], n_pairs: int, seed: int) -> list[Pair]:
    """`n_pairs` pairs over `prompts` ((ids, label), the initial prompt first), in turn; positions drawn
    without repeats per prompt while they last."""
    rng = random.Random(seed)
    unused: dict[tuple[int, ...], list[int]] = {tuple(p): [] for p, _ in prompts}
    pairs = []
    for index in range(n_pairs):
        prompt, edit = prompts[index % len(prompts)]
        prompt = tuple(prompt)
        if not unused[prompt]:
            unused[prompt] = rng.sample(range(len(prompt)), len(prompt))
        pairs.append(Pair(index, prompt, unused[prompt].pop(), edit))
    return pairs


@torch.no_grad()
def answer_losses(
    lm: LanguageModel, sequences: list[list[int]], spans: list[tuple[int, int]], temperature: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """[N] answer cross-entropy of each sequence at `temperature` and at 1, teacher-forced (one pass per
    chunk of lm.loss_batch_size). The engine's span_losses has no temperature; this reads the same logits
    through the same span_cross_entropy that position_gradient differentiates."""
    tempered, plain = [], []
    for start in range(0, len(sequences), lm.loss_batch_size):
        seqs, sp = sequences[start : start + lm.loss_batch_size], spans[start : start + lm.loss_batch_size]
        batch = lm.pad(seqs)
        rows = [(o + s - 1, o + e - 1) for o, (s, e) in zip(batch.offsets, sp)]  # token t is predicted at t - 1
        keep = sorted({p for a, b in rows for p in range(a, b)})
        column = {p: k for k, p in enumerate(keep)}
        logits = lm.logits_at(batch, torch.tensor(keep)).float()  # [B, P, V]
        for i, ((a, b), seq, (s, e)) in enumerate(zip(rows, seqs, sp)):
            row = logits[i, torch.tensor([column[p] for p in range(a, b)], device=logits.device)]
            target = torch.tensor(seq[s:e], device=logits.device)
            tempered.append(span_cross_entropy(row, target, temperature).item())
            plain.append(span_cross_entropy(row, target).item())
    return torch.tensor(tempered), torch.tensor(plain)


def proposals(
    lm: LanguageModel, scorer: PromptScorer, pair: Pair, config: GreaterConfig, allowed: torch.Tensor
) -> tuple[dict[int, float], list[list[int]]]:
    """GReaTer's step up to its ranking (optimizer.py `step`, answer loss only): the predicted change of
    every proposed token other than the current one, and the current prompt's reasonings."""
    prompt, j = list(pair.prompt_ids), pair.position
    reasonings = scorer.score(prompt).reasonings
    sequences, spans = scorer.sequences(prompt, reasonings)
    grad = position_gradient(lm, sequences, spans, scorer.prompt_starts(), prompt, j, 0.0, config.answer_temperature)
    rng = random.Random(f"groups-{pair.index}")
    groups = sample_groups(len(sequences), config.group_size, config.n_groups, rng)
    mask = ban_previous_token(allowed, prompt, j) if config.token_filter == "reference" else allowed
    candidates, _ = propose_candidates(
        grad.next_token_logits, groups, mask, config.topk, config.topk_growth, config.min_candidates, config.max_topk
    )
    scores = dict(rank_by_gradient(lm, grad.grads, sorted(set(candidates) | {prompt[j]})))
    return {v: scores[v] - scores[prompt[j]] for v in candidates if v != prompt[j]}, reasonings


def measure_pair(
    lm: LanguageModel,
    scorer: PromptScorer,
    pair: Pair,
    config: GreaterConfig,
    allowed: torch.Tensor,
    max_candidates: int | None,
) -> list[CandidateRow]:
    """Predicted and actual loss change of each candidate at the pair's position: every proposal, or at most
    `max_candidates` of them, a seeded random subset so the gradient does not choose which are measured."""
    prompt, j = list(pair.prompt_ids), pair.position
    predicted, reasonings = proposals(lm, scorer, pair, config, allowed)
    tokens = sorted(predicted)
    if max_candidates is not None and len(tokens) > max_candidates:
        tokens = sorted(random.Random(f"subset-{pair.index}").sample(tokens, max_candidates))
    prompts = [prompt] + [replaced(prompt, j, v) for v in tokens]
    temperature = config.answer_temperature
    held, held_ce = _losses(lm, scorer, prompts, [reasonings] * len(prompts), temperature)
    regenerated = scorer.score_many(prompts)  # prompts[0]'s reasonings are cached: they are `reasonings`
    regen, regen_ce = _losses(lm, scorer, prompts, [s.reasonings for s in regenerated], temperature)
    base = held[0]
    shown = lm.decode(prompt)
    return [
        CandidateRow(
            pair.index,
            pair.edit,
            shown,
            " ".join(map(str, prompt)),
            j,
            prompt[j],
            v,
            lm.decode([v]),
            len(predicted),
            predicted[v],
            held[k] - base,
            held_ce[k] - held_ce[0],
            regen[k] - base,
            regen_ce[k] - regen_ce[0],
            regenerated[k].accuracy,
            base,
            regenerated[0].accuracy,
        )
        for k, v in enumerate(tokens, start=1)
    ]


def _losses(lm, scorer: PromptScorer, prompts: list[list[int]], reasonings: list[list[list[int]]], temperature):
    """Per prompt, the mean answer loss over the examples (tempered, plain), each prompt with its reasonings."""
    sequences, spans = [], []
    for prompt, rs in zip(prompts, reasonings):
        s, sp = scorer.sequences(prompt, rs)
        sequences += s
        spans += sp
    tempered, plain = answer_losses(lm, sequences, spans, temperature)
    n = len(scorer.examples)
    return tempered.view(-1, n).mean(1).tolist(), plain.view(-1, n).mean(1).tolist()


def run_pairs(
    lm: LanguageModel,
    scorer: PromptScorer,
    pairs: list[Pair],
    config: GreaterConfig,
    allowed: torch.Tensor,
    max_candidates: int | None,
    csv_path: Path,
    context: dict[str, str],
) -> int:
    """Measure the pairs not yet in `csv_path` for this context (model, task), appending each pair's rows as it
    finishes, so an interrupted run continues where it stopped; returns how many pairs were measured."""
    done = {r["pair"] for r in read_rows(csv_path) if all(r[k] == v for k, v in context.items())}
    measured = 0
    for pair in (p for p in pairs if str(p.index) not in done):
        started = time.perf_counter()
        rows = [asdict(r) for r in measure_pair(lm, scorer, pair, config, allowed, max_candidates)]
        # A pair whose only proposal is the current token has nothing to compare: one empty row marks it done.
        rows = rows or [{f.name: "" for f in fields(CandidateRow)} | {"pair": pair.index, "n_candidates": 0}]
        seconds = round(time.perf_counter() - started, 1)
        append_rows(csv_path, [{**context, **r, "seconds": seconds} for r in rows])
        measured += 1
        print(f"{' '.join(context.values())} pair {pair.index}: {len(rows)} candidates, {seconds}s", flush=True)
    return measured
