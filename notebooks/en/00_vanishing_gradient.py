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
# # 0. Why the LSTM: the vanishing gradient
#
# A simple RNN trained by backpropagation through time has to carry the gradient of a
# loss at the end of a sequence back to its first steps. Over long spans that gradient
# shrinks towards zero (it *vanishes*), and what happened early in the sequence can no
# longer teach the network anything. The fix the textbook page starts from is not a
# better optimiser but a different layer: a **gated RNN**, of which the LSTM (Long
# Short-Term Memory) is the best known.
#
# This notebook measures the problem before the other notebooks explain the cure. We use
# the *adding problem* (Hochreiter & Schmidhuber 1997), where the answer depends on two
# steps that may lie far apart, and compare a tanh RNN with an LSTM of about the same size.

# %%
import os
import sys
from pathlib import Path

# The readable NumPy path: what runs here is the code these notebooks show.
os.environ.setdefault("KIOKU_KERNELS", "reference")
sys.path.insert(0, str(Path.cwd().parent))  # notebooks/, for course.py
# %matplotlib inline

import matplotlib.pyplot as plt
import numpy as np

from kioku.experiments.adding import LastStepRegressor, accuracy, adding_batch, gradient_curves
from kioku.experiments.common import optimiser, update
from kioku.nn.loss import mse

# %% [markdown]
# ## The task
#
# Every step carries two numbers: a value drawn from [-1, 1] and a marker (0 or 1). Two
# steps are marked, one among the first ten and one in the second half. After the last
# step the network must answer `0.5 + (x1 + x2) / 4`, where `x1` and `x2` are the two
# marked values. An answer within 0.04 counts as correct. To succeed, the network has to
# keep the first marked value in memory across most of the sequence.

# %%
x, target = adding_batch(np.random.default_rng(0), batch=1, steps=12)
print("value :", np.round(x[:, 0, 0], 2))
print("marker:", x[:, 0, 1].astype(int))
print("target:", round(float(target[0]), 3))

# %% [markdown]
# ## How much gradient reaches each step
#
# Let the loss depend only on the last output. Backpropagation gives `dL/dh_t`, the
# gradient reaching the hidden state of every step `t`. In a simple RNN each step back
# multiplies it by the recurrent weights and the slope of tanh,
#
# $$
# \frac{\partial L}{\partial h_{t-1}}
#   = W_{hh}^\top \left( (1 - h_t^2) \odot \frac{\partial L}{\partial h_t} \right),
# $$
#
# so over `T` steps it is a product of `T` such factors: unless they are exactly right it
# shrinks (or grows) geometrically. The LSTM has a second path, the memory cell `c`, along
# which one step back is only an element-wise product with the forget gate:
#
# $$\frac{\partial L}{\partial c_{t-1}} = f_t \odot \frac{\partial L}{\partial c_t} + \cdots$$
#
# (the dots are the paths through the gates and `h`). No weight matrix, no squashing
# slope: when the network learns to keep `f` near 1, the gradient passes through many
# steps almost untouched.
#
# First, untrained networks at `T = 100` (the RNN has 64 units, the LSTM 32 cells: about
# 4.5k recurrent parameters each). `gradient_curves` records the norms with
# `kioku.inspect.record_gradients`.

# %%
T_LONG = 100
fresh = {
    kind: LastStepRegressor(kind, 2, 32 if kind == "lstm" else 64, np.random.default_rng(0))
    for kind in ("rnn", "lstm")
}
at_init = {kind: gradient_curves(model, T_LONG, seed=0) for kind, model in fresh.items()}
for kind, curves in at_init.items():
    for name, values in curves.items():
        print(f"{kind} {name}: last step {values[-1]:.1e}, step 0 {values[0]:.1e}")

# %% [markdown]
# Even untrained, the gradient that reaches step 0 is many orders of magnitude larger in
# the LSTM than in the RNN. But it still decays: an untrained forget gate sits near
# `sigmoid(1) = 0.73` (this LSTM starts its forget bias at 1, `unit_forget_bias=True`),
# and `0.73 ** 100` is tiny. The gate has to *learn* to stay open. So we train both
# networks (Adam, a few hundred updates of 64 sequences) at `T = 40`.

# %%
T_TRAIN, UPDATES = 40, 600
trained, scores = {}, {}
test_x, test_y = adding_batch(np.random.default_rng(1), 1000, T_TRAIN)
for kind in ("rnn", "lstm"):
    rng = np.random.default_rng(0)
    model = LastStepRegressor(kind, 2, 32 if kind == "lstm" else 64, rng)
    opt = optimiser(model, lr=0.01 if kind == "lstm" else 0.003)
    history = []
    for step in range(1, UPDATES + 1):
        x, y = adding_batch(rng, 64, T_TRAIN)
        loss, dpred = mse(model(x), y)
        model.backward(dpred)
        update(model, opt)
        if step % 50 == 0:
            history.append(accuracy(model, test_x, test_y))
    trained[kind], scores[kind] = model, history
baseline = float(np.mean(np.abs(0.5 - test_y) < 0.04))
for kind, history in scores.items():
    print(
        f"{kind}: {history[-1]:.1%} of test sequences correct "
        f"(always answering 0.5: {baseline:.1%})"
    )
assert scores["lstm"][-1] > 0.9 and scores["rnn"][-1] < 0.5

# %%
after = {kind: gradient_curves(model, T_TRAIN, seed=0) for kind, model in trained.items()}
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
for kind, style in (("rnn", "-"), ("lstm", "--")):
    left.semilogy(at_init[kind]["dh"], style, label=f"{kind} ‖dL/dh_t‖")
    right.semilogy(after[kind]["dh"], style, label=f"{kind} ‖dL/dh_t‖")
left.semilogy(at_init["lstm"]["dc"], ":", label="lstm ‖dL/dc_t‖")
right.semilogy(after["lstm"]["dc"], ":", label="lstm ‖dL/dc_t‖")
left.set_title(f"untrained, T = {T_LONG}")
right.set_title(f"after {UPDATES} updates, T = {T_TRAIN}")
for ax in (left, right):
    ax.set_xlabel("step t")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
left.set_ylabel("gradient norm (mean over batch)")
ax = plt.figure(figsize=(5.5, 3)).gca()
steps = np.arange(50, UPDATES + 1, 50)
for kind in ("rnn", "lstm"):
    ax.plot(steps, scores[kind], marker="o", label=kind)
ax.axhline(baseline, color="gray", ls=":", label="always 0.5")
ax.set_xlabel("updates")
ax.set_ylabel("test accuracy")
ax.legend()
plt.show()

# %% [markdown]
# The ratio of the gradient at the first step to the one at the last step says how much
# of the error signal survives the trip back:

# %%
for kind in ("rnn", "lstm"):
    dh = np.asarray(after[kind]["dh"])
    print(f"{kind} after training: dL/dh_0 / dL/dh_T = {dh[0] / dh[-1]:.1e}")
dc = np.asarray(after["lstm"]["dc"])
print(f"lstm after training: dL/dc_0 / dL/dc_T = {dc[0] / dc[-1]:.1e}")
assert dc[0] / dc[-1] > 1e3 * np.asarray(after["rnn"]["dh"])[0] / after["rnn"]["dh"][-1]

# %% [markdown]
# The RNN never learns the task: the gradient from the answer does not reach the first
# marked value, so nothing tells the network to keep it. The LSTM learns it, and the
# figure shows how: along its cell, the gradient from the last step still arrives at the
# first steps. `kioku experiments` runs the same comparison at `T` = 10 to 200.
#
# The next notebook opens the LSTM: its interface (the cell path `c` beside `h`) and its
# gates.
