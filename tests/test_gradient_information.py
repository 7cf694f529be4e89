"""The gradient diagnostic (issue 20) on a tiny random model: its changes against independent full-forward
computations, its statistics against hand-computed values, and its resume."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from greater.engine.frame import extractor_ids
from greater.engine.rollouts import Scorer
from greater.optimizers.greater.candidates import allowed_token_mask
from greater.optimizers.greater.config import GreaterConfig
from greater.optimizers.greater.objective import PromptScorer
from recipes import gradient_information as gi
from recipes.gradient_summary import (
    LINKS,
    average_ranks,
    best_in_top,
    nested_bootstrap,
    pair_links,
    read_rows,
    spearman,
    summarize,
    table,
)

TEMPERATURE = 0.5  # not 1, so a forgotten temperature shows; not the default, so a hard-coded one shows too
CONFIG = GreaterConfig(topk=8, min_candidates=4, group_size=2, n_groups=3, answer_temperature=TEMPERATURE)


@pytest.fixture
def setup(tiny_lm, parity_task):
    scorer = PromptScorer(Scorer(tiny_lm, parity_task, "after", 4), parity_task.train[:3], 0.0)
    allowed = allowed_token_mask(tiny_lm.tokenizer, "ascii")
    prompt = tuple(tiny_lm.encode(parity_task.initial_prompt))
    return tiny_lm, parity_task, scorer, allowed, gi.Pair(0, prompt, 2, "initial")


def full_sequence(lm, task, scorer, example, prompt, reasoning):
    """The sequence built by hand from the question's chat, unpadded: (ids, answer start, answer end)."""
    slot = scorer.shared.slots([example])[0]
    head = slot.before + list(prompt) + slot.after + list(reasoning) + extractor_ids(lm, task)
    target = lm.encode(task.target_text(example))
    return head + target, len(head), len(head) + len(target)


@pytest.fixture
def reference(tiny_reference):
    return tiny_reference


def full_forward_loss(lm, reference, task, scorer, prompt, reasonings, temperature, embeds=None, at=None):
    """Mean answer CE over the examples from one plain forward per sequence of `reference`, lm's weights in a
    plain transformers model (tests.reference: none of the engine's kernels), optionally with the input
    embedding at prompt position `at` replaced by `embeds`."""
    losses = []
    for example, reasoning in zip(scorer.examples, reasonings):
        ids, s, e = full_sequence(lm, task, scorer, example, prompt, reasoning)
        x = reference.get_input_embeddings().weight[torch.tensor(ids)].detach().clone()
        if embeds is not None:
            x[len(scorer.shared.slots([example])[0].before) + at] = embeds
        logits = reference(inputs_embeds=x[None], use_cache=False).logits[0]
        losses.append(F.cross_entropy(logits[s - 1 : e - 1] / temperature, torch.tensor(ids[s:e])))
    return torch.stack(losses).mean()


def test_held_change_equals_a_full_forward_with_the_token_substituted(setup, reference):
    lm, task, scorer, allowed, pair = setup
    rows = gi.measure_pair(lm, scorer, pair, CONFIG, allowed, max_candidates=3)
    assert len(rows) == 3
    reasonings = scorer.score(list(pair.prompt_ids)).reasonings
    with torch.no_grad():
        base = full_forward_loss(lm, reference, task, scorer, pair.prompt_ids, reasonings, TEMPERATURE).item()
        for row in rows:
            new = gi.replaced(pair.prompt_ids, pair.position, row.token)
            expected = full_forward_loss(lm, reference, task, scorer, new, reasonings, TEMPERATURE).item()
            assert row.base_loss == pytest.approx(base, abs=1e-5)
            assert row.held == pytest.approx(expected - base, abs=1e-5)
            plain = full_forward_loss(lm, reference, task, scorer, new, reasonings, 1.0).item()
            plain_base = full_forward_loss(lm, reference, task, scorer, pair.prompt_ids, reasonings, 1.0).item()
            assert row.held_ce == pytest.approx(plain - plain_base, abs=1e-5)


def test_regenerated_change_is_the_scorers_loss_under_the_new_prompt(setup, reference):
    lm, task, scorer, allowed, pair = setup
    rows = gi.measure_pair(lm, scorer, pair, CONFIG, allowed, max_candidates=3)
    fresh = Scorer(lm, task, "after", 4)  # an independent scorer: its own rollouts, its plain CE
    (base,) = fresh.rollouts([list(pair.prompt_ids)], scorer.examples)
    for row in rows:
        (rollouts,) = fresh.rollouts([gi.replaced(pair.prompt_ids, pair.position, row.token)], scorer.examples)
        mean = sum(r.loss for r in rollouts) / len(rollouts) - sum(r.loss for r in base) / len(base)
        assert row.regenerated_ce == pytest.approx(mean, abs=1e-5)
        assert row.regenerated_acc == sum(r.correct for r in rollouts) / len(rollouts)
        reasonings = [r.reasoning for r in rollouts]
        with torch.no_grad():
            new = gi.replaced(pair.prompt_ids, pair.position, row.token)
            loss = full_forward_loss(lm, reference, task, scorer, new, reasonings, TEMPERATURE).item()
        assert row.regenerated == pytest.approx(loss - row.base_loss, abs=1e-5)


def test_prediction_is_the_one_hot_gradient_and_the_embedding_directional_derivative(setup, reference):
    lm, task, scorer, allowed, pair = setup
    predicted, reasonings = gi.proposals(lm, scorer, pair, CONFIG, allowed)
    current = pair.prompt_ids[pair.position]
    W = lm.embedding_matrix.detach()
    e_cur = W[current].clone().requires_grad_(True)
    loss = full_forward_loss(
        lm, reference, task, scorer, pair.prompt_ids, reasonings, TEMPERATURE, e_cur, pair.position
    )
    (g,) = torch.autograd.grad(loss, e_cur)  # dL/de_j; the one-hot gradient at v is W[v] . g
    eps = 1e-2
    with torch.no_grad():
        for v, change in predicted.items():
            assert change == pytest.approx(((W[v] - W[current]) @ g).item(), abs=1e-5)
            step = W[current] + eps * (W[v] - W[current])
            shifted = full_forward_loss(
                lm, reference, task, scorer, pair.prompt_ids, reasonings, TEMPERATURE, step, pair.position
            )
            assert (shifted.item() - loss.item()) / eps == pytest.approx(change, rel=0.05, abs=1e-4)


def test_proposals_exclude_the_current_token_and_follow_greaters_filter(setup):
    lm, _, scorer, allowed, pair = setup
    predicted, _ = gi.proposals(lm, scorer, pair, CONFIG, allowed)
    assert pair.prompt_ids[pair.position] not in predicted
    assert all(allowed[v] for v in predicted)
    assert len(predicted) >= CONFIG.min_candidates - 1


def test_pairs_are_seeded_and_edits_change_one_token(tiny_lm):
    allowed = allowed_token_mask(tiny_lm.tokenizer, "ascii")
    initial = tiny_lm.encode("Think step by step.")
    prompts = [(tuple(initial), "initial"), *gi.edited_prompts(initial, allowed, 2, seed=3)]
    assert prompts[1:] == gi.edited_prompts(initial, allowed, 2, seed=3)
    pairs = gi.sample_pairs(prompts, 9, seed=3)
    assert pairs == gi.sample_pairs(prompts, 9, seed=3)
    assert [p.edit == "initial" for p in pairs] == [i % 3 == 0 for i in range(9)]
    for p in pairs:
        assert sum(a != b for a, b in zip(p.prompt_ids, initial)) == (0 if p.edit == "initial" else 1)
    first = [p.position for p in pairs if p.edit == "initial"]
    assert len(set(first)) == len(first)  # positions do not repeat while unused ones remain


def test_visited_prompts_come_from_the_history_in_step_order(tmp_path):
    history = tmp_path / "history.jsonl"
    steps = [[5, 6, 7], [5, 9, 7], [5, 9, 7], [5, 9, 7, 99]]  # 99: the placeholder of a grown prompt
    history.write_text(
        "".join(json.dumps({"step": k + 1, "details": {"prompt_ids": ids}}) + "\n" for k, ids in enumerate(steps))
    )
    assert gi.visited_prompts(history, placeholder=99) == [((5, 6, 7), "step1"), ((5, 9, 7), "step2")]


# ---- statistics ---------------------------------------------------------------------------------


def test_spearman_against_hand_computed_values():
    assert average_ranks([5, 6, 7, 8, 7]) == [1, 2, 3.5, 5, 3.5]
    # ranks x: 1..5 (centred -2..2), y: 1,2,3.5,5,3.5 (centred -2,-1,.5,2,.5): 8 / sqrt(10 * 9.5)
    assert spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) == pytest.approx(8 / math.sqrt(95))
    assert spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)
    assert spearman([0.1, 5, 2], [1, 900, 3]) == pytest.approx(1.0)  # ranks, not values
    assert math.isnan(spearman([1, 2, 3], [4, 4, 4]))


def test_nested_bootstrap_resamples_prompts_then_pairs():
    assert nested_bootstrap({"a": [0.3, 0.3], "b": [0.3]}) == pytest.approx((0.3, 0.3, 0.3))
    # one prompt whose pairs agree, one whose pairs agree on another value: the spread is the prompts'
    mean, low, high = nested_bootstrap({"a": [0.0, 0.0, 0.0], "b": [1.0, 1.0, 1.0]}, seed=1)
    assert mean == 0.5 and (low, high) == (0.0, 1.0)  # a draw of two prompts can be both a or both b
    pooled = nested_bootstrap({str(i): [float(i % 2)] for i in range(6)}, seed=2)  # one pair per prompt
    assert pooled[0] == 0.5 and 0.0 < pooled[1] < 0.5 < pooled[2] < 1.0
    assert nested_bootstrap({"a": [0.1, 0.4], "b": [0.2]}, seed=5) == nested_bootstrap(
        {"a": [0.1, 0.4], "b": [0.2]}, seed=5
    )


def test_best_in_top_and_the_summary_of_rows():
    assert not best_in_top([-3, 0, 1, 2, 4], [0.5, -1, -2, -3, 0.1])  # the first side's best is the worst
    assert best_in_top([0, -3, 1, 2, 4], [0.5, -1, -2, -3, 0.1])  # the first side's best is 3rd lowest
    assert not best_in_top([0, 1, 2, 3], [1, 0, 0, 0])  # three strictly better on the second side
    assert best_in_top([0, 1, 2, 3], [0, 0, 0, 0])  # ties count in its favour

    def rows(pair, prompt, predicted, held, regenerated, acc):
        return [
            {
                "model": "m",
                "task": "t",
                "pair": pair,
                "prompt_ids": prompt,
                "token": k,
                "predicted": p,
                "held": h,
                "regenerated": r,
                "regenerated_acc": a,
                "base_acc": 0.5,
            }
            for k, (p, h, r, a) in enumerate(zip(predicted, held, regenerated, acc))
        ]

    data = rows(0, "1 2", [1, 2, 3, 4], [1, 2, 3, 4], [4, 3, 2, 1], [0.25, 0.5, 0.5, 0.75])
    data += rows(1, "1 3", [1, 2, 3, 4, 5, 6], [2, 1, 3, 4, 5, 6], [1] * 6, [0.5] * 6)
    s = summarize(data)
    assert (s["pairs"], s["prompts"], s["candidates"]) == (2, 2, 5)
    gradient, held, accuracy = (name for name, _, _ in LINKS)
    assert s[f"{gradient}_rho"] == pytest.approx((1.0 + spearman([1, 2, 3, 4, 5, 6], [2, 1, 3, 4, 5, 6])) / 2)
    assert s[f"{held}_rho"] == pytest.approx(-1.0)  # pair 1's constant regenerated loss: no correlation, left out
    # pair 0: accuracy drop 0.25, 0, 0, -0.25 against regenerated 4, 3, 2, 1: the loss orders the drop
    assert s[f"{accuracy}_rho"] == pytest.approx(spearman([4, 3, 2, 1], [0.25, 0, 0, -0.25]))
    assert s[f"{gradient}_top3"] == 1.0
    assert "gradient -> held" in table({("m", "t"): data})


def test_the_random_control_is_the_null_not_one_draw():
    """The control averages many seeded orders: its rho is about 0 and its top-1-in-top-3 rate about 3/n (a
    uniformly random best lands in the second side's best 3 of n distinct values), whatever the pair's data;
    a link that orders the candidates perfectly is still +1."""
    n = 25
    rows = [
        {
            "prompt_ids": "1",
            "predicted": k,
            "held": k,
            "regenerated": (7 * k) % n,
            "regenerated_acc": 0.5,
            "base_acc": 0.5,
        }
        for k in range(n)
    ]
    links = pair_links(rows, "pair-0")
    gradient, held, _ = (name for name, _, _ in LINKS)
    assert links.rho[gradient] == pytest.approx(1.0)
    for name in (gradient, held):
        assert abs(links.control[name]) < 0.05
        assert links.control_hit[name] == pytest.approx(3 / n, abs=0.05)
    again = pair_links(rows, "pair-0")  # seeded (the accuracy link is NaN here: a constant drop)
    assert [again.control[k] for k in (gradient, held)] == [links.control[k] for k in (gradient, held)]


# ---- resume -------------------------------------------------------------------------------------


def test_a_rerun_measures_only_the_pairs_not_yet_written(setup, tmp_path, monkeypatch):
    lm, _, scorer, allowed, pair = setup
    prompts = [(pair.prompt_ids, "initial"), *gi.edited_prompts(list(pair.prompt_ids), allowed, 1, seed=0)]
    pairs = gi.sample_pairs(prompts, 3, seed=0)
    out = tmp_path / "diag.csv"
    context = {"model": "tiny", "task": "parity"}
    assert gi.run_pairs(lm, scorer, pairs[:2], CONFIG, allowed, 2, out, context) == 2
    first = read_rows(out)
    measured = []
    real = gi.measure_pair
    monkeypatch.setattr(gi, "measure_pair", lambda lm, sc, p, *a: measured.append(p.index) or real(lm, sc, p, *a))
    assert gi.run_pairs(lm, scorer, pairs, CONFIG, allowed, 2, out, context) == 1
    assert measured == [2]
    rows = read_rows(out)
    assert rows[: len(first)] == first and {r["pair"] for r in rows} == {"0", "1", "2"}
    assert gi.run_pairs(lm, scorer, pairs, CONFIG, allowed, 2, out, {"model": "other", "task": "parity"}) == 3
    assert summarize(rows)["pairs"] == 3  # the CSV alone recomputes the statistics
