"""Embedding, Linear, Dropout and the losses: finite-difference gradients, PyTorch parity,
bad-input errors."""

import numpy as np
import pytest
from gradcheck import numeric_grad as numerical_grad
from tolerance import assert_close

from kioku.nn.dropout import Dropout
from kioku.nn.embedding import Embedding
from kioku.nn.linear import Linear
from kioku.nn.loss import CrossEntropyLoss, MSELoss, mse, softmax_cross_entropy

torch = pytest.importorskip("torch")


# -- Embedding -----------------------------------------------------------------------


pytestmark = pytest.mark.torch


def test_embedding_forward_any_shape_and_sparse_gradient():
    emb = Embedding(7, 3, dtype=np.float64, rng=0)
    ids = np.array([[1, 4, 1], [6, 1, 0]])
    y = emb(ids)
    assert y.shape == (2, 3, 3)
    np.testing.assert_array_equal(y[0, 1], emb.params["weight"][4])
    probe = np.random.default_rng(1).standard_normal(y.shape)
    emb.backward(probe)
    expected = np.zeros((7, 3))
    np.add.at(expected, ids.reshape(-1), probe.reshape(-1, 3))
    np.testing.assert_allclose(emb.grads["weight"], expected, rtol=1e-14, atol=1e-14)
    numeric = numerical_grad(lambda: float(np.sum(emb(ids) * probe)), emb.params["weight"])
    np.testing.assert_allclose(emb.grads["weight"], numeric, rtol=1e-7, atol=1e-9)
    assert np.all(emb.grads["weight"][[2, 3, 5]] == 0)  # unused rows untouched


def test_embedding_accumulates_and_matches_torch():
    emb = Embedding(11, 5, dtype=np.float64, rng=2)
    ids = np.random.default_rng(3).integers(0, 11, (4, 6))
    dy = np.random.default_rng(4).standard_normal((4, 6, 5))
    emb(ids)
    emb.backward(dy)
    emb(ids)  # a backward needs its own forward
    emb.backward(dy)
    ref = torch.nn.Embedding(11, 5).double()
    ref.weight.data = torch.from_numpy(emb.params["weight"].copy())
    out = ref(torch.from_numpy(ids))
    (out * torch.from_numpy(2 * dy)).sum().backward()
    np.testing.assert_allclose(emb.grads["weight"], ref.weight.grad.numpy(), rtol=1e-13)


def test_embedding_padding_idx_row_is_zero_and_gets_no_gradient():
    emb = Embedding(5, 2, padding_idx=0, dtype=np.float64, rng=0)
    assert np.all(emb.params["weight"][0] == 0)
    emb(np.array([0, 0, 3]))
    emb.backward(np.ones((3, 2)))
    assert np.all(emb.grads["weight"][0] == 0)
    np.testing.assert_array_equal(emb.grads["weight"][3], [1.0, 1.0])


def test_embedding_bad_ids():
    emb = Embedding(5, 2, rng=0)
    with pytest.raises(TypeError, match=r"ids: expected an integer array.*float64"):
        emb(np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"ids: expected ids in 0\.\.4, found 5 at index \(1,\)"):
        emb(np.array([1, 5]))
    with pytest.raises(ValueError, match=r"found -1"):
        emb(np.array([[-1]]))
    with pytest.raises(ValueError, match="padding_idx"):
        Embedding(5, 2, padding_idx=5)
    with pytest.raises(TypeError, match="dtype"):
        Embedding(5, 2, dtype=np.int32)


# -- Linear --------------------------------------------------------------------------


def test_linear_gradients_match_finite_differences():
    rng = np.random.default_rng(0)
    lin = Linear(4, 3, dtype=np.float64, rng=1)
    x = rng.standard_normal((2, 5, 4))
    probe = rng.standard_normal((2, 5, 3))
    y = lin(x)
    np.testing.assert_allclose(y, x @ lin.params["weight"].T + lin.params["bias"], rtol=1e-14)
    dx = lin.backward(probe)

    def f():
        return float(np.sum(lin(x) * probe))

    np.testing.assert_allclose(dx, numerical_grad(f, x), rtol=1e-7, atol=1e-9)
    for name in ("weight", "bias"):
        numeric = numerical_grad(f, lin.params[name])
        np.testing.assert_allclose(lin.grads[name], numeric, rtol=1e-7, atol=1e-9)


def test_linear_matches_torch_and_initialises_like_it():
    lin = Linear(50, 20, dtype=np.float64, rng=0)
    bound = 1 / np.sqrt(50)
    assert np.abs(lin.params["weight"]).max() <= bound
    assert np.abs(lin.params["weight"]).max() > 0.9 * bound
    ref = torch.nn.Linear(50, 20).double()
    ref.weight.data = torch.from_numpy(lin.params["weight"].copy())
    ref.bias.data = torch.from_numpy(lin.params["bias"].copy())
    x = np.random.default_rng(1).standard_normal((3, 50))
    dy = np.random.default_rng(2).standard_normal((3, 20))
    xt = torch.from_numpy(x).requires_grad_()
    out = ref(xt)
    (out * torch.from_numpy(dy)).sum().backward()
    np.testing.assert_allclose(lin(x), out.detach().numpy(), rtol=1e-13)
    np.testing.assert_allclose(lin.backward(dy), xt.grad.numpy(), rtol=1e-13)
    np.testing.assert_allclose(lin.grads["weight"], ref.weight.grad.numpy(), rtol=1e-13)
    np.testing.assert_allclose(lin.grads["bias"], ref.bias.grad.numpy(), rtol=1e-13)


def test_linear_without_bias():
    lin = Linear(3, 2, bias=False, dtype=np.float64, rng=0)
    assert set(lin.params) == {"weight"}
    x = np.ones((1, 3))
    np.testing.assert_allclose(lin(x), x @ lin.params["weight"].T)


def test_tied_linear_shares_weight_and_gradient_with_embedding():
    emb = Embedding(6, 4, dtype=np.float64, rng=0)
    lin = Linear(4, 6, dtype=np.float64, rng=1, tied_to=emb)
    assert lin.params["weight"] is emb.params["weight"]
    assert lin.grads["weight"] is emb.grads["weight"]
    rng = np.random.default_rng(2)
    ids = np.array([[1, 2], [2, 5]])
    probe = rng.standard_normal((2, 2, 6))

    def f():
        return float(np.sum(lin(emb(ids)) * probe))

    f()
    emb.backward(lin.backward(probe))
    numeric = numerical_grad(f, emb.params["weight"])
    np.testing.assert_allclose(emb.grads["weight"], numeric, rtol=1e-7, atol=1e-9)
    with pytest.raises(
        ValueError, match=r"tied_to: expected an embedding weight of shape \(5, 4\)"
    ):
        Linear(4, 5, dtype=np.float64, tied_to=emb)


def test_linear_bad_input():
    lin = Linear(3, 2, rng=0)
    with pytest.raises(ValueError, match=r"x: expected shape \(\.\.\., 3\)"):
        lin(np.zeros((2, 4), np.float32))
    with pytest.raises(TypeError, match="x: expected dtype float32, found float64"):
        lin(np.zeros((2, 3)))


# -- Dropout -------------------------------------------------------------------------


def test_dropout_gradient_with_a_fixed_mask():
    x = np.random.default_rng(0).standard_normal((3, 2, 4))
    probe = np.random.default_rng(1).standard_normal((3, 2, 4))
    for variational in (False, True):
        drop = Dropout(0.4, variational=variational)

        def f(drop=drop):
            drop.rng = np.random.default_rng(7)  # the same mask every call
            return float(np.sum(drop(x) * probe))

        f()
        dx = drop.backward(probe)
        np.testing.assert_allclose(dx, numerical_grad(f, x), rtol=1e-7, atol=1e-9)


def test_dropout_masks_scale_and_modes():
    x = np.ones((50, 8, 30))
    drop = Dropout(0.3, rng=0)
    y = drop(x)
    assert set(np.unique(y)) == {0.0, 1 / 0.7}
    assert abs(y.mean() - 1.0) < 0.03  # inverted dropout keeps the expectation
    var = Dropout(0.3, variational=True, rng=0)
    y = var(x)
    assert var.mask.shape == (1, 8, 30)
    assert np.all(y == y[0])  # one mask per sequence, reused at every step
    assert 0.6 < (y[0] != 0).mean() < 0.8
    var.eval()
    assert var(x) is x and var.backward(x) is x
    assert Dropout(0.0)(x) is x
    with pytest.raises(ValueError, match=r"p: expected a probability in \[0, 1\), found 1"):
        Dropout(1)


# -- losses --------------------------------------------------------------------------


def test_cross_entropy_matches_torch_with_ignore_index_and_mask():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((5, 3, 7)) * 3
    targets = rng.integers(0, 7, (5, 3))
    targets[1, 2] = targets[4, 0] = -100
    loss, dlogits = softmax_cross_entropy(logits, targets, ignore_index=-100)
    lt = torch.from_numpy(logits).requires_grad_()
    ref = torch.nn.functional.cross_entropy(
        lt.reshape(-1, 7), torch.from_numpy(targets).reshape(-1)
    )
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-13)
    np.testing.assert_allclose(dlogits, lt.grad.numpy(), rtol=1e-12, atol=1e-15)
    mask = targets != -100
    loss_m, dlogits_m = softmax_cross_entropy(logits, np.where(mask, targets, 99), mask=mask)
    assert loss_m == pytest.approx(loss, rel=1e-14)
    np.testing.assert_allclose(dlogits_m, dlogits, rtol=1e-14)
    loss_s, _ = softmax_cross_entropy(logits, targets, ignore_index=-100, reduction="sum")
    assert loss_s == pytest.approx(loss * mask.sum(), rel=1e-13)


def test_cross_entropy_gradient_and_stability():
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((4, 6))
    targets = np.array([0, 5, 2, 2])
    mask = np.array([True, True, False, True])
    _, dlogits = softmax_cross_entropy(logits, targets, mask=mask)
    numeric = numerical_grad(lambda: softmax_cross_entropy(logits, targets, mask=mask)[0], logits)
    np.testing.assert_allclose(dlogits, numeric, rtol=1e-7, atol=1e-9)
    big = np.array([[1e4, 0.0, -1e4]], np.float32)
    loss, grad = softmax_cross_entropy(big, np.array([1]))
    assert loss == pytest.approx(1e4) and np.all(np.isfinite(grad))
    assert softmax_cross_entropy(logits, targets, mask=np.zeros(4, bool))[0] == 0.0
    criterion = CrossEntropyLoss()
    assert criterion(logits, targets, mask) == pytest.approx(
        softmax_cross_entropy(logits, targets, mask=mask)[0]
    )
    np.testing.assert_array_equal(criterion.backward(), dlogits)


@pytest.mark.parametrize("threads", ["1", "3"])
def test_cross_entropy_in_blocks_over_threads_matches_torch_and_one_block(monkeypatch, threads):
    """Logits of many rows go through in cache-sized blocks (``over_rows``), split over the
    threads: each row's sums are those of one block, so the result is the whole array's
    to the bit, and PyTorch's within float32 rounding."""
    from kioku.kernels import _threads

    monkeypatch.setenv("KIOKU_NUM_THREADS", threads)
    rng = np.random.default_rng(7)
    logits = (3 * rng.standard_normal((4, 53, 31))).astype(np.float32)  # 212 rows
    targets = rng.integers(0, 31, (4, 53))
    mask = rng.random((4, 53)) > 0.2
    monkeypatch.setattr(_threads, "ROW_BLOCK_BYTES", 1 << 30)  # one block
    whole = softmax_cross_entropy(logits, targets, mask=mask)
    monkeypatch.setattr(_threads, "ROW_BLOCK_BYTES", 5 * 31 * 4)  # 5 rows: 43 blocks
    loss, dlogits = softmax_cross_entropy(logits, targets, mask=mask)
    assert loss == whole[0]
    np.testing.assert_array_equal(dlogits, whole[1])
    lt = torch.from_numpy(logits).requires_grad_()
    kept = torch.from_numpy(mask.reshape(-1))
    ref = torch.nn.functional.cross_entropy(
        lt.reshape(-1, 31)[kept], torch.from_numpy(targets).reshape(-1)[kept]
    )
    ref.backward()
    depth = 31 + 212  # a row's sum over the classes, then the mean over the rows
    assert_close("loss", np.float64(loss), np.float64(ref.item()), depth)
    assert_close("dlogits", dlogits, lt.grad.numpy(), depth)


def test_cross_entropy_bad_input():
    logits = np.zeros((2, 3))
    with pytest.raises(TypeError, match="targets: expected an integer array, found dtype float64"):
        softmax_cross_entropy(logits, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"targets: expected class ids in 0\.\.2, found 3"):
        softmax_cross_entropy(logits, np.array([0, 3]))
    with pytest.raises(ValueError, match=r"targets: expected shape \(2,\)"):
        softmax_cross_entropy(logits, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"mask: expected shape \(2,\)"):
        softmax_cross_entropy(logits, np.array([0, 1]), mask=np.ones(3, bool))
    with pytest.raises(TypeError, match="logits: expected a float array"):
        softmax_cross_entropy(np.zeros((2, 3), int), np.array([0, 1]))
    with pytest.raises(ValueError, match="reduction"):
        softmax_cross_entropy(logits, np.array([0, 1]), reduction="none")


def test_mse_matches_torch_gradient_and_mask():
    rng = np.random.default_rng(2)
    pred, target = rng.standard_normal((4, 3, 2)), rng.standard_normal((4, 3, 2))
    loss, dpred = mse(pred, target)
    pt = torch.from_numpy(pred).requires_grad_()
    ref = torch.nn.functional.mse_loss(pt, torch.from_numpy(target))
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-13)
    np.testing.assert_allclose(dpred, pt.grad.numpy(), rtol=1e-13)
    mask = rng.random((4, 3)) < 0.6
    loss_m, dpred_m = mse(pred, target, mask=mask)
    expected = np.mean((pred[mask] - target[mask]) ** 2)
    assert loss_m == pytest.approx(expected, rel=1e-13)
    numeric = numerical_grad(lambda: mse(pred, target, mask=mask)[0], pred)
    np.testing.assert_allclose(dpred_m, numeric, rtol=1e-7, atol=1e-9)
    criterion = MSELoss()
    assert criterion(pred, target, mask) == loss_m
    np.testing.assert_array_equal(criterion.backward(), dpred_m)
    with pytest.raises(ValueError, match=r"target: expected shape \(4, 3, 2\)"):
        mse(pred, target[:2])
    with pytest.raises(ValueError, match="mask: expected shape"):
        mse(pred, target, mask=np.ones((3, 4), bool))
