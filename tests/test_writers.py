"""The writer of the text methods: the task model by default (counted as before), another model, or an
OpenAI-compatible endpoint reached over a real HTTP round trip to a server on 127.0.0.1 that each test starts
(tests/openai_server.py); usage counted apart and in the budget; one-line errors; a writer failing
mid-run loses no completed step."""

from __future__ import annotations

import socket

import pytest

from greater.lifecycle.checkpoint import load_checkpoint
from greater.lifecycle.context import context_for
from greater.optimizers.base import BudgetConfig
from greater.optimizers.registry import build_optimizer
from greater.usage import Ledger
from greater.writers import EndpointSpec, ModelSpec, WriterError, parse_writer, writer_usage
from greater.writers.build import build_writer, writer_for
from greater.writers.local import ModelWriter, TaskModelWriter
from tests.openai_server import OpenAIServer
from tests.test_baselines import GOOD, comparable, scripted_reply, small_config, walk_task
from tests.tiny import tiny_language_model

pytest.importorskip("openai")
from greater.lifecycle.loop import optimize
from greater.writers.endpoint import EndpointWriter  # (needs the writer extra)


class Replies:
    """A server's model: `scripted_reply` (valid and malformed prompts, the same for the same seed),
    None (no content) from call `fail_from` on."""

    def __init__(self, fail_from: int | None = None):
        self.calls, self.fail_from = 0, fail_from

    def __call__(self, messages, max_new_tokens, temperature=0.0, n=1, seed=None):
        self.calls += 1
        if self.fail_from is not None and self.calls >= self.fail_from:
            return [[None] * n for _ in messages]
        return [[scripted_reply(m, seed or 0, i) for i in range(n)] for m in messages]


def context(lm, task, **kwargs):
    return context_for(lm, task, max_reasoning_tokens=3, seed=1, **kwargs)


def run_with(writer_of, method="apo", run_dir=None, resume_state=None, budget=None, n_steps=2):
    """A method's run on the tiny task model, its writer made by `writer_of(lm)`."""
    lm, task = tiny_language_model(), walk_task()
    optimizer = build_optimizer(small_config(method, n_steps=n_steps), writer=writer_of(lm))
    ctx = context(lm, task, run_dir=run_dir, resume_state=resume_state, budget=budget)
    return optimize(optimizer, lm, task, ctx), lm


def endpoint(server, **kw):
    return EndpointSpec(base_url=server.base_url, model=server.model, **kw)


# ---- the config value ----------------------------------------------------------------------------
def test_parse_writer_reads_the_three_forms():
    assert parse_writer(None) is None and parse_writer("null") is None
    assert parse_writer("gemma3-270m") == ModelSpec("gemma3-270m")
    spec = parse_writer({"base_url": "http://127.0.0.1:9/v1", "model": "m", "max_tokens": 32})
    assert spec == EndpointSpec("http://127.0.0.1:9/v1", "m", max_tokens=32)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("gpt-17", "no such model config"),
        ({"model": "m"}, "base_url is missing"),
        ({"base_url": "127.0.0.1:8000", "model": "m"}, r"give an http\(s\) URL"),
        ({"base_url": "http://x/v1", "model": "m", "temperature": 1}, "temperature: not an endpoint setting"),
        ({"base_url": "http://x/v1", "model": "m", "api_key_env": "GREATER_NO_SUCH_KEY"}, "is not set"),
        ({"base_url": "http://x/v1", "model": "m", "timeout": 0}, "timeout > 0"),
    ],
)
def test_bad_writer_values_fail_in_one_line(value, says):
    with pytest.raises(WriterError, match=says) as err:
        parse_writer(value)
    assert "\n" not in str(err.value) and "optimizer.writer" in str(err.value)


def test_the_method_configs_take_a_writer_and_greater_has_none():
    assert small_config("apo", writer="gemma3-270m").writer == "gemma3-270m"
    assert writer_for(small_config("greater"), tiny_language_model()) is None
    with pytest.raises(TypeError, match="no writer setting"):
        build_optimizer(small_config("greater"), writer=TaskModelWriter(tiny_language_model()))


# ---- the task model and another model ------------------------------------------------------------
def test_default_writer_is_the_task_model_counted_as_optimizer():
    lm = tiny_language_model()
    config = small_config("apo")
    writer = writer_for(config, lm)
    optimizer = build_optimizer(config, writer=writer)  # given at construction, never patched in
    assert isinstance(writer, TaskModelWriter) and optimizer.writer is writer
    assert build_optimizer(config).writer is None  # without one, the task model writes
    direct = lm.complete(["Say hi."], 4)
    assert writer.complete(["Say hi."], 4) == direct
    assert lm.usage.of("optimizer").generations == 1 and "writer" not in lm.usage.roles
    assert writer_usage(writer, lm.usage.flat())["kind"] == "task_model"


def test_another_model_writes_counted_apart_and_in_the_budget():
    def other_model(lm):
        return ModelWriter(tiny_language_model(seed=3, usage=lm.usage))  # built counting into the run's

    result, lm = run_with(other_model)
    assert lm.usage.of("writer").generations > 0 and lm.usage.of("writer").tokens_generated > 0
    assert "optimizer" not in lm.usage.roles  # the task model wrote nothing
    assert any("writer.generations" in r.model_calls for r in result.history)  # per step, too
    usage = writer_usage(build_writer(None, lm), lm.usage.flat())
    assert usage["calls"] == 0  # the task model's own "optimizer" role is empty
    # the writer's tokens count in the token budget: a budget below the first step's total stops after it
    first = sum(v for k, v in result.history[0].model_calls.items() if k.endswith(("tokens_generated", "forwarded")))
    budget = BudgetConfig(max_tokens=int(first))
    capped, _ = run_with(other_model, budget=budget, n_steps=3)
    assert capped.stopped_because and "token budget" in capped.stopped_because and len(capped.history) == 1


# ---- the endpoint, over HTTP ---------------------------------------------------------------------
def test_endpoint_round_trip_serves_the_tiny_model():
    lm = tiny_language_model()
    with OpenAIServer(lm.complete, model="tiny", count_tokens=lambda t: len(lm.encode(t))) as server:
        ledger = Ledger()
        writer = EndpointWriter(endpoint(server), ledger)
        replies = writer.complete(["Write one instruction.", "Another."], 6, n=2, seed=5)
    assert replies == lm.complete(["Write one instruction.", "Another."], 6, n=2, seed=5)
    assert ledger.of("writer").calls == 2 and ledger.of("writer").generations == 4
    assert ledger.of("writer").tokens_forwarded == len(lm.encode("Write one instruction.")) + len(lm.encode("Another."))


def test_apo_with_an_endpoint_writer_proposes_through_http_and_scores_the_proposals():
    replies = Replies()
    with OpenAIServer(replies, model="writer-1", cost_per_token=0.001) as server:
        result, lm = run_with(lambda lm: EndpointWriter(endpoint(server, max_tokens=6), lm.usage))
        requests = list(server.requests)
    assert requests and all(r["model"] == "writer-1" and r["max_tokens"] <= 6 for r in requests)
    candidates = [c for h in result.history for c in h.details["candidates"]]
    assert candidates and all(c["prompt"] in GOOD and "train" in c for c in candidates)  # validated, scored
    assert result.extra["proposals"]["rejected_total"] > 0  # the malformed replies met the validator
    usage = writer_usage(EndpointWriter(endpoint(server), lm.usage), lm.usage.flat())
    assert usage["calls"] == len(requests) and usage["prompt_tokens"] > 0 and usage["cost"] > 0
    assert lm.usage.of("optimizer").generations == 0  # the task model wrote nothing


def test_endpoint_errors_are_one_line():
    with OpenAIServer(Replies(), model="served", api_key="sk-right") as server, pytest.MonkeyPatch.context() as mp:
        mp.setenv("GREATER_WRONG_KEY", "sk-wrong")
        mp.setenv("GREATER_RIGHT_KEY", "sk-right")
        cases = {
            "refused the key (401)": endpoint(server, api_key_env="GREATER_WRONG_KEY"),
            "does not serve it (404)": EndpointSpec(server.base_url, "other", api_key_env="GREATER_RIGHT_KEY"),
        }
        for says, spec in cases.items():
            writer = EndpointWriter(spec, Ledger())
            with pytest.raises(WriterError, match=r"\(\d+\)") as err:
                writer.complete(["hi"], 4)
            assert says in str(err.value) and "\n" not in str(err.value)
    with OpenAIServer(Replies(fail_from=1), model="served") as server, pytest.raises(WriterError, match="content"):
        EndpointWriter(endpoint(server), Ledger()).complete(["hi"], 4)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    spec = EndpointSpec(f"http://127.0.0.1:{closed}/v1", "m", max_retries=1, timeout=2)
    with pytest.raises(WriterError, match="cannot connect") as err:
        EndpointWriter(spec, Ledger()).complete(["hi"], 4)
    assert "start the server" in str(err.value)


def test_a_writer_failing_mid_run_keeps_the_completed_steps_and_a_rerun_ends_like_an_uninterrupted_one(tmp_path):
    with OpenAIServer(Replies(), model="w") as server:
        straight, _ = run_with(lambda lm: EndpointWriter(endpoint(server), lm.usage))
        calls = len(server.requests)
    server_calls = calls // 2 + 1  # fails inside step 2 (each step asks about as often)
    broken = OpenAIServer(Replies(fail_from=server_calls), model="w")
    with broken, pytest.raises(WriterError, match="without content"):
        run_with(lambda lm: EndpointWriter(endpoint(broken), lm.usage), run_dir=tmp_path, n_steps=3)
    state = load_checkpoint(tmp_path, "apo")
    assert state is not None and state["step"] >= 1
    with OpenAIServer(Replies(), model="w") as server:
        resumed, _ = run_with(
            lambda lm: EndpointWriter(endpoint(server), lm.usage), run_dir=tmp_path, resume_state=state
        )
    assert resumed.final_prompt == straight.final_prompt
    assert comparable(resumed.history) == comparable(straight.history)


# ---- the tables ------------------------------------------------------------------------------------
def test_runs_with_another_writer_are_rows_of_their_own_in_the_tables():
    import pandas as pd

    from greater.compare.collect import writer_of
    from greater.lifecycle.results import RunResult
    from recipes.tables import table2

    def result(writer):
        return RunResult("navigate", "smollm2-135m", "apo", 0, "a", "b", {}, [], 1, {}, writer=writer)

    assert writer_of(result(None)) is None
    assert writer_of(result({"kind": "task_model", "name": "smollm2-135m"})) is None
    assert writer_of(result({"kind": "model", "name": "gemma3-270m"})) == "gemma3-270m"
    assert writer_of(result({"kind": "endpoint", "name": "big @ http://h/v1"})) == "big"
    row = {"task": "navigate", "model": "smollm2-135m", "eval_model": "gemma3-270m", "prompt_kind": "final"}
    rows = pd.DataFrame(
        [
            {**row, "optimizer": "apo", "writer": None, "acc": 0.5},
            {**row, "optimizer": "apo", "writer": "big", "acc": 0.75},
        ]
    )
    table = table2(rows)
    assert table.loc[("APO (writer: big)", "smollm2-135m -> gemma3-270m"), "navigate"] == 75.0
    assert table.loc[("APO", "smollm2-135m -> gemma3-270m"), "navigate"] == 50.0
