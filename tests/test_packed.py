"""Packed linear layers (greater.engine.packed), switched by greater.engine.kernels: torch's product up to
float rounding, forward and backward; batch-invariant rows; repacked when the weight changes; switched off
by transformers_kernels; and the engine's tokens and losses the same with the kernels on and off."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from greater.engine.kernels import transformers_kernels
from greater.engine.packed import PackedLinear, onednn_works, pack_linears
from greater.engine.rollouts import Scorer
from tests.tiny import tiny_language_model

pytestmark = pytest.mark.skipif(not onednn_works(), reason="this torch has no working oneDNN packed product")


def _layer(bias: bool, seed: int = 0) -> tuple[nn.Linear, PackedLinear]:
    torch.manual_seed(seed)
    plain = nn.Linear(48, 80, bias=bias)
    reference = nn.Linear(48, 80, bias=bias)
    reference.load_state_dict(plain.state_dict())
    return reference, PackedLinear.wrap(plain)


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("shape", [(1, 48), (7, 48), (2, 5, 48)])
def test_forward_is_torchs_product_up_to_rounding(bias, shape):
    reference, packed = _layer(bias)
    x = torch.randn(*shape)
    with torch.no_grad():
        got, want = packed(x), reference(x)
    assert got.shape == want.shape
    assert torch.allclose(got, want, atol=1e-5, rtol=1e-5)


def test_a_rows_result_does_not_depend_on_its_batch():
    _, packed = _layer(bias=False)
    x = torch.randn(33, 48)
    with torch.no_grad():
        whole = packed(x)
        for rows in (slice(0, 1), slice(3, 11), slice(8, 33)):
            assert torch.equal(packed(x[rows]), whole[rows])


def test_input_gradient_matches_autograd_through_torchs_product():
    reference, packed = _layer(bias=True)
    x = torch.randn(3, 4, 48, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_(True)
    upstream = torch.randn(3, 4, 80)
    (grad,) = torch.autograd.grad((packed(x) * upstream).sum(), x)
    (want,) = torch.autograd.grad((reference(x_ref) * upstream).sum(), x_ref)
    assert torch.allclose(grad, want, atol=1e-5, rtol=1e-5)


def test_an_edited_weight_is_packed_again():
    reference, packed = _layer(bias=False)
    x = torch.randn(4, 48)
    with torch.no_grad():
        packed(x)  # packs
        packed.weight.mul_(2.0)
        reference.weight.mul_(2.0)
        assert torch.allclose(packed(x), reference(x), atol=1e-5, rtol=1e-5)


def test_transformers_kernels_runs_torchs_own_product_then_restores():
    model = nn.Sequential(nn.Linear(48, 80), nn.Tanh(), nn.Linear(80, 16))
    pack_linears(model)
    x = torch.randn(5, 48)
    with torch.no_grad():
        with transformers_kernels(model):
            plain = model(x)
            assert all(not m.enabled for m in model.modules() if isinstance(m, PackedLinear))
        want = F.linear(torch.tanh(F.linear(x, model[0].weight, model[0].bias)), model[2].weight, model[2].bias)
        assert torch.equal(plain, want)
        assert all(m.enabled for m in model.modules() if isinstance(m, PackedLinear))


def test_packing_keeps_the_models_parameters_and_tied_embeddings():
    lm = tiny_language_model(seed=0)
    model = lm.model
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert lm.kernels.packed_layers == len(linears) > 0 and all(isinstance(m, PackedLinear) for m in linears)
    plain = tiny_language_model(seed=0, cpu_kernels=False)
    assert plain.kernels.packed_layers == 0 and not any(isinstance(m, PackedLinear) for m in plain.model.modules())
    assert model.state_dict().keys() == plain.model.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), plain.model.state_dict().values()))
    if model.config.tie_word_embeddings:
        assert model.lm_head.weight is model.get_input_embeddings().weight


def test_no_packing_off_a_cpu_float32_model():
    assert pack_linears(nn.Sequential(nn.Linear(8, 8)).to(torch.bfloat16)) == 0
    assert pack_linears(nn.Sequential(nn.Linear(8, 8)).to("meta")) == 0


def test_engine_tokens_and_losses_are_the_same_with_cpu_kernels_on_and_off(parity_task):
    """The contract the setting promises: same rollouts, losses equal up to float rounding."""
    results = []
    for packed in (True, False):
        lm = tiny_language_model(seed=0, cpu_kernels=packed)
        scorer = Scorer(lm, parity_task, "after", 12)
        score = scorer.score_text("Think step by step.", parity_task.train)
        results.append(score)
    on, off = results
    assert on.loss == pytest.approx(off.loss, abs=1e-5)
    assert on.accuracy == off.accuracy
    assert [r.reasoning for r in on.rollouts] == [r.reasoning for r in off.rollouts]
