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
# 4.5k recurrent parameters each). `gradient_curves` records the norms with
# `kioku.inspect.record_gradients`.

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
# 32セルで、再帰部分のパラメータはどちらも約4,500個です)。`gradient_curves` は
# `kioku.inspect.record_gradients` を使って、各ステップの勾配のノルムを記録します。

# %%
T_LONG = 100
fresh = {
    kind: LastStepRegressor(kind, 2, 32 if kind == "lstm" else 64, np.random.default_rng(0))
    for kind in ("rnn", "lstm")
}
at_init = {kind: gradient_curves(model, T_LONG, seed=0) for kind, model in fresh.items()}
for kind, curves in at_init.items():
    for name, values in curves.items():
        # [en]
        print(f"{kind} {name}: last step {values[-1]:.1e}, step 0 {values[0]:.1e}")
        # [ja]
        print(f"{kind} {name}: 最後のステップ {values[-1]:.1e}, ステップ0 {values[0]:.1e}")
        # [end]

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
#
# The next notebook opens the LSTM: its interface (the cell path `c` beside `h`) and its
# gates.

# %% [markdown] lang="ja"
# RNNはこの問題をいつまでも解けません。答えから出た勾配が1つ目の値まで届かないので、
# 「その値を覚えておけ」と教えるものが何もないのです。LSTMは解けるようになります。その理由は
# 図に表れています。記憶セルの経路に沿って、最後のステップの勾配が最初のステップまで
# ほとんど減らずに届いているのです。`kioku experiments` では、同じ比較を `T` = 10 から200まで
# 行っています。
#
# 次のノートブックでは、LSTMの中を開けてみます。まずはそのインタフェース(`h` と並ぶ記憶セル
# `c` の経路)と、ゲートの仕組みです。
