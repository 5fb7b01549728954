# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown] lang="en"
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

# %% [markdown] lang="ja"
# # 0. なぜLSTMなのか: 勾配消失問題
#
# シンプルなRNNを時間方向の誤差逆伝播法(BPTT)で学習させるとき、系列の最後で計算した損失の
# 勾配は、時刻をさかのぼって最初のステップまで届かなければなりません。ところが系列が長くなると、
# この勾配はさかのぼるほど小さくなり、ほとんどゼロになってしまいます。これが**勾配消失**です。
# こうなると、系列の前のほうで起きたことからネットワークは何も学べません。
#
# この問題を解決するには、最適化手法を工夫するのではなく、RNNレイヤのアーキテクチャを
# 根本から変える必要があります。そこで登場するのが「ゲート付きRNN」であり、その代表が
# LSTM(Long Short-Term Memory)です。
#
# 後のノートブックでLSTMの仕組みを見ていく前に、ここではまず問題そのものを測ってみます。
# 題材は**加算問題**(adding problem, Hochreiter & Schmidhuber 1997)です。答えが遠く離れた
# 2つのステップで決まるこの問題で、tanhを使ったシンプルなRNNと、ほぼ同じ大きさのLSTMを比べます。

# %%
import os
import sys
from pathlib import Path

# [en]
# The readable NumPy path: what runs here is the code these notebooks show.
# [ja]
# NumPyで書かれた参照実装を使う(ここで動くのは、ノートブックで見せるコードそのもの)
# [end]
os.environ.setdefault("KIOKU_KERNELS", "reference")
# [en]
sys.path.insert(0, str(Path.cwd().parent))  # notebooks/, for course.py
# [ja]
sys.path.insert(0, str(Path.cwd().parent))  # notebooks/ (course.py の置き場所)
# [end]
# %matplotlib inline

import matplotlib.pyplot as plt
import numpy as np

import kioku
import kioku.inspect
from kioku.experiments.adding import LastStepRegressor, accuracy, adding_batch, gradient_curves
from kioku.experiments.common import optimiser, update
from kioku.nn.loss import mse

# %% [markdown] lang="en"
# ## The task
#
# Every step carries two numbers: a value drawn from [-1, 1] and a marker (0 or 1). Two
# steps are marked, one among the first ten and one in the second half. After the last
# step the network must answer `0.5 + (x1 + x2) / 4`, where `x1` and `x2` are the two
# marked values. An answer within 0.04 counts as correct. To succeed, the network has to
# keep the first marked value in memory across most of the sequence.

# %% [markdown] lang="ja"
# ## 加算問題
#
# 各ステップの入力は2つの数です。1つは[-1, 1]から一様に選んだ値、もう1つは印(0か1)です。
# 印が付くのは2ステップだけで、1つ目は最初の10ステップのどこか、2つ目は系列の後半のどこかに
# あります。最後のステップのあと、ネットワークは `0.5 + (x1 + x2) / 4` を答えなければなりません
# (`x1`、`x2` は印の付いた2つの値)。誤差が0.04未満なら正解とします。正解するには、
# 1つ目の値を系列のほぼ全体にわたって覚えておく必要があります。

# %%
x, target = adding_batch(np.random.default_rng(0), batch=1, steps=12)
# [en]
print("value :", np.round(x[:, 0, 0], 2))
print("marker:", x[:, 0, 1].astype(int))
print("target:", round(float(target[0]), 3))
# [ja]
print("値  :", np.round(x[:, 0, 0], 2))
print("印  :", x[:, 0, 1].astype(int))
print("正解:", round(float(target[0]), 3))
# [end]

# %% [markdown] lang="en"
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
# 4.5k recurrent parameters each). `gradient_curves` runs a batch of 256 sequences
# forward and back, with the loss on the last step only, and records for every step `t`
# the size (the norm, averaged over the batch) of three gradients:
#
# - `dL/dh_t`, reaching the hidden state `h_t`: what travels back along `h`
#   (recorded by `kioku.inspect.record_gradients`);
# - `dL/dc_t`, reaching the memory cell `c_t` (the LSTM only): what travels back along `c`;
# - `dL/dx_t`, reaching the **input** of step `t`: how much the loss would change if the
#   input at `t` changed. This is the one the task needs: if it is almost zero at the first
#   marked step, nothing in the loss tells the network that the first value matters.
#   Every kind of layer has an input, so `kioku experiments` compares layers by this one.
#
# The table gives each at the last step and at step 0, and their ratio (step 0 / last
# step): the share of the signal that survives 99 steps back.

# %% [markdown] lang="ja"
# ## 各ステップに届く勾配の大きさ
#
# 損失は最後の出力だけから決まるとします。逆伝播によって、各時刻 `t` の隠れ状態に届く勾配
# `dL/dh_t` が求まります。シンプルなRNNでは、1ステップさかのぼるたびに、この勾配に
# 重み行列とtanhの傾きが掛かります。
#
# $$
# \frac{\partial L}{\partial h_{t-1}}
#   = W_{hh}^\top \left( (1 - h_t^2) \odot \frac{\partial L}{\partial h_t} \right)
# $$
#
# `T` ステップさかのぼれば、このような因子が `T` 個掛け合わされます。因子がちょうど良い大きさで
# ない限り、勾配は指数関数的に小さく(あるいは大きく)なります。
#
# LSTMには、記憶セル `c` というもう1つの経路があります。この経路を1ステップさかのぼるときに
# 掛かるのは、forgetゲート(忘却ゲート)との要素ごとの積(アダマール積)だけです。
#
# $$\frac{\partial L}{\partial c_{t-1}} = f_t \odot \frac{\partial L}{\partial c_t} + \cdots$$
#
# (「…」はゲートと `h` を通る経路の分です。)重み行列も、値を押しつぶす傾きもありません。
# ネットワークが `f` を1に近く保つことを学べば、勾配は多くのステップをほぼそのまま通り抜けます。
#
# まずは学習前のネットワークで、`T = 100` の場合を見てみます(RNNは64ユニット、LSTMは
# 32セルで、再帰部分のパラメータはどちらも約4,500個です)。`gradient_curves` は256系列の
# バッチで順伝播と逆伝播を1回ずつ行い(損失は最後のステップだけで計算します)、各ステップ
# `t` について次の3つの勾配の大きさ(ノルムのバッチ平均)を記録します。
#
# - `dL/dh_t`: 隠れ状態 `h_t` に届く勾配。`h` の経路をさかのぼってくる分です
#   (`kioku.inspect.record_gradients` で記録します)。
# - `dL/dc_t`: 記憶セル `c_t` に届く勾配(LSTMのみ)。`c` の経路をさかのぼってくる分です。
# - `dL/dx_t`: ステップ `t` の**入力**に届く勾配。時刻 `t` の入力が変わったら損失が
#   どれだけ変わるかを表します。加算問題で効いてくるのはこれです。1つ目の印のステップで
#   これがほぼゼロなら、「1つ目の値が答えに関係する」ことを損失からネットワークに伝える
#   手段がありません。入力はどの種類のレイヤにもあるので、`kioku experiments` はこの勾配で
#   レイヤどうしを比べています。
#
# 表には、それぞれの最後のステップとステップ0での値、そしてその比(ステップ0 / 最後の
# ステップ)を載せています。比は、99ステップさかのぼったあとに信号がどれだけ残っているかを
# 表します。

# %%
T_LONG = 100
fresh = {
    kind: LastStepRegressor(kind, 2, 32 if kind == "lstm" else 64, np.random.default_rng(0))
    for kind in ("rnn", "lstm")
}
at_init = {kind: gradient_curves(model, T_LONG, seed=0) for kind, model in fresh.items()}
# [en]
names = {"dx": "dL/dx_t, input", "dh": "dL/dh_t, hidden state", "dc": "dL/dc_t, memory cell"}
print(f"{'':5s} {'last step':>9s} {'step 0':>9s}   {'ratio':>9s}")
# [ja]
names = {"dx": "dL/dx_t 入力", "dh": "dL/dh_t 隠れ状態", "dc": "dL/dc_t 記憶セル"}
print("           最後 ステップ0          比")
# [end]
for kind, curves in at_init.items():
    for name in ("dx", "dh", "dc"):
        if name in curves:
            last, first = curves[name][-1], curves[name][0]
            print(f"{kind:5s} {last:9.1e} {first:9.1e}   {first / last:9.1e}   {names[name]}")

# %% [markdown] lang="en"
# Even untrained, the gradient that reaches step 0 is many orders of magnitude larger in
# the LSTM than in the RNN. But it still decays: an untrained forget gate sits near
# `sigmoid(1) = 0.73` (this LSTM starts its forget bias at 1, `unit_forget_bias=True`),
# and `0.73 ** 100` is tiny. The gate has to *learn* to stay open. So we train both
# networks (Adam, a few hundred updates of 64 sequences) at `T = 40`.

# %% [markdown] lang="ja"
# 学習前でも、ステップ0に届く勾配はLSTMのほうがRNNより何桁も大きくなっています。ただし、
# LSTMでもやはり減衰しています。学習前のforgetゲートは `sigmoid(1) = 0.73` 付近にあり
# (この実験のLSTMは `unit_forget_bias=True` で、forgetゲートのバイアスを1から
# 始めています)、`0.73 ** 100` はごく小さな数です。forgetゲートを開いたまま(1に近い値)に
# 保つこと自体を、データから**学習**しなければならないのです。
# そこで、両方のネットワークを `T = 40` で学習させます(Adam、64系列のミニバッチで数百回の更新)。

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
    # [en]
    print(
        f"{kind}: {history[-1]:.1%} of test sequences correct "
        f"(always answering 0.5: {baseline:.1%})"
    )
    # [ja]
    print(f"{kind}: テスト系列の正解率 {history[-1]:.1%} (常に0.5と答えた場合: {baseline:.1%})")
    # [end]
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

# %% [markdown] lang="en"
# The ratio of the gradient at the first step to the one at the last step says how much
# of the error signal survives the trip back:

# %% [markdown] lang="ja"
# (図のラベルは、日本語フォントのない環境でも表示できるよう英語にしています。左が学習前、
# 右が学習後です。)
#
# 最初のステップに届く勾配と最後のステップの勾配の比を見れば、誤差の信号がさかのぼる途中で
# どれだけ生き残るかがわかります。

# %%
for kind in ("rnn", "lstm"):
    dh = np.asarray(after[kind]["dh"])
    # [en]
    print(f"{kind} after training: dL/dh_0 / dL/dh_T = {dh[0] / dh[-1]:.1e}")
    # [ja]
    print(f"{kind} 学習後: dL/dh_0 / dL/dh_T = {dh[0] / dh[-1]:.1e}")
    # [end]
dc = np.asarray(after["lstm"]["dc"])
# [en]
print(f"lstm after training: dL/dc_0 / dL/dc_T = {dc[0] / dc[-1]:.1e}")
# [ja]
print(f"lstm 学習後: dL/dc_0 / dL/dc_T = {dc[0] / dc[-1]:.1e}")
# [end]
assert dc[0] / dc[-1] > 1e3 * np.asarray(after["rnn"]["dh"])[0] / after["rnn"]["dh"][-1]

# %% [markdown] lang="en"
# The RNN never learns the task: the gradient from the answer does not reach the first
# marked value, so nothing tells the network to keep it. The LSTM learns it, and the
# figure shows how: along its cell, the gradient from the last step still arrives at the
# first steps. `kioku experiments` runs the same comparison at `T` = 10 to 200.

# %% [markdown] lang="ja"
# RNNはこの問題をいつまでも解けません。答えから出た勾配が1つ目の値まで届かないので、
# 「その値を覚えておけ」と教えるものが何もないのです。LSTMは解けるようになります。その理由は
# 図に表れています。記憶セルの経路に沿って、最後のステップの勾配が最初のステップまで
# ほとんど減らずに届いているのです。`kioku experiments` では、同じ比較を `T` = 10 から200まで
# 行っています。

# %% [markdown] lang="en"
# ## Summary
#
# - Backpropagation through time carries the gradient of the loss back step by step. In a
#   simple RNN each step multiplies it by `W_hh^T` and the slope of tanh, so over long
#   spans it shrinks (or grows) geometrically: untrained, at `T = 100`, what reaches step 0
#   is about twenty orders of magnitude below what the last step receives.
# - `dL/dx_t` says how much the answer depends on the input of step `t`. When it is near
#   zero at the first marked step, the loss cannot teach the network to keep that value.
# - The LSTM's memory cell is a second path through time. One step back along it multiplies
#   only by the forget gate `f_t`: no weight matrix, no squashing slope.
# - That path is only as good as the forget gate is open. Untrained it sits near
#   `sigmoid(1) = 0.73`, and `0.73 ** 100` is tiny: keeping `f` near 1 is learned from data.
# - Trained at `T = 40`, the LSTM solves the adding problem and the RNN does no better than
#   always answering 0.5. Along the trained LSTM's cell, the gradient of the answer reaches
#   the first step almost whole.

# %% [markdown] lang="ja"
# ## まとめ
#
# - 時間方向の誤差逆伝播では、損失の勾配を1ステップずつさかのぼって伝えます。シンプルな
#   RNNでは1ステップごとに `W_hh^T` とtanhの傾きが掛かるため、系列が長いと勾配は
#   指数関数的に小さく(あるいは大きく)なります。学習前の `T = 100` では、ステップ0に届く
#   勾配は最後のステップの勾配より20桁ほども小さくなっていました。
# - `dL/dx_t` は、答えがステップ `t` の入力にどれだけ左右されるかを表します。1つ目の印の
#   ステップでこれがほぼゼロなら、その値を覚えておくことを損失から学ぶことはできません。
# - LSTMの記憶セルは、時間方向のもう1本の経路です。この経路を1ステップさかのぼるときに
#   掛かるのはforgetゲート `f_t` だけで、重み行列も、値を押しつぶす傾きもありません。
# - ただし、この経路が役に立つのはforgetゲートが開いているときだけです。学習前のforget
#   ゲートは `sigmoid(1) = 0.73` 付近にあり、`0.73 ** 100` はごく小さな数です。`f` を1の
#   近くに保つことは、データから学習されます。
# - `T = 40` で学習させると、LSTMは加算問題を解けるようになり、RNNは常に0.5と答えるのと
#   変わらないままでした。学習後のLSTMでは、答えの勾配が記憶セルに沿ってほとんど減らずに
#   最初のステップまで届いています。

# %% [markdown] lang="en"
# ## Exercises
#
# Each exercise has a worked solution in `notebooks/solutions/00_vanishing_gradient.py`:
# the functions `exercise_1()`, `exercise_2()` and `exercise_3()` compute the answers, and
# `tests/test_notebook_exercises_00_01.py` checks them another way. Try first, then compare:
#
# ```python
# import importlib
# solutions = importlib.import_module("solutions.00_vanishing_gradient")
# ```
#
# **Exercise 1: one step back, by hand.** The cell below makes a small untrained RNN
# (16 units) and 4 sequences of 30 steps, and prints the norms of `dL/dh_t` that kioku's
# backward gives when the loss is the sum of the last output, `L = sum(h_T)`. Compute the
# same gradients yourself with the formula at the top of this notebook: start from
# `dL/dh_T` = ones (the last step, `t = 29`) and go back one step at a time. The RNN's
# outputs `y_small[t]` are the `h_t`, and its recurrent weights are
# `rnn.params["weight_hh_l0"]` (for a batch of row vectors, as NumPy holds them,
# `W_hh^T v` becomes `v @ W_hh`). Does the norm shrink by the same factor at every step?
# (Solution: `solutions.exercise_1()`.)

# %% [markdown] lang="ja"
# ## 練習問題
#
# 各問題の解答例は `notebooks/solutions/00_vanishing_gradient.py` にあります。関数
# `exercise_1()`、`exercise_2()`、`exercise_3()` が答えを計算し、
# `tests/test_notebook_exercises_00_01.py` が別の方法でその答えを確かめています。まず自分で
# 解いてから、次のようにして見比べてください。
#
# ```python
# import importlib
# solutions = importlib.import_module("solutions.00_vanishing_gradient")
# ```
#
# **問題1: 1ステップずつ手で逆伝播する。** 次のセルでは、学習前の小さなRNN(16ユニット)と
# 長さ30の系列4本を用意し、損失を最後の出力の和 `L = sum(h_T)` としたときにkiokuの逆伝播が
# 求める `dL/dh_t` のノルムを表示します。同じ勾配を、このノートブックの最初に出てきた式を
# 使って自分で計算してください。最後のステップ(`t = 29`)の `dL/dh_T` をすべて1として、
# 1ステップずつさかのぼります。
# RNNの出力 `y_small[t]` が `h_t` で、再帰の重みは `rnn.params["weight_hh_l0"]` です
# (NumPyのように行ベクトルを並べたバッチでは、`W_hh^T v` は `v @ W_hh` と書けます)。
# ノルムは、どのステップでも同じ割合で小さくなっているでしょうか。
# (解答例: `solutions.exercise_1()`)

# %%
rnn = kioku.nn.RNN(2, 16, rng=1)
x_small, _ = adding_batch(np.random.default_rng(3), batch=4, steps=30)
(record_h,) = kioku.inspect.gradient_flow(rnn, x_small)
y_small, _ = rnn(x_small)
# [en]
print("kioku: |dL/dh_t| at t = 29, 20, 10, 0:", record_h.dh_norm[[29, 20, 10, 0]])
# your turn: dL/dh_t for t = 29, 28, ..., 0 from y_small and rnn.params["weight_hh_l0"]
# [ja]
print("kioku: t = 29, 20, 10, 0 での |dL/dh_t|:", record_h.dh_norm[[29, 20, 10, 0]])
# ここから自分で: y_small と rnn.params["weight_hh_l0"] から dL/dh_t (t = 29, ..., 0) を求める
# [end]

# %% [markdown] lang="en"
# **Exercise 2: the cell path alone.** Set the LSTM's recurrent weights to zero and
# `h_{t-1}` no longer enters the gates or the candidate: the "…" in the formula for
# `dL/dc_{t-1}` is gone, and one step back along the cell is exactly
# `dL/dc_{t-1} = f_t ⊙ dL/dc_t`. The cell below makes such an LSTM (8 cells, forget bias 1)
# and traces it over 50 steps.
#
# 1. Compute `dL/dc_t` for every step from the traced forget gates. Start from
#    `dL/dc_T = o_T ⊙ (1 − tanh²(c_T))`, the derivative of `h_T = o_T ⊙ tanh(c_T)` for
#    `L = sum(h_T)`, and compare with kioku's `record_c.dc`.
# 2. Set the forget bias (`bias_ih_l0[8:16]`) to 3, then to 5, and see how much of
#    the gradient now reaches step 0. Compare with `sigmoid(b) ** 49`.
#
# (Solution: `solutions.exercise_2()`.)

# %% [markdown] lang="ja"
# **問題2: 記憶セルの経路だけにする。** LSTMの再帰の重みをゼロにすると、`h_{t-1}` はゲートにも
# 候補にも入らなくなります。すると `dL/dc_{t-1}` の式の「…」が消え、記憶セルに沿って1ステップ
# さかのぼる計算は、ちょうど `dL/dc_{t-1} = f_t ⊙ dL/dc_t` になります。次のセルでは、
# そのようなLSTM(8セル、forgetゲートのバイアスは1)を作り、50ステップの系列でゲートの値を
# 記録します。
#
# 1. 記録したforgetゲートの値から、すべてのステップの `dL/dc_t` を計算してください。
#    出発点は `dL/dc_T = o_T ⊙ (1 − tanh²(c_T))` です(`L = sum(h_T)` のときの
#    `h_T = o_T ⊙ tanh(c_T)` の微分)。kiokuが求めた `record_c.dc` と比べてみましょう。
# 2. forgetゲートのバイアス(`bias_ih_l0[8:16]`)を3、さらに5にして、ステップ0まで
#    勾配がどれだけ届くようになるかを見てください。`sigmoid(b) ** 49` と比べるとどうでしょうか。
#
# (解答例: `solutions.exercise_2()`)

# %%
lstm_path = kioku.nn.LSTM(2, 8, rng=2)
weights = lstm_path.state_dict()
# [en]
weights["weight_hh_l0"][:] = 0.0  # h_{t-1} no longer enters the gates
weights["bias_ih_l0"][8:16] = 1.0  # the forget gate's rows (i, f, g, o): bias 1
# [ja]
weights["weight_hh_l0"][:] = 0.0  # h_{t-1} はもうゲートに入らない
weights["bias_ih_l0"][8:16] = 1.0  # forgetゲートの行(並びは i, f, g, o): バイアスは1
# [end]
weights["bias_hh_l0"][8:16] = 0.0
lstm_path.load_state_dict(weights)
x_path, _ = adding_batch(np.random.default_rng(4), batch=4, steps=50)
with kioku.inspect.trace(lstm_path) as tr:
    (record_c,) = kioku.inspect.gradient_flow(lstm_path, x_path)
gates = tr.get(layer=0)  # gates.forget_gate, gates.output_gate, gates.cell: (50, 4, 8)
norms = np.linalg.norm(record_c.dc, axis=2)  # (50, 4)
# [en]
print(f"kioku: |dL/dc_0| / |dL/dc_T| = {np.mean(norms[0] / norms[-1]):.1e} (mean over the batch)")
# [ja]
print(f"kioku: |dL/dc_0| / |dL/dc_T| = {np.mean(norms[0] / norms[-1]):.1e} (バッチ平均)")
# [end]

# %% [markdown] lang="en"
# **Exercise 3: does the network use the first value?** The target is
# `0.5 + (x1 + x2) / 4`, so its slope with respect to each marked value is 1/4. Nudge the
# first marked value of each test sequence up and down by 0.01 and measure the slope of
# the trained LSTM's answer, `(answer(up) − answer(down)) / 0.02`, then that of the trained
# RNN. Do the same for the second marked value. What does the RNN do instead of solving
# the task? (Solution: `solutions.exercise_3(trained["lstm"], x_probe)`.)

# %% [markdown] lang="ja"
# **問題3: ネットワークは1つ目の値を使っているか。** 正解は `0.5 + (x1 + x2) / 4` なので、
# 印の付いたそれぞれの値に対する傾きは1/4です。テスト系列の1つ目の印の値を0.01だけ上げた
# ものと下げたものを作り、学習済みLSTMの答えの傾き `(答え(上げた) − 答え(下げた)) / 0.02`
# を測ってください。学習済みRNNについても同じように測ります。2つ目の印の値ではどうでしょうか。
# RNNは、問題を解く代わりに何をしているのでしょう。
# (解答例: `solutions.exercise_3(trained["lstm"], x_probe)`)

# %%
x_probe = test_x[:, :500]
first_marked = np.argmax(x_probe[:, :, 1], axis=0)
# [en]
print("first marked step of the first 10 sequences:", first_marked[:10])
print("their values:", np.round(x_probe[first_marked[:10], np.arange(10), 0], 2))
# your turn: copies of x_probe with those values moved by +0.01 and by -0.01
# [ja]
print("最初の10系列で1つ目の印が付いたステップ:", first_marked[:10])
print("その値:", np.round(x_probe[first_marked[:10], np.arange(10), 0], 2))
# ここから自分で: その値を +0.01 と -0.01 だけ動かした x_probe のコピーを作る
# [end]

# %% [markdown] lang="en"
# The next notebook opens the LSTM: its interface (the cell path `c` beside `h`) and its
# gates.

# %% [markdown] lang="ja"
# 次のノートブックでは、LSTMの中を開けてみます。まずはそのインタフェース(`h` と並ぶ記憶セル
# `c` の経路)と、ゲートの仕組みです。
