"""Packed weights kept across inference calls: reused while unchanged, never stale
after a write through kioku's API (each path compared bit for bit with a fresh layer)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from tolerance import assert_close, recurrent_depth  # noqa: E402

from kioku import kernels, nn  # noqa: E402
from kioku.kernels import _pack_cache, _weights_epoch  # noqa: E402
from kioku.train import SGD, Adam, AdamW  # noqa: E402
from kioku.train.distributed import Communicator, DataParallel  # noqa: E402
from kioku.train.restore import load_params  # noqa: E402

CONFIG = dict(input_size=40, hidden_size=48, num_layers=2, bidirectional=True)


def make_layer(seed: int) -> nn.LSTM:
    layer = nn.LSTM(**CONFIG, rng=seed)
    layer.eval()
    return layer


def infer(layer: nn.LSTM, x: np.ndarray) -> np.ndarray:
    with kernels.use("numba"), nn.no_grad():
        return layer(x)[0]


def fresh_output(layer: nn.LSTM, x: np.ndarray) -> np.ndarray:
    """What a new layer holding ``layer``'s current weights computes."""
    twin = make_layer(99)
    twin.load_state_dict(layer.state_dict())
    return infer(twin, x)


@pytest.fixture
def x() -> np.ndarray:
    return np.random.default_rng(1).standard_normal((6, 5, 40)).astype(np.float32)


def test_weights_are_large_enough_to_be_kept():
    layer = make_layer(0)
    assert layer.params["weight_hh_l0"].size >= _pack_cache.MIN_ELEMENTS
    assert layer.params["weight_ih_l0"].size >= _pack_cache.MIN_ELEMENTS


def test_unchanged_weights_reuse_the_packed_copy(x):
    layer = make_layer(0)
    first = infer(layer, x)
    weight = layer.params["weight_hh_l0"]
    key = (id(weight), False, True)  # batch 5 on one thread: packed in gate order
    panels = _pack_cache._entries[key][6]
    second = infer(layer, x)
    assert _pack_cache._entries[key][6] is panels
    assert np.array_equal(first, second)
    assert np.array_equal(second, fresh_output(layer, x))


def _random_grads(layer: nn.LSTM) -> None:
    rng = np.random.default_rng(5)
    for _, _, grad in layer.named_parameters():
        grad[...] = rng.standard_normal(grad.shape).astype(grad.dtype)


def _sgd(layer):
    _random_grads(layer)
    SGD(layer.parameters(), lr=0.1, momentum=0.9).step()


def _adam(layer):
    _random_grads(layer)
    Adam(layer.parameters(), lr=0.01).step()


def _adamw(layer):
    _random_grads(layer)
    AdamW(layer.parameters(), lr=0.01).step()


def _load_state_dict(layer):
    layer.load_state_dict(make_layer(7).state_dict())


def _checkpoint_restore(layer):
    load_params(layer, {"model": {"params": make_layer(8).state_dict()}}, "checkpoint.json")


class _Broadcast(Communicator):
    """Two ranks; the broadcast hands out rank 0's (another layer's) parameters."""

    size = 2

    def __init__(self, root: np.ndarray) -> None:
        self.root = root

    def broadcast(self, buffer: np.ndarray) -> None:
        buffer[...] = self.root


def _mpi_broadcast(layer):
    source = make_layer(9)
    flat = np.concatenate([p.ravel() for _, p, _ in source.named_parameters()])
    DataParallel(_Broadcast(flat)).broadcast_parameters(layer)


def _one_element_then_weights_changed(layer):
    weight = layer.params["weight_hh_l0"]
    weight[1, 1] += 0.5  # not one of the sampled elements: only the call below tells
    layer.weights_changed()


def _whole_array_in_place_unannounced(layer):
    weight = layer.params["weight_hh_l0"]
    weight[...] = np.random.default_rng(3).standard_normal(weight.shape) * 0.1


def _array_replaced(layer):
    weight = layer.params["weight_hh_l0_reverse"]
    layer.params["weight_hh_l0_reverse"] = (weight * 1.5).astype(weight.dtype)


PATHS = {
    "sgd": _sgd,
    "adam": _adam,
    "adamw": _adamw,
    "load_state_dict": _load_state_dict,
    "checkpoint_restore": _checkpoint_restore,
    "mpi_broadcast": _mpi_broadcast,
    "weights_changed": _one_element_then_weights_changed,
    "unannounced_full_write": _whole_array_in_place_unannounced,
    "array_replaced": _array_replaced,
}


# paths of kioku's API: each must announce its write itself, not rely on the sample
ANNOUNCED = {"sgd", "adam", "adamw", "load_state_dict", "checkpoint_restore", "mpi_broadcast"}


@pytest.mark.parametrize("path", sorted(PATHS))
def test_a_write_through_each_path_is_used_by_the_next_forward(path, x):
    layer = make_layer(0)
    infer(layer, x)
    before = infer(layer, x)  # a packed copy is kept now
    epoch = _weights_epoch.epoch()
    PATHS[path](layer)
    if path in ANNOUNCED:
        assert _weights_epoch.epoch() > epoch, f"{path} wrote weights without saying so"
    after = infer(layer, x)
    assert not np.array_equal(before, after), "the write changed nothing"
    assert np.array_equal(after, fresh_output(layer, x))


def test_training_calls_do_not_keep_packed_copies(x):
    layer = make_layer(0)
    layer.train()
    _pack_cache._entries.clear()
    with kernels.use("numba"):
        layer(x)
    assert not _pack_cache._entries


def test_a_dead_array_leaves_no_entry(x):
    layer = make_layer(0)
    infer(layer, x)
    key = (id(layer.params["weight_hh_l0"]), False, True)  # packed in gate order
    assert key in _pack_cache._entries
    del layer
    assert key not in _pack_cache._entries


def test_sample_covers_the_array_and_a_moved_array_repacks():
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((192, 48)).astype(np.float32)
    sample = np.empty(_pack_cache.SAMPLES, np.float32)
    address = np.zeros(1, np.int64)
    panels = np.empty(_pack_cache.panels_shape(48, 192), np.float32)
    assert _pack_cache._sample_or_pack(weight.T, sample, address, panels, True)
    assert not _pack_cache._sample_or_pack(weight.T, sample, address, panels, False)
    weight.T[-1, -1] += 1  # the first and last elements are sampled
    assert _pack_cache._sample_or_pack(weight.T, sample, address, panels, False)
    assert np.array_equal(panels[-1, :, -1], weight.T[:, -1])  # 192 columns: whole panels
    copy = weight.copy()  # same values elsewhere: only the address tells
    assert _pack_cache._sample_or_pack(copy.T, sample, address, panels, False)
    assert not _pack_cache._sample_or_pack(copy.T, sample, address, panels, False)


@pytest.mark.torch
def test_layers_loaded_from_torch_one_after_another_use_their_own_weights(x):
    # each loader builds a new layer: ids and addresses of the freed arrays come back,
    # the kept packs of the freed ones must not
    torch = pytest.importorskip("torch")
    from kioku.interop import from_torch

    for seed in range(4):
        torch.manual_seed(seed)
        module = torch.nn.LSTM(**CONFIG).eval()
        layer = from_torch(module).eval()
        infer(layer, x)
        got = infer(layer, x)
        with torch.no_grad():
            want = module(torch.from_numpy(x))[0].numpy()
        depth = recurrent_depth(6, 2 * 48, 48, layers=2, batch=5)  # CONFIG on x
        assert_close("y", got, want, depth)
        assert np.array_equal(got, fresh_output(layer, x))
        del layer, module


@pytest.mark.parametrize("gates", [False, True])
@pytest.mark.parametrize("reuse", [False, True])
def test_packed_panels_start_on_a_cache_line(gates, reuse):
    """Every packed copy, kept or fresh, starts on a 64-byte line (so no vector load of a
    panel row splits across two), and holds what packing a plain array gives."""
    from kioku.kernels._aligned import ALIGN, aligned_panels
    from kioku.kernels._gate_order import gate_panels_shape, pack_gate_panels
    from kioku.kernels._packed import pack_panels, panels_shape

    rng = np.random.default_rng(3)
    for H in (8, 50, 200):
        weight = rng.standard_normal((4 * H, H)).astype(np.float32)
        panels = _pack_cache.packed(weight, True, reuse, gates)
        assert panels.ctypes.data % ALIGN == 0 and panels.flags.c_contiguous
        shape = gate_panels_shape(H, H) if gates else panels_shape(H, 4 * H)
        plain = np.empty(shape, np.float32)
        (pack_gate_panels if gates else pack_panels)(weight if gates else weight.T, plain)
        np.testing.assert_array_equal(panels, plain)
    for dims in ((1, 1, 16), (3, 7, 64), (2, 5, 32)):
        fresh = aligned_panels(*dims)
        assert fresh.shape == dims and fresh.ctypes.data % ALIGN == 0


@pytest.mark.parametrize("gates, transposed", [(False, True), (False, False), (True, True)])
def test_a_fresh_copy_split_over_threads_is_the_one_thread_copy(gates, transposed, monkeypatch):
    """Weights from SPLIT_PACK_BYTES on are packed by every thread, each its own panels
    (a last panel partly filled included): the same panels as one thread packs."""
    from kioku.kernels import _threads

    calls, real = [], _threads.run_parts

    def counted(task, parts, *args, **kwargs):
        calls.append(parts)
        return real(task, parts, *args, **kwargs)

    rng = np.random.default_rng(4)
    for H in (150, 650):  # 150 x 600 / 650 x 2600: partial last panels either way
        weight = rng.standard_normal((4 * H, H)).astype(np.float32)
        monkeypatch.setattr(_pack_cache, "SPLIT_PACK_BYTES", 1 << 62)
        one = _pack_cache.packed(weight, transposed, False, gates)
        monkeypatch.setattr(_pack_cache, "SPLIT_PACK_BYTES", 0)
        monkeypatch.setattr(_threads, "run_parts", counted)
        monkeypatch.setenv("KIOKU_NUM_THREADS", "3")
        split = _pack_cache.packed(weight, transposed, False, gates)
        monkeypatch.setattr(_threads, "run_parts", real)
        np.testing.assert_array_equal(split, one)
    assert calls == [3, 3]
