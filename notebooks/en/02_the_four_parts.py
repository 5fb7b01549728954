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
# # 2. Inside the cell: four parts
#
# One LSTM step, with input `x_t`, previous hidden state `h_{t-1}` and previous cell
# `c_{t-1}`, computes four things and combines them:
#
# $$
# \begin{aligned}
# f_t &= \sigma(x_t W_{xf} + h_{t-1} W_{hf} + b_f) && \text{2.1 forget gate} \\
# i_t &= \sigma(x_t W_{xi} + h_{t-1} W_{hi} + b_i) && \text{2.2 input gate} \\
# g_t &= \tanh(x_t W_{xg} + h_{t-1} W_{hg} + b_g) && \text{2.3 new memory (candidate)} \\
# c_t &= f_t \odot c_{t-1} + i_t \odot g_t && \text{2.3 the new cell} \\
# o_t &= \sigma(x_t W_{xo} + h_{t-1} W_{ho} + b_o) && \text{2.4 output gate} \\
# h_t &= o_t \odot \tanh(c_t) && \text{2.4 the hidden state}
# \end{aligned}
# $$
#
# `σ` is the sigmoid, `⊙` the element-wise (Hadamard) product. For each part this notebook
# shows the lines of `kioku.functional.lstm_step` that compute it, recomputes it by hand
# with NumPy from the weights of the trained character model, checks that both agree, and
# draws what the part does in that model.

# %%
import os
import sys
from pathlib import Path

os.environ.setdefault("KIOKU_KERNELS", "reference")  # the readable NumPy path
sys.path.insert(0, str(Path.cwd().parent))  # notebooks/, for course.py
# %matplotlib inline

import matplotlib.pyplot as plt
import numpy as np
from course import SNIPPET, char_model, show_source, sigmoid

import kioku
import kioku.inspect
from kioku.functional.lstm import lstm_forward, lstm_step
from kioku.inspect.plots import activation_text

model, vocab, _ = char_model()
text = SNIPPET
tokens = vocab.encode(text)[:, None]  # (T, 1)
with kioku.inspect.trace(model) as tr:
    model(tokens)
record = tr.get(layer=0)  # the first LSTM layer; arrays (T, 1, H)
print(text)

# %% [markdown]
# ## Everything the step needs, by hand
#
# The first layer reads the character embeddings. kioku keeps PyTorch's layout: the four
# gates' weights are stacked in one matrix `weight_ih (4H, I)` (and `weight_hh (4H, H)`)
# in the order input, forget, candidate, output. The states entering each step are those
# that left the step before (zeros before the first).

# %%
x = model.embedding(tokens)[:, 0].astype(np.float64)  # (T, I)
p = {k: v.astype(np.float64) for k, v in model.lstm.params.items()}
H = model.lstm.hidden_size
W_x = dict(zip("ifgo", np.split(p["weight_ih_l0"], 4)))  # each (H, I)
W_h = dict(zip("ifgo", np.split(p["weight_hh_l0"], 4)))  # each (H, H)
b = dict(zip("ifgo", np.split(p["bias_ih_l0"] + p["bias_hh_l0"], 4)))  # each (H,)
h_prev = np.vstack([np.zeros(H), record.hidden[:-1, 0]])  # (T, H): h_{t-1}
c_prev = np.vstack([np.zeros(H), record.cell[:-1, 0]])  # (T, H): c_{t-1}


def pre_activation(gate):
    """x_t W_x + h_{t-1} W_h + b for every step: (T, H)."""
    return x @ W_x[gate].T + h_prev @ W_h[gate].T + b[gate]


def check(name, by_hand, from_kioku):
    """By hand (float64) against kioku's float32 result, relative to the size of the
    values (a cell can hold numbers far above 1, where float32 has fewer decimals)."""
    error = np.max(np.abs(by_hand - from_kioku) / (1 + np.abs(by_hand)))
    print(f"{name}: largest relative difference {error:.1e}")
    assert error < 1e-5


# %% [markdown]
# In kioku all four pre-activations come out of two matrix products: one for the inputs
# of every step at once, before the time loop, and one per step for `h_{t-1}`.
# One step's work is `lstm_step`. The `hooks` in it are where the variants (peepholes,
# layer normalisation, ...) plug in; for the plain LSTM `hooks.activate(GATE, ...)` is
# just the sigmoid, and `hooks.activate(CANDIDATE, ...)` and `hooks.activate(CELL, ...)`
# just tanh:

# %%
show_source(lstm_forward, "preact = (x.reshape", "preact += bias")
show_source(lstm_step, "recurrent = np.matmul(", "preact += recurrent")

# %% [markdown]
# ## 2.1 The forget gate
#
# $$f_t = \sigma(x_t W_{xf} + h_{t-1} W_{hf} + b_f)$$
#
# The forget gate controls what the long-term memory lets go of. Its inputs are the
# current input `x_t` and the previous hidden state `h_{t-1}`; `W_xf` and `W_hf` are the
# weight matrices applied to each, `b_f` the bias. The weighted sum goes through the
# sigmoid, so every element lies between 0 and 1: near 1 a cell keeps its content, near
# 0 it wipes it. In kioku (rows `H:2H` of the stacked pre-activations):

# %%
show_source(lstm_step, "forget_gate = hooks.forget(")
show_source(lstm_step, "cell = np.multiply(forget_gate, c_prev")
forget = sigmoid(pre_activation("f"))
check("forget gate", forget, record.forget_gate[:, 0])

# %% [markdown]
# What did the trained model learn to forget? Count the cells of the first layer whose
# forget gate shuts (below 0.2 on average) at the end of a line, the character `\n`, and
# among them pick the one whose content follows the position in the line most closely
# (`kioku.inspect.correlations`); the notebook follows that cell from here on.

# %%
newline = np.array([ch == "\n" for ch in text])
f = record.forget_gate[:, 0]  # (T, H)
closers = np.flatnonzero(f[newline].mean(axis=0) < 0.2)
position = kioku.inspect.get_feature("line_position")(text)  # (T,)
r = kioku.inspect.correlations(record.cell[:, 0], position)  # (H,)
cell = int(closers[np.argmax(np.abs(r[closers]))])
print(f"{closers.size} of {H} cells forget at a line end; we follow cell {cell}")
print(
    f"cell {cell}: forget gate {f[newline, cell].mean():.2f} on average at a line end, "
    f"{f[~newline, cell].mean():.2f} elsewhere"
)
assert closers.size >= 5 and abs(r[cell]) > 0.5
activation_text(list(text), f[:, cell], title=f"forget gate of cell {cell} (blue: forgets)")

# %% [markdown]
# Blue is where the gate closes: at every line end (⏎) this cell drops what it held.
#
# ## 2.2 The input gate
#
# $$i_t = \sigma(x_t W_{xi} + h_{t-1} W_{hi} + b_i)$$
#
# New information is not written into the memory blindly: the input gate weighs how much
# each new piece is worth adding, so what enters the cell is `i_t ⊙ g_t`, the candidate
# `g_t` (2.3) scaled by the gate. Same form as the forget gate, its own weights (rows
# `0:H`):

# %%
show_source(lstm_step, "input_gate = hooks.activate(")
show_source(lstm_step, "cell += np.multiply(input_gate, candidate")
input_gate = sigmoid(pre_activation("i"))
check("input gate", input_gate, record.input_gate[:, 0])

# %%
i = record.input_gate[:, 0]
g = record.candidate[:, 0]
print(f"cell {cell}: input gate {i[:, cell].mean():.2f} on average; what it writes, i * g:")
activation_text(list(text), (i * g)[:, cell], title=f"i ⊙ g of cell {cell} (what is written)")

# %% [markdown]
# ## 2.3 The new memory cell
#
# $$g_t = \tanh(x_t W_{xg} + h_{t-1} W_{hg} + b_g), \qquad c_t = f_t \odot c_{t-1} + i_t \odot g_t$$
#
# The cell is the LSTM's long-term memory; each step deletes what has gone stale and adds
# what is new. In order:
#
# 1. from `x_t` and `h_{t-1}`, the input gate `i_t` (a sigmoid) and, at the same time,
#    the candidate `g_t` (a tanh, between -1 and 1): the new information;
# 2. `i_t ⊙ g_t`: the part of the candidate that the input gate lets in;
# 3. `f_t ⊙ c_{t-1}`: the old cell, with what the forget gate dropped removed;
# 4. the sum of the two is the new cell `c_t`.

# %%
show_source(lstm_step, "candidate = hooks.activate(")
show_source(lstm_step, "cell = np.multiply(forget_gate, c_prev", "cell += np.multiply(input_gate")
candidate = np.tanh(pre_activation("g"))
check("candidate", candidate, record.candidate[:, 0])
new_cell = forget * c_prev + input_gate * candidate
check("cell", new_cell, record.cell[:, 0])

# %% [markdown]
# Follow the same cell through the first two lines: at the line end the forget gate
# shuts and the cell falls back to about 0; along the next line the input gate lets a
# share of the candidate in at each character, so the cell moves step by step like a
# counter of the position in the line.

# %%
first_lines = text.index("\n", text.index("\n") + 1) + 1
steps = np.arange(first_lines)
c = record.cell[:, 0]
fig, ax = plt.subplots(figsize=(12, 3.6))
ax.plot(steps, f[:first_lines, cell], label="forget gate f")
ax.plot(steps, i[:first_lines, cell], label="input gate i")
ax.plot(steps, g[:first_lines, cell], label="candidate g")
ax.plot(steps, c[:first_lines, cell], "k", lw=2, label="cell c")
ax.set_xticks(steps, [{"\n": "⏎", " ": "·"}.get(ch, ch) for ch in text[:first_lines]])
ax.tick_params(axis="x", labelsize=7)
ax.set_title(f"cell {cell} of the first layer, step by step")
ax.grid(alpha=0.3)
ax.legend(ncol=4, fontsize=8)
plt.show()
print(f"correlation of cell {cell} with the position in the line: {r[cell]:+.2f}")
activation_text(list(text), c[:, cell], title=f"cell state c of cell {cell}")

# %% [markdown]
# ## 2.4 The output gate
#
# $$o_t = \sigma(x_t W_{xo} + h_{t-1} W_{ho} + b_o), \qquad h_t = o_t \odot \tanh(c_t)$$
#
# The output gate forms the hidden state. The updated cell `c_t` goes through tanh, and
# the output gate, computed like the others from `x_t` and `h_{t-1}`, decides for every
# element how much of it matters as the hidden state: what the next step and the layer
# above get to see. The product of the two is `h_t`.

# %%
show_source(lstm_step, "output_gate = hooks.activate(")
show_source(lstm_step, "tanh_c = hooks.activate(CELL", "np.multiply(output_gate, tanh_c")
output_gate = sigmoid(pre_activation("o"))
check("output gate", output_gate, record.output_gate[:, 0])
hidden = output_gate * np.tanh(new_cell)
check("hidden state", hidden, record.hidden[:, 0])

# %% [markdown]
# The cell can hold large numbers; the hidden state is always between -1 and 1, and the
# output gate decides when a cell's content is shown. Over the whole first layer:

# %%
o = record.output_gate[:, 0]
print(f"|c| up to {np.abs(c).max():.1f}; |h| up to {np.abs(record.hidden).max():.2f}")
fig, axes = plt.subplots(3, 1, figsize=(12, 6), sharex=True)
for ax, values, name, cmap in (
    (axes[0], np.tanh(c), "tanh(c)", "RdBu_r"),
    (axes[1], o, "output gate o", "viridis"),
    (axes[2], record.hidden[:, 0], "h = o ⊙ tanh(c)", "RdBu_r"),
):
    low = 0 if name.startswith("output") else -1
    image = ax.imshow(
        values[:first_lines].T, aspect="auto", cmap=cmap, vmin=low, vmax=1, interpolation="nearest"
    )
    ax.set_ylabel(f"{name}\ncell")
    fig.colorbar(image, ax=ax, pad=0.01)
axes[2].set_xticks(steps, [{"\n": "⏎", " ": "·"}.get(ch, ch) for ch in text[:first_lines]])
axes[2].tick_params(axis="x", labelsize=7)
plt.show()

# %% [markdown]
# Where `o` is near 0 (dark), a cell keeps its content to itself; where it is near 1,
# `h` shows `tanh(c)`. Each of the four parts checked out by hand against kioku to float32
# rounding. The last notebook stacks layers and runs them in both directions.
