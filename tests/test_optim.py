"""Optimizers against torch.optim and hand-computed steps; clipping against
torch.nn.utils.clip_grad_norm_; schedules against torch's schedulers; state round trips."""

import json

import numpy as np
import pytest

from kioku.nn.embedding import Embedding
from kioku.nn.linear import Linear
from kioku.nn.module import Module
from kioku.train import SGD, Adam, AdamW, ReduceOnPlateau, StepDecay, clip_grad_norm

torch = pytest.importorskip("torch")

SHAPES = [(3, 4), (5,), (2, 2, 3)]


pytestmark = pytest.mark.torch


def make_problem(seed=0, steps=6):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s) for s in SHAPES]
    grads_per_step = [[rng.standard_normal(s) for s in SHAPES] for _ in range(steps)]
    return params, grads_per_step


def run_kioku(cls, kwargs, seed=0, steps=6):
    params, grads_per_step = make_problem(seed, steps)
    grads = [np.zeros_like(p) for p in params]
    opt = cls(list(zip(params, grads)), **kwargs)
    history = []
    for step_grads in grads_per_step:
        for g, new in zip(grads, step_grads):
            g[...] = new
        opt.step()
        history.append([p.copy() for p in params])
    return history


def run_torch(cls, kwargs, seed=0, steps=6):
    params, grads_per_step = make_problem(seed, steps)
    tensors = [torch.tensor(p, requires_grad=True) for p in params]
    opt = cls(tensors, **kwargs)
    history = []
    for step_grads in grads_per_step:
        for t, new in zip(tensors, step_grads):
            t.grad = torch.tensor(new)
        opt.step()
        history.append([t.detach().numpy().copy() for t in tensors])
    return history


CASES = [
    (SGD, torch.optim.SGD, {"lr": 0.1}),
    (SGD, torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}),
    (SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    (SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.5, "dampening": 0.3, "weight_decay": 0.1}),
    (Adam, torch.optim.Adam, {"lr": 1e-2}),
    (Adam, torch.optim.Adam, {"lr": 3e-3, "betas": (0.3, 0.99), "eps": 1e-6, "weight_decay": 0.1}),
    (AdamW, torch.optim.AdamW, {"lr": 1e-2}),
    (AdamW, torch.optim.AdamW, {"lr": 2e-2, "betas": (0.8, 0.9), "weight_decay": 0.3}),
]


@pytest.mark.parametrize("ours, theirs, kwargs", CASES)
def test_steps_match_torch_optim_in_float64(ours, theirs, kwargs):
    for step, (mine, ref) in enumerate(zip(run_kioku(ours, kwargs), run_torch(theirs, kwargs))):
        for a, b in zip(mine, ref):
            np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-15, err_msg=f"step {step}")


@pytest.mark.parametrize("ours, theirs, kwargs", CASES)
def test_steps_in_blocks_over_threads_equal_whole_array_steps(monkeypatch, ours, theirs, kwargs):
    """The update runs over cache-sized blocks on every thread (kioku.nn.blockwise): with
    blocks of 4 elements over 3 threads, the same float32 parameters, bit for bit, as one
    block of the whole array; a non-contiguous parameter takes one whole call."""
    from kioku.kernels import _threads

    monkeypatch.setenv("KIOKU_NUM_THREADS", "3")
    shapes = [(9, 7), (30,), (4, 5, 3), (6, 8)]

    def run(block_bytes):
        monkeypatch.setattr(_threads, "ROW_BLOCK_BYTES", block_bytes)
        rng = np.random.default_rng(1)
        params = [rng.standard_normal(s).astype(np.float32) for s in shapes]
        params[-1] = np.asfortranarray(params[-1])  # not C-contiguous
        grads = [np.zeros_like(p) for p in params]
        opt = ours(list(zip(params, grads)), **kwargs)
        for _ in range(4):
            for g in grads:
                g[...] = rng.standard_normal(g.shape)
            opt.step()
        return params

    element_bytes = 4 * (4 if ours is not SGD else 3)
    for whole, blocked in zip(run(1 << 30), run(4 * element_bytes)):
        np.testing.assert_array_equal(blocked, whole)


def test_sgd_momentum_steps_by_hand():
    p, g = np.array([1.0, -2.0]), np.zeros(2)
    opt = SGD([(p, g)], lr=0.1, momentum=0.9)
    g[...] = [0.5, 1.0]
    opt.step()  # buf = g = [0.5, 1]; p = [1 - 0.05, -2 - 0.1]
    np.testing.assert_allclose(p, [0.95, -2.1], rtol=1e-15)
    g[...] = [1.0, 0.0]
    opt.step()  # buf = 0.9 [0.5, 1] + [1, 0] = [1.45, 0.9]; p -= 0.1 buf
    np.testing.assert_allclose(p, [0.95 - 0.145, -2.1 - 0.09], rtol=1e-15)


def test_adam_and_adamw_first_step_by_hand():
    # step 1: m = (1-b1) g, v = (1-b2) g^2, so m / (1-b1) = g and sqrt(v / (1-b2)) = |g|:
    # p -= lr * g / (|g| + eps)
    p, g = np.array([1.0, -2.0, 0.5]), np.array([0.2, -4.0, 1e-3])
    Adam([(p, g)], lr=0.01, eps=1e-8).step()
    np.testing.assert_allclose(
        p,
        [
            1.0 - 0.01 * 0.2 / (0.2 + 1e-8),
            -2.0 + 0.01 * 4 / (4 + 1e-8),
            0.5 - 0.01 * 1e-3 / (1e-3 + 1e-8),
        ],
        rtol=1e-14,
    )
    p = np.array([1.0, -2.0, 0.5])
    AdamW([(p, g)], lr=0.01, weight_decay=0.5).step()  # decay first: p *= 1 - 0.005
    expected = np.array([1.0, -2.0, 0.5]) * 0.995 - 0.01 * g / (np.abs(g) + 1e-8)
    np.testing.assert_allclose(p, expected, rtol=1e-14)


class Tied(Module):
    def __init__(self):
        super().__init__()
        self.add_module("embedding", Embedding(5, 3, dtype=np.float64, rng=0))
        self.add_module("decoder", Linear(3, 5, dtype=np.float64, rng=1, tied_to=self.embedding))


def test_tied_parameters_are_stepped_once_and_lr_is_mutable():
    model = Tied()
    assert len(model.parameters()) == 3
    opt = SGD(model, lr=0.5)
    assert len(opt.params) == 2
    weight = model.embedding.params["weight"]
    before = weight.copy()
    model.embedding.grads["weight"][...] = 1.0
    opt.step()
    np.testing.assert_allclose(weight, before - 0.5)
    opt.lr = 0.25
    opt.step()
    np.testing.assert_allclose(weight, before - 0.75)
    opt.zero_grad()
    assert not model.embedding.grads["weight"].any()


@pytest.mark.parametrize("cls, kwargs", [(SGD, {"lr": 0.1, "momentum": 0.9}), (Adam, {"lr": 0.01})])
def test_state_dict_round_trip_continues_bit_for_bit(cls, kwargs):
    params, grads_per_step = make_problem(3, steps=6)
    grads = [np.zeros_like(p) for p in params]
    opt = cls(list(zip(params, grads)), **kwargs)
    resumed_params = None
    for i, step_grads in enumerate(grads_per_step):
        if i == 3:
            state = opt.state_dict()
            json.dumps({k: v for k, v in state.items() if k != "arrays"})
            resumed_params = [p.copy() for p in params]
            resumed_grads = [np.zeros_like(p) for p in params]
            resumed = cls(list(zip(resumed_params, resumed_grads)), lr=123.0)
            resumed.load_state_dict(state)
            assert resumed.lr == kwargs["lr"] and resumed.step_count == 3
        for g, new in zip(grads, step_grads):
            g[...] = new
        opt.step()
        if resumed_params is not None:
            for g, new in zip(resumed_grads, step_grads):
                g[...] = new
            resumed.step()
    for a, b in zip(params, resumed_params):
        np.testing.assert_array_equal(a, b)


def test_load_state_dict_refuses_mismatches():
    p = np.zeros((2, 3))
    opt = Adam([(p, np.ones_like(p))])
    opt.step()
    state = opt.state_dict()
    with pytest.raises(ValueError, match=r"state\['type'\]: expected 'SGD', found 'Adam'"):
        SGD([(p, np.ones_like(p))], lr=1).load_state_dict(state)
    q = np.zeros((3, 3))
    other = Adam([(q, np.ones_like(q))])
    with pytest.raises(
        ValueError, match=r"state\['arrays'\]\['exp_avg.0'\]: expected shape \(3, 3\)"
    ):
        other.load_state_dict(state)
    assert other.step_count == 0  # nothing was set
    state["arrays"]["exp_avg.7"] = np.zeros((2, 3))
    with pytest.raises(KeyError, match="exp_avg.7"):
        opt.load_state_dict(state)


def test_bad_arguments():
    p = np.zeros(2)
    with pytest.raises(ValueError, match="lr: expected a number >= 0, found -1"):
        SGD([(p, p.copy())], lr=-1)
    with pytest.raises(ValueError, match="nesterov"):
        SGD([(p, p.copy())], lr=1, nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        Adam([(p, p.copy())], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match=r"params\[0\]: gradient shape \(3,\)"):
        SGD([(p, np.zeros(3))], lr=1)
    with pytest.raises(ValueError, match="params: expected at least one"):
        SGD([], lr=1)


# -- clipping ------------------------------------------------------------------------


@pytest.mark.parametrize("max_norm, norm_type", [(0.5, 2.0), (100.0, 2.0), (0.3, float("inf"))])
def test_clip_matches_torch(max_norm, norm_type):
    rng = np.random.default_rng(4)
    grads = [rng.standard_normal(s) for s in SHAPES]
    tensors = [torch.zeros(s, dtype=torch.float64, requires_grad=True) for s in SHAPES]
    for t, g in zip(tensors, grads):
        t.grad = torch.tensor(g)
    ref = torch.nn.utils.clip_grad_norm_(tensors, max_norm, norm_type)
    total = clip_grad_norm(grads, max_norm, norm_type)
    assert total == pytest.approx(ref.item(), rel=1e-14)
    for g, t in zip(grads, tensors):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-14)
    if max_norm < total:
        after = np.sqrt(sum(np.sum(g * g) for g in grads)) if norm_type == 2 else None
        if after is not None:
            assert after == pytest.approx(max_norm, rel=1e-5)


def test_clip_counts_a_tied_gradient_once():
    model = Tied()
    model.embedding.grads["weight"][...] = 1.0  # 15 ones; the decoder's weight is the same array
    model.decoder.grads["bias"][...] = 0.0
    total = clip_grad_norm(model, 1.0)
    assert total == pytest.approx(np.sqrt(15))
    assert np.sqrt(np.sum(model.embedding.grads["weight"] ** 2)) == pytest.approx(1.0, rel=1e-5)
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm(model, 0)


# -- schedules -----------------------------------------------------------------------


def lr_holder(lr):
    p = np.zeros(1)
    return SGD([(p, np.zeros(1))], lr=lr)


def test_step_decay_matches_steplr_and_expresses_zaremba():
    opt = lr_holder(0.3)
    sched = StepDecay(opt, gamma=0.1, step_size=3)
    ref_param = torch.zeros(1, requires_grad=True)
    ref_opt = torch.optim.SGD([ref_param], lr=0.3)
    ref = torch.optim.lr_scheduler.StepLR(ref_opt, step_size=3, gamma=0.1)
    for _ in range(10):
        assert opt.lr == pytest.approx(ref_opt.param_groups[0]["lr"], rel=1e-12)
        ref_opt.step()
        ref.step()
        sched.step()
    zaremba = lr_holder(1.0)
    sched = StepDecay(zaremba, gamma=0.5, step_size=1, start_epoch=4)
    rates = [zaremba.lr]
    for _ in range(12):
        rates.append(sched.step())
    assert rates == [1, 1, 1, 1, 0.5, 0.25, 0.125, 2**-4, 2**-5, 2**-6, 2**-7, 2**-8, 2**-9]


def test_step_decay_state_round_trip():
    opt = lr_holder(1.0)
    sched = StepDecay(opt, gamma=0.5, start_epoch=2)
    for _ in range(4):
        sched.step()
    state = json.loads(json.dumps(sched.state_dict()))
    other_opt = lr_holder(1.0)
    other = StepDecay(other_opt, gamma=0.9)
    other.load_state_dict(state)
    assert other_opt.lr == opt.lr == 0.125
    assert other.step() == sched.step()
    with pytest.raises(KeyError, match="state: expected keys"):
        other.load_state_dict({"epoch": 1})


def test_reduce_on_plateau_matches_torch():
    metrics = [1.0, 0.9, 0.95, 0.9, 0.91, 0.92, 0.899, 0.95, 0.96, 0.97, 0.98, 0.5, 0.6, 0.7, 0.8]
    kwargs = dict(factor=0.5, patience=2, threshold=0.01, cooldown=1, min_lr=0.02)
    opt = lr_holder(0.1)
    sched = ReduceOnPlateau(opt, **kwargs)
    ref_param = torch.zeros(1, requires_grad=True)
    ref_opt = torch.optim.SGD([ref_param], lr=0.1)
    ref = torch.optim.lr_scheduler.ReduceLROnPlateau(ref_opt, **kwargs)
    rates = []
    for i, m in enumerate(metrics):
        if i == 7:  # resume from a saved state mid-way
            state = json.loads(json.dumps(sched.state_dict()))
            sched = ReduceOnPlateau(opt)
            sched.load_state_dict(state)
        sched.step(m)
        ref_opt.step()
        ref.step(m)
        rates.append(opt.lr)
        assert opt.lr == pytest.approx(ref_opt.param_groups[0]["lr"], rel=1e-12), i
    assert min(rates) == 0.02 and rates[0] == 0.1


def test_reduce_on_plateau_max_mode_and_bad_arguments():
    opt = lr_holder(1.0)
    sched = ReduceOnPlateau(
        opt, mode="max", factor=0.1, patience=0, threshold_mode="abs", threshold=0.1
    )
    sched.step(0.5)
    sched.step(0.55)  # not better by 0.1: reduce
    assert opt.lr == pytest.approx(0.1)
    sched.step(0.7)
    assert opt.lr == pytest.approx(0.1)
    with pytest.raises(ValueError, match="mode"):
        ReduceOnPlateau(opt, mode="up")
    with pytest.raises(ValueError, match="factor"):
        ReduceOnPlateau(opt, factor=1.5)
