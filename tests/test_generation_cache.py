"""The generation cache on disk (greater.engine.generation_cache): a hit returns exactly what a fresh run
returns, other models and settings miss, it is bounded, clearable and safe for two writers, and its hits are
counted in the run's usage without changing the work counted."""

from __future__ import annotations

import multiprocessing
import sqlite3

import pytest

from greater.engine.decode import Tail
from greater.engine.generation_cache import (
    FILE,
    Generation,
    GenerationCache,
    clear,
    main,
    stored_bytes,
)
from greater.engine.model_identity import weights_fingerprint
from greater.engine.rollouts import Scorer
from greater.models.architectures import TINY
from greater.models.random_weights import build
from tests.test_random_models import needs_tokenizer
from tests.tiny import tiny_language_model

TEXTS = ["a", "a much longer input here", "mid size", "Is 4 even? think"]


def cached_lm(tmp_path, seed: int = 0, **kwargs):
    lm = tiny_language_model(seed=seed, **kwargs)
    lm.use_generation_cache(tmp_path, max_mb=64)
    return lm


def tails(lm) -> list[Tail]:
    return [Tail(lm.encode(" so: yes"), 3) for _ in TEXTS]


def test_a_hit_returns_the_tokens_losses_and_answers_of_a_fresh_run(tmp_path):
    fresh = tiny_language_model(seed=0)  # no cache at all
    inputs = [fresh.encode(t) for t in TEXTS]
    want_plain = fresh.generate(inputs, 12)
    want_tokens, want_loss, want_exact = fresh.generate_and_score(inputs, 12, tails=tails(fresh))
    want_answers = fresh.generate_and_answer(inputs, 12, fresh.encode(" so:"), 4)

    writer = cached_lm(tmp_path)  # a first run: every row is decoded and kept
    assert writer.generate(inputs, 12) == want_plain
    assert writer.usage.of("task").cache_misses == 4 and writer.usage.of("task").cache_hits == 0

    reader = cached_lm(tmp_path)  # a later run, another process's model object: every row is read
    assert reader.generate(inputs, 12) == want_plain
    assert reader.usage.of("task").cache_hits == 4 and reader.usage.of("task").calls == 0  # nothing decoded
    for lm in (writer, reader):  # scored tails and answers: the first writes them, the second reads them
        tokens, loss, exact = lm.generate_and_score(inputs, 12, tails=tails(lm))
        assert tokens == want_tokens and loss.tolist() == want_loss.tolist() and exact.tolist() == want_exact.tolist()
        assert lm.generate_and_answer(inputs, 12, lm.encode(" so:"), 4) == want_answers
    assert reader.usage.of("task").cache_hits == 12 and reader.usage.of("task").calls == 0


def test_a_hit_counts_the_work_it_stands_for_so_budgets_do_not_depend_on_the_cache(tmp_path):
    inputs = [tiny_language_model().encode(t) for t in TEXTS]
    cold, warm = cached_lm(tmp_path), cached_lm(tmp_path)
    cold.generate_and_score(inputs, 12, tails=tails(cold))
    warm.generate_and_score(inputs, 12, tails=tails(warm))
    c, w = cold.usage.of("task"), warm.usage.of("task")
    assert (w.generations, w.tokens_generated) == (c.generations, c.tokens_generated)
    assert abs(w.tokens_forwarded - c.tokens_forwarded) <= len(inputs)  # a row's end may carry one more token
    assert (c.cache_misses, c.cache_hits, w.cache_misses, w.cache_hits) == (4, 0, 0, 4)


def test_only_the_rows_not_held_are_decoded(tmp_path):
    lm = cached_lm(tmp_path)
    inputs = [lm.encode(t) for t in TEXTS]
    first = lm.generate(inputs[:2], 10)
    both = lm.generate(inputs, 10)
    assert both[:2] == first and both == tiny_language_model(seed=0).generate(inputs, 10)
    assert (lm.usage.of("task").cache_hits, lm.usage.of("task").cache_misses) == (2, 4)


def test_another_model_or_other_decoding_settings_miss(tmp_path):
    lm = cached_lm(tmp_path)
    inputs = [lm.encode(t) for t in TEXTS]
    lm.generate_and_score(inputs, 12, tails=tails(lm))
    other = cached_lm(tmp_path, seed=1)  # other weights
    other.generate_and_score(inputs, 12, tails=tails(other))
    assert other.usage.of("task").cache_hits == 0
    lm.generate_and_score(inputs, 11, tails=tails(lm))  # another token limit
    lm.generate_and_score(inputs, 12, tails=[Tail(lm.encode(" so: no"), 3)] * 4)  # another scored tail
    lm.generate(inputs, 12)  # no end at all
    lm.generate_and_answer(inputs, 12, lm.encode(" so:"), 4)  # forced tokens and an answer
    lm.stop_ids = lm.stop_ids | {lm.encode("e")[0]}  # other stop tokens
    lm.generate(inputs, 12)
    assert lm.usage.of("task").cache_hits == 0
    keys = {lm.generations.key(inputs[0], 12, lm.stop_ids, end) for end in (None, Tail([1, 2], 1), Tail([1, 2], 0))}
    assert len(keys) == 3


def test_the_weights_fingerprint_tells_models_apart():
    a, b, c = (tiny_language_model(seed=s).model for s in (0, 0, 1))
    assert weights_fingerprint(a) == weights_fingerprint(b) != weights_fingerprint(c)


@needs_tokenizer
def test_random_weight_models_of_other_seeds_or_shrinks_have_other_fingerprints(tmp_path):
    path = "meta-llama/Llama-3.2-1B-Instruct"
    prints = [
        weights_fingerprint(build(path, shrink, seed=seed, dtype="float32", cache_dir=tmp_path)[0])
        for shrink, seed in [(TINY, 3), (TINY, 3), (TINY, 4), ({**TINY, "num_hidden_layers": 1}, 3)]
    ]
    assert prints[0] == prints[1] and len(set(prints)) == 3


def test_the_scorer_of_a_later_run_reads_the_same_rollouts_and_counts_them_for_the_budget(tmp_path, parity_task):
    prompt = tiny_language_model().encode("Think step by step.")
    runs = []
    for _ in range(2):
        lm = cached_lm(tmp_path, seed=1)
        scorer = Scorer(lm, parity_task, "after", 16)
        runs.append((scorer.rollouts([prompt], parity_task.train)[0], lm.usage.of("task")))
    (first, cold), (second, warm) = runs
    assert second == first  # reasoning, loss and exact match, all equal
    assert warm.rollouts == cold.rollouts == len(parity_task.train)  # a max_rollouts budget stops at the same step
    assert warm.cache_hits == len(parity_task.train) and warm.calls == 1  # the prefixes' pass only


def test_least_recently_used_rows_go_past_the_cap(tmp_path):
    cache = GenerationCache(tmp_path / FILE, 256 * 1024, "model")
    rows = {cache.key([i], 8, {0}): Generation(list(range(200))) for i in range(1000)}
    items = list(rows.items())
    for start in range(0, len(items), 50):
        cache.put(dict(items[start : start + 50]))
        cache.get([items[0][0]])  # the first row stays in use
    kept = cache.get(list(rows))
    assert stored_bytes(sqlite3.connect(tmp_path / FILE)) <= 256 * 1024 + 64 * 1024  # one batch over the cap at most
    assert items[0][0] in kept and items[1][0] not in kept and items[-1][0] in kept
    assert 0 < len(kept) < 1000


def _write_rows(path: str, writer: int, n: int) -> None:
    cache = GenerationCache(path, 2**30, "model")
    for i in range(n):
        cache.put({cache.key([writer, i], 8, {0}): Generation([writer, i])})
        cache.get([cache.key([1 - writer, i], 8, {0})])
    assert not cache.failed


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    path = str(tmp_path / FILE)
    GenerationCache(path, 2**30, "model").close()  # the file and its table exist before the race
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=_write_rows, args=(path, w, 200)) for w in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    cache = GenerationCache(path, 2**30, "model")
    got = cache.get([cache.key([w, i], 8, {0}) for w in (0, 1) for i in range(200)])
    assert sorted(g.tokens for g in got.values()) == sorted([w, i] for w in (0, 1) for i in range(200))


def test_clear_empties_it_and_the_command_says_so(tmp_path, capsys):
    lm = cached_lm(tmp_path)
    lm.generate([lm.encode("a")], 6)
    assert main(["info", str(tmp_path)]) == 0 and "1 generations" in capsys.readouterr().out
    assert main(["clear", str(tmp_path)]) == 0 and "cleared 1 generations" in capsys.readouterr().out
    assert clear(tmp_path) == 0 and clear(tmp_path / "nowhere") == 0
    lm.generate([lm.encode("a")], 6)
    assert lm.usage.of("task").cache_hits == 0  # decoded again
    assert main(["wipe"]) == 2


def test_an_unreadable_cache_warns_once_and_the_run_goes_on(tmp_path, caplog):
    lm = cached_lm(tmp_path)
    inputs = [lm.encode(t) for t in TEXTS]
    lm.generations._db.close()  # any SQLite error from here on
    assert lm.generate(inputs, 8) == tiny_language_model(seed=0).generate(inputs, 8)
    assert lm.generations.failed and len([r for r in caplog.records if "generation cache" in r.message]) == 1
    assert lm.generate(inputs, 8) == tiny_language_model(seed=0).generate(inputs, 8)


def test_a_file_that_is_not_a_cache_warns_and_the_run_goes_on(tmp_path, caplog):
    (tmp_path / FILE).write_bytes(b"not a database, " * 100)
    lm = cached_lm(tmp_path)
    assert lm.generations.failed and any("clear" in r.message for r in caplog.records)
    assert lm.generate([lm.encode("a")], 6) == tiny_language_model(seed=0).generate([lm.encode("a")], 6)
    assert clear(tmp_path) == 0 and not (tmp_path / FILE).exists()  # clearing deletes the damaged file
    assert not cached_lm(tmp_path).generations.failed


@pytest.mark.parametrize("setting", ["generation_cache", "generation_cache_mb"])
def test_the_settings_are_declared_once_and_free_on_resume(setting):
    from greater.config import Resume, resume_policy

    assert resume_policy(setting) == Resume.free


@pytest.mark.slow
@needs_tokenizer
def test_a_run_reads_an_earlier_runs_generations_and_ends_with_the_same_result(tmp_path):
    """Off, on with an empty cache, on again: the same prompts and accuracies; the third run reads what the
    second wrote, counts it as the same rollouts, and says so in result.json's compute."""
    import json

    from tests.helpers import run_cli
    from tests.test_random_models import TINY_OVERRIDE

    results = {}
    for name, on in (("off", False), ("cold", True), ("warm", True)):
        out = tmp_path / name
        args = [
            "model=llama3.2-1b",
            "model.source=random",
            "model.device=cpu",
            TINY_OVERRIDE,
            "task.n_train=3",
            "task.n_dev=3",
            "task.n_test=4",
        ]
        args += ["optimizer.n_steps=2", "optimizer.n_groups=2", "optimizer.group_size=2", "max_reasoning_tokens=6"]
        args += ["logger.plots=false", "threads=1", f"cache_dir={tmp_path / 'cache'}", f"output_dir={out}"]
        proc = run_cli([*args, f"generation_cache={str(on).lower()}"])
        assert proc.returncode == 0, proc.stderr[-3000:]
        results[name] = json.loads((out / "result.json").read_text())
    same = ("final_prompt", "dev_acc")
    for name in ("cold", "warm"):
        assert {k: results[name][k] for k in same} == {k: results["off"][k] for k in same}
        assert [r["acc"] for r in results[name]["test"]] == [r["acc"] for r in results["off"]["test"]]
        assert results[name]["compute"]["task.rollouts"] == results["off"]["compute"]["task.rollouts"]
    assert "task.cache_hits" not in results["off"]["compute"] and "task.cache_hits" not in results["cold"]["compute"]
    assert results["warm"]["compute"]["task.cache_hits"] > 0 and "task.cache_misses" not in results["warm"]["compute"]
    assert [r["cache_hits"] for r in results["off"]["test"]] == [None, None]  # the test split, outside compute
    assert [r["cache_hits"] for r in results["cold"]["test"]] == [0, 0]
    assert [r["cache_hits"] for r in results["warm"]["test"]] == [4, 4]
