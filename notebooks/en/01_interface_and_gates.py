# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 1. The LSTM's interface and its gates
#
# **1.1** What goes into an LSTM layer and what comes out, next to a simple RNN: the
# memory cell `c`, a second path through time. **1.2** The gates: numbers between 0 and 1
# that say how far each path is open, and that the network learns from data.

# %%
import os
import sys
from pathlib import Path

os.environ.setdefault("KIOKU_KERNELS", "reference")  # the readable NumPy path
sys.path.insert(0, str(Path.cwd().parent))  # notebooks/, for course.py
# %matplotlib inline

import matplotlib.pyplot as plt
import numpy as np
from course import SNIPPET, char_model, untrained_model

import kioku
import kioku.inspect

rng = np.random.default_rng(0)

# %% [markdown]
# ## 1.1 The interface: `h` and, beside it, `c`
#
# A simple RNN layer carries one thing from step to step, the hidden state `h`. It reads
# `x_t` and `h_{t-1}` and writes `h_t`, which is both its output and what the next step
# reads.

# %%
T, B, I, H = 6, 2, 3, 4
x = rng.normal(size=(T, B, I)).astype(np.float32)  # time-major: (steps, batch, features)

rnn = kioku.nn.RNN(I, H, rng=0)
y_rnn, h_n = rnn(x)
print("RNN : y", y_rnn.shape, " h_n", h_n.shape)

lstm = kioku.nn.LSTM(I, H, rng=0)
y, (h_n, c_n) = lstm(x)
print("LSTM: y", y.shape, " h_n", h_n.shape, " c_n", c_n.shape)

# %% [markdown]
# The LSTM returns a second state, `c_n`: the **memory cell**. Its shape is that of `h`,
# one number per cell, but it plays a different part. Run the same LSTM one step at a
# time with `kioku.nn.LSTMCell` (same weights) and follow both paths: each step takes
# `(x_t, h_{t-1}, c_{t-1})` and gives `(h_t, c_t)`.

# %%
cell = kioku.nn.LSTMCell(I, H)
cell.load_state_dict({name: lstm.params[f"{name}_l0"] for name in cell.params})
h = np.zeros((B, H), np.float32)
c = np.zeros((B, H), np.float32)
for t in range(T):
    h, c = cell(x[t], (h, c))
    assert np.allclose(h, y[t], atol=1e-6)  # the layer's output at t is h_t ...
assert np.allclose(h, h_n[0], atol=1e-6) and np.allclose(c, c_n[0], atol=1e-6)
print("step by step == whole sequence;  h_T:", np.round(h[0], 3), " c_T:", np.round(c[0], 3))

# %% [markdown]
# So `y` is the sequence of hidden states `h_t`, exactly as in the RNN; `c` never leaves
# the layer (apart from the final `c_n`, for carrying the state on). The cell `c_t` holds
# the layer's memory at time `t`: it is computed from three inputs, `x_t`, `h_{t-1}` and
# `c_{t-1}`, so everything the layer needed from the past up to `t` has to be in it.
# From that memory the layer computes the hidden state `h_t = o_t ⊙ tanh(c_t)` that the
# layers above see.
#
# ## 1.2 Gates: how far a path is open
#
# A gate is a vector of numbers between 0 and 1, multiplied element-wise (`⊙`) into a
# flow of information: 0 shuts it, 1 lets all of it through. The LSTM has three, each
# computed by a sigmoid from `x_t` and `h_{t-1}`:
#
# - the **forget gate** `f` decides what of `c_{t-1}` to keep,
# - the **input gate** `i` decides how much of the new candidate `g` to write into `c`,
# - the **output gate** `o` decides how much of `tanh(c_t)` to show as `h_t`.
#
# `kioku.inspect.trace` records every gate of every step. On the little LSTM above:

# %%
with kioku.inspect.trace(lstm) as tr:
    lstm(x)
record = tr.get(layer=0)
for name in ("forget_gate", "input_gate", "output_gate", "candidate"):
    values = getattr(record, name)
    print(f"{name:12s} {values.shape}  min {values.min():+.3f}  max {values.max():+.3f}")
for gate in (record.forget_gate, record.input_gate, record.output_gate):
    assert ((gate > 0) & (gate < 1)).all()
assert (np.abs(record.candidate) < 1).all()  # the candidate is a tanh: between -1 and 1

# %% [markdown]
# ### The openness is learned from data
#
# Nobody sets the gates: they are functions of the input with weights, and training
# changes the weights. To see what training does to them we train a small character
# language model (2 layers of 64 cells) on the source code of Python's standard library,
# the text every Python install carries. The training code is in `notebooks/course.py`;
# the model is trained once (about half a minute on a quiet machine) and then loaded
# from a cache by the other notebooks.

# %%
model, vocab, summary = char_model()
print(
    f"{summary['train_characters']:,} characters; loss {summary['first_bits_per_char']:.2f} "
    f"-> {summary['last_bits_per_char']:.2f} bits per character"
)
assert summary["last_bits_per_char"] < 0.5 * summary["first_bits_per_char"]
sample = model.sample(vocab.encode("def "), 120, temperature=0.5, rng=0)
print("def " + vocab.decode(sample))

# %% [markdown]
# Now trace the trained model and the same model before training on a short piece of
# Python, and compare how open the gates of the first layer are.

# %%
tokens = vocab.encode(SNIPPET)[:, None]  # (T, 1)
traces = {}
for label, net in (("before training", untrained_model(len(vocab))), ("trained", model)):
    with kioku.inspect.trace(net) as tr:
        net(tokens)
    traces[label] = tr

fig, axes = plt.subplots(1, 3, figsize=(12, 3.2), sharey=True)
bins = np.linspace(0, 1, 41)
for ax, name in zip(axes, ("forget_gate", "input_gate", "output_gate")):
    for label, tr in traces.items():
        values = getattr(tr.get(layer=0), name).ravel()
        ax.hist(values, bins=bins, alpha=0.6, density=True, label=label)
    ax.set_title(name.replace("_", " "))
    ax.set_xlabel("openness")
axes[0].set_ylabel("density (all cells, all steps)")
axes[0].legend()
plt.show()

# %% [markdown]
# Before training every gate sits near one half: its weights are small and random, so
# the sigmoid's input is near 0. After training they spread towards the ends: many gates
# are now nearly shut or nearly wide open. `kioku.inspect.gate_saturation` counts, per
# cell, the steps where a gate is below 0.1 or above 0.9:

# %%
for label, tr in traces.items():
    parts = []
    for s in kioku.inspect.gate_saturation(tr):
        if s.layer == 0:
            parts.append(f"{s.gate} {np.mean(s.low + s.high):.0%}")
    print(f"{label:16s} saturated steps, layer 0: " + ", ".join(parts))
sat = {
    label: np.mean([np.mean(s.low + s.high) for s in kioku.inspect.gate_saturation(tr)])
    for label, tr in traces.items()
}
assert sat["trained"] > sat["before training"] + 0.2

# %% [markdown]
# The network decided for itself, from the text, when to keep, when to write and when to
# show. The next notebook takes the four parts of the cell one by one: the forget gate,
# the input gate, the new memory (the candidate) and the output gate.
