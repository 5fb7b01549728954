# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown] lang="en"
# # 1. The LSTM's interface and its gates
#
# **1.1** What goes into an LSTM layer and what comes out, next to a simple RNN: the
# memory cell `c`, a second path through time. **1.2** The gates: numbers between 0 and 1
# that say how far each path is open, and that the network learns from data.

# %% [markdown] lang="ja"
# # 1. LSTMのインタフェースとゲート機構
#
# **1.1** LSTMレイヤに何が入り、何が出てくるのかを、シンプルなRNNと並べて確かめます。
# LSTMには、時間方向にもう1本の経路、記憶セル `c` があります。**1.2** ゲート機構を見ます。
# ゲートとは、それぞれの経路をどれだけ開くかを0から1の値で表したもので、
# その値はデータから学習されます。

# %%
import copy
import os
import sys
from pathlib import Path

# [en]
os.environ.setdefault("KIOKU_KERNELS", "reference")  # the readable NumPy path
sys.path.insert(0, str(Path.cwd().parent))  # notebooks/, for course.py
# [ja]
os.environ.setdefault("KIOKU_KERNELS", "reference")  # NumPyの参照実装で動かす
sys.path.insert(0, str(Path.cwd().parent))  # notebooks/ (course.py の置き場所)
# [end]
# %matplotlib inline

import matplotlib.pyplot as plt
import numpy as np
from course import SNIPPET, char_model, sigmoid, untrained_model

import kioku
import kioku.functional
import kioku.inspect

rng = np.random.default_rng(0)

# %% [markdown] lang="en"
# ## 1.1 The interface: `h` and, beside it, `c`
#
# A simple RNN layer carries one thing from step to step, the hidden state `h`. It reads
# `x_t` and `h_{t-1}` and writes `h_t`, which is both its output and what the next step
# reads. The LSTM carries a second thing beside it, the memory cell `c`: one step of it,
# drawn (the gates and the cell line are the subject of this notebook and the next):
#
# ![One LSTM step](../../docs/img/lstm_step_en.png)

# %% [markdown] lang="ja"
# ## 1.1 LSTMの全体像: `h` と、その隣の `c`
#
# シンプルなRNNのレイヤが時刻から時刻へ受け渡すのは、隠れ状態 `h` だけです。`x_t` と
# `h_{t-1}` を受け取って `h_t` を出し、その `h_t` がレイヤの出力であると同時に、
# 次の時刻への入力にもなります。LSTMはその隣に、記憶セル `c` というもう1つの状態を
# 受け渡します。1ステップを図にすると次のようになります(ゲートと記憶セルの経路は、この
# ノートブックと次のノートブックで詳しく見ます)。
#
# ![LSTMの1ステップ](../../docs/img/lstm_step_ja.png)

# %%
T, B, I, H = 6, 2, 3, 4
# [en]
x = rng.normal(size=(T, B, I)).astype(np.float32)  # time-major: (steps, batch, features)
# [ja]
x = rng.normal(size=(T, B, I)).astype(np.float32)  # 時間が先頭: (時刻, バッチ, 特徴量)
# [end]

rnn = kioku.nn.RNN(I, H, rng=0)
y_rnn, h_n = rnn(x)
print("RNN : y", y_rnn.shape, " h_n", h_n.shape)

lstm = kioku.nn.LSTM(I, H, rng=0)
y, (h_n, c_n) = lstm(x)
print("LSTM: y", y.shape, " h_n", h_n.shape, " c_n", c_n.shape)

# %% [markdown] lang="en"
# The LSTM returns a second state, `c_n`: the **memory cell**. Its shape is that of `h`,
# one number per cell, but it plays a different part. Run the same LSTM one step at a
# time with `kioku.nn.LSTMCell` (same weights) and follow both paths: each step takes
# `(x_t, h_{t-1}, c_{t-1})` and gives `(h_t, c_t)`.

# %% [markdown] lang="ja"
# LSTMはもう1つの状態 `c_n` を返します。これが**記憶セル**です。形は `h` と同じで、セル1つに
# 数が1つですが、役割は異なります。同じ重みを持つ `kioku.nn.LSTMCell` で1時刻ずつ動かし、
# 2本の経路を追ってみましょう。各時刻は `(x_t, h_{t-1}, c_{t-1})` を受け取り、
# `(h_t, c_t)` を返します。

# %%
cell = kioku.nn.LSTMCell(I, H)
cell.load_state_dict({name: lstm.params[f"{name}_l0"] for name in cell.params})
h = np.zeros((B, H), np.float32)
c = np.zeros((B, H), np.float32)
for t in range(T):
    h, c = cell(x[t], (h, c))
    # [en]
    assert np.allclose(h, y[t], atol=1e-6)  # the layer's output at t is h_t ...
    # [ja]
    assert np.allclose(h, y[t], atol=1e-6)  # 時刻tのレイヤの出力は h_t
    # [end]
assert np.allclose(h, h_n[0], atol=1e-6) and np.allclose(c, c_n[0], atol=1e-6)
# [en]
print("step by step == whole sequence;  h_T:", np.round(h[0], 3), " c_T:", np.round(c[0], 3))
# [ja]
print("1時刻ずつ == 系列全体;  h_T:", np.round(h[0], 3), " c_T:", np.round(c[0], 3))
# [end]

# %% [markdown] lang="en"
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

# %% [markdown] lang="ja"
# つまり `y` はRNNと同じく隠れ状態 `h_t` の系列であり、`c` はレイヤの外に出ません(状態を
# 引き継ぐための最後の `c_n` を除きます)。
#
# `c_t` には、時刻 `t` におけるLSTMの記憶が格納されています。現在の記憶セル `c_t` は、
# `x_t`、`h_{t-1}`、`c_{t-1}` の3つの入力から計算されます。そのため、過去から時刻 `t` までに
# 必要な情報は、すべてこの中に詰まっていると考えられます。そして、この記憶をもとに
# 隠れ状態 `h_t = o_t ⊙ tanh(c_t)` を計算し、外部のレイヤ(上の層や出力層)へ渡します。
#
# ## 1.2 ゲート機構: 経路の「開き具合」
#
# ゲートは0から1までの実数を並べたベクトルで、情報の流れに要素ごと(`⊙`)に掛けられます。
# 0なら流れを止め、1ならすべて通します。LSTMには3つのゲートがあり、どれも `x_t` と `h_{t-1}`
# からsigmoid関数で計算されます。
#
# - **forgetゲート**(忘却ゲート) `f`: `c_{t-1}` の何を残すか
# - **inputゲート**(入力ゲート) `i`: 新しい候補 `g` をどれだけ `c` に書き込むか
# - **outputゲート**(出力ゲート) `o`: `tanh(c_t)` のどれだけを `h_t` として出力するか
#
# `kioku.inspect.trace` を使うと、すべての時刻のすべてのゲートを記録できます。
# 上の小さなLSTMで見てみましょう。

# %%
with kioku.inspect.trace(lstm) as tr:
    lstm(x)
record = tr.get(layer=0)
for name in ("forget_gate", "input_gate", "output_gate", "candidate"):
    values = getattr(record, name)
    # [en]
    print(f"{name:12s} {values.shape}  min {values.min():+.3f}  max {values.max():+.3f}")
    # [ja]
    print(f"{name:12s} {values.shape}  最小 {values.min():+.3f}  最大 {values.max():+.3f}")
    # [end]
for gate in (record.forget_gate, record.input_gate, record.output_gate):
    assert ((gate > 0) & (gate < 1)).all()
# [en]
assert (np.abs(record.candidate) < 1).all()  # the candidate is a tanh: between -1 and 1
# [ja]
assert (np.abs(record.candidate) < 1).all()  # 候補はtanhなので -1 から 1 の間
# [end]

# %% [markdown] lang="en"
# ### The openness is learned from data
#
# Nobody sets the gates: they are functions of the input with weights, and training
# changes the weights. To see what training does to them we train a small character
# language model (2 layers of 64 cells) on the source code of Python's standard library,
# the text every Python install carries. The training code is in `notebooks/course.py`;
# the model is trained once (about half a minute on a quiet machine) and then loaded
# from a cache by the other notebooks.

# %% [markdown] lang="ja"
# ### 開き具合はデータから学ぶ
#
# ここで重要なのは、ゲートの開き具合を人が決めるのではなく、データから自動的に学ばせる
# ということです。ゲートは重みを持つ入力の関数であり、学習によってその重みが変わります。
#
# 学習でゲートがどう変わるかを見るために、小さな文字単位の言語モデル(64セルのLSTMを2層)を、
# Pythonの標準ライブラリのソースコードで学習させます。Pythonをインストールすれば必ず付いてくる
# テキストなので、ダウンロードは不要です。学習のコードは `notebooks/course.py` にあります。
# 学習は一度だけ(空いているマシンなら30秒ほど)で、結果はキャッシュされ、ほかの
# ノートブックから読み込まれます。

# %%
model, vocab, summary = char_model()
print(
    # [en]
    f"{summary['train_characters']:,} characters; loss {summary['first_bits_per_char']:.2f} "
    f"-> {summary['last_bits_per_char']:.2f} bits per character"
    # [ja]
    f"{summary['train_characters']:,} 文字で学習; 損失 {summary['first_bits_per_char']:.2f} "
    f"-> {summary['last_bits_per_char']:.2f} ビット/文字"
    # [end]
)
assert summary["last_bits_per_char"] < 0.5 * summary["first_bits_per_char"]
sample = model.sample(vocab.encode("def "), 120, temperature=0.5, rng=0)
print("def " + vocab.decode(sample))

# %% [markdown] lang="en"
# Now trace the trained model and the same model before training on a short piece of
# Python, and compare how open the gates of the first layer are.

# %% [markdown] lang="ja"
# 短いPythonのコードを、学習済みのモデルと学習前の同じモデルに読ませ、1層目のゲートの
# 開き具合を比べます。

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

# %% [markdown] lang="en"
# Before training every gate sits near one half: its weights are small and random, so
# the sigmoid's input is near 0. After training they spread towards the ends: many gates
# are now nearly shut or nearly wide open. `kioku.inspect.gate_saturation` counts, per
# cell, the steps where a gate is below 0.1 or above 0.9:

# %% [markdown] lang="ja"
# 学習前(before training)は、どのゲートも0.5付近に集まっています。重みが小さな乱数なので、
# sigmoidへの入力が0に近いからです。学習後(trained)は両端へ広がり、多くのゲートがほぼ
# 閉じているか、ほぼ全開になっています。`kioku.inspect.gate_saturation` で、セルごとに
# ゲートが0.1未満または0.9より大きくなった時刻の割合を数えてみます。

# %%
for label, tr in traces.items():
    parts = []
    for s in kioku.inspect.gate_saturation(tr):
        if s.layer == 0:
            parts.append(f"{s.gate} {np.mean(s.low + s.high):.0%}")
    # [en]
    print(f"{label:16s} saturated steps, layer 0: " + ", ".join(parts))
    # [ja]
    print(f"{label:16s} 1層目で飽和している時刻の割合: " + ", ".join(parts))
    # [end]
sat = {
    label: np.mean([np.mean(s.low + s.high) for s in kioku.inspect.gate_saturation(tr)])
    for label, tr in traces.items()
}
assert sat["trained"] > sat["before training"] + 0.2

# %% [markdown] lang="en"
# The network decided for itself, from the text, when to keep, when to write and when to
# show.

# %% [markdown] lang="ja"
# いつ記憶を残し、いつ書き込み、いつ出力するかを、ネットワークはテキストから自分で
# 決めたわけです。

# %% [markdown] lang="en"
# ## Beside the LSTM: the GRU
#
# Gated RNNs come in many architectures, and the LSTM is the best known of them. The most
# common other one is the GRU (gated recurrent unit, Cho et al. 2014). It keeps the idea,
# gates between 0 and 1 learned from data that decide what to keep and what to write, with
# one state instead of two: there is no separate memory cell, the hidden state `h` is the
# memory.
#
# ![One GRU step](../../docs/img/gru_step_en.png)
#
# $$
# \begin{aligned}
# r_t &= \sigma(x_t W_{xr} + h_{t-1} W_{hr} + b_r) && \text{reset gate} \\
# z_t &= \sigma(x_t W_{xz} + h_{t-1} W_{hz} + b_z) && \text{update gate} \\
# n_t &= \tanh(x_t W_{xn} + b_{xn} + r_t \odot (h_{t-1} W_{hn} + b_{hn}))
#     && \text{candidate (new state)} \\
# h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1} && \text{the new hidden state}
# \end{aligned}
# $$
#
# - the **reset gate** `r` decides how much of `h_{t-1}` the candidate `n_t` is computed
#   from;
# - the **update gate** `z` decides, unit by unit, how much of `h_{t-1}` to keep, and
#   `1 − z` how much of the candidate to write in its place.
#
# So `z` plays the part of the LSTM's forget gate and `1 − z` that of its input gate, tied
# together: what is written is exactly what is erased. There is no output gate: all of the
# memory is the output. In kioku, as in PyTorch, the GRU has the LSTM's interface with one
# state less, `y, h_n = gru(x)` where the LSTM gives `y, (h_n, c_n)`, and three blocks of
# weights (rows r, z, n) where the LSTM has four (i, f, g, o).

# %% [markdown] lang="ja"
# ## LSTMと並べて: GRU
#
# ゲート付きRNNにはさまざまなアーキテクチャがあり、LSTMはその中でもっともよく知られた
# ものです。LSTMの次によく使われるのがGRU(Gated Recurrent Unit、Cho et al. 2014)です。
# 0から1の値をとるゲートをデータから学習し、何を残して何を書き込むかを決めるという
# 考え方はそのままに、状態を2つから1つに減らしています。GRUには独立した記憶セルがなく、
# 隠れ状態 `h` そのものが記憶の役目を果たします。
#
# ![GRUの1ステップ](../../docs/img/gru_step_ja.png)
#
# $$
# \begin{aligned}
# r_t &= \sigma(x_t W_{xr} + h_{t-1} W_{hr} + b_r) && \text{リセットゲート} \\
# z_t &= \sigma(x_t W_{xz} + h_{t-1} W_{hz} + b_z) && \text{更新ゲート} \\
# n_t &= \tanh(x_t W_{xn} + b_{xn} + r_t \odot (h_{t-1} W_{hn} + b_{hn}))
#     && \text{候補(新しい状態)} \\
# h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1} && \text{新しい隠れ状態}
# \end{aligned}
# $$
#
# - **リセットゲート** `r`: 候補 `n_t` を計算するときに、`h_{t-1}` をどれだけ使うか
# - **更新ゲート** `z`: ユニットごとに、`h_{t-1}` をどれだけ残すか。残りの `1 − z` の割合で
#   候補を書き込みます
#
# つまり、`z` がLSTMのforgetゲートの役を、`1 − z` がinputゲートの役を担い、しかも2つが
# 連動しています。書き込んだ分だけ、必ず古い内容が消えるのです。outputゲートはなく、記憶が
# そのまま出力になります。kiokuのGRUは、PyTorchと同じく、LSTMから状態を1つ減らしただけの
# インタフェースです。LSTMが `y, (h_n, c_n)` を返すところで、GRUは `y, h_n` を返します。
# 重みのブロックも、LSTMの4つ(i, f, g, o の行)に対して3つ(r, z, n の行)です。

# %%
gru = kioku.nn.GRU(I, H, rng=0)
y_gru, h_n_gru = gru(x)
print("GRU : y", y_gru.shape, " h_n", h_n_gru.shape)
print("LSTM: y", y.shape, " h_n", h_n.shape, " c_n", c_n.shape)
for net in (gru, lstm):
    name = type(net).__name__
    w_ih, w_hh, count = net.params["weight_ih_l0"], net.params["weight_hh_l0"], net.num_parameters()
    # [en]
    print(f"{name:4s}: weight_ih {w_ih.shape}, weight_hh {w_hh.shape}, {count} parameters")
    # [ja]
    print(f"{name:4s}: weight_ih {w_ih.shape}, weight_hh {w_hh.shape}, パラメータ {count} 個")
    # [end]

# %% [markdown] lang="en"
# The four equations by hand, from the GRU's weights, step by step, against the layer's
# output, and against the gates that `kioku.functional.gru_forward` (the reference math
# below `kioku.nn.GRU`) keeps for its backward. PyTorch's layout stores each weight as
# `(3H, in)`, so `x_t W_xr` is `x[t] @ weight_ih[0:H].T`; the two biases of `r` and of `z`
# add up, while `b_hn` stays inside `r_t ⊙ (...)`.

# %% [markdown] lang="ja"
# 4つの式を、GRUの重みから1ステップずつ手で計算し、レイヤの出力と比べます。さらに、
# `kioku.functional.gru_forward`(`kioku.nn.GRU` の下にある参照実装)が逆伝播のために
# 保存しているゲートの値とも比べます。PyTorchと同じく重みは `(3H, 入力)` の形で
# 保存されているので、`x_t W_xr` は `x[t] @ weight_ih[0:H].T` です。`r` と `z` では
# 2つのバイアスを足し合わせますが、`b_hn` だけは `r_t ⊙ (...)` の内側に残ります。

# %%
W_xr, W_xz, W_xn = np.split(gru.params["weight_ih_l0"].T, 3, axis=1)  # (I, H) each
W_hr, W_hz, W_hn = np.split(gru.params["weight_hh_l0"].T, 3, axis=1)  # (H, H) each
b_xr, b_xz, b_xn = np.split(gru.params["bias_ih_l0"], 3)
b_hr, b_hz, b_hn = np.split(gru.params["bias_hh_l0"], 3)
h = np.zeros((B, H), np.float32)
for t in range(T):
    r = sigmoid(x[t] @ W_xr + h @ W_hr + b_xr + b_hr)
    z = sigmoid(x[t] @ W_xz + h @ W_hz + b_xz + b_hz)
    n = np.tanh(x[t] @ W_xn + b_xn + r * (h @ W_hn + b_hn))
    h = (1 - z) * n + z * h
    assert np.allclose(h, y_gru[t], atol=1e-6)

weights = [gru.params[f"{w}_l0"] for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
_, _, cache = kioku.functional.gru_forward(x, *weights)
# [en]
r_ref, z_ref, n_ref = np.split(cache.gates[-1], 3, axis=1)  # gates (T, B, 3H): r, z, n
# [ja]
r_ref, z_ref, n_ref = np.split(cache.gates[-1], 3, axis=1)  # gates (T, B, 3H): r, z, n の順
# [end]
for mine, ref in ((r, r_ref), (z, z_ref), (n, n_ref)):
    assert np.allclose(mine, ref, atol=1e-6)
# [en]
print("by hand == kioku.nn.GRU == kioku.functional.gru_forward")
print("last step, first sequence: reset", np.round(r[0], 3), " update", np.round(z[0], 3))
# [ja]
print("手計算 == kioku.nn.GRU == kioku.functional.gru_forward")
print("最後の時刻、1本目の系列: リセット", np.round(r[0], 3), " 更新", np.round(z[0], 3))
# [end]

# %% [markdown] lang="en"
# What one state costs and saves: the LSTM can hold something in `c` without showing it
# (`o` near 0) and can add to its memory without erasing any (`f` and `i` both near 1);
# the GRU can do neither, since its new state is always a blend of the old one and the
# candidate. In exchange it has a quarter fewer weights and one state to carry. Neither
# wins everywhere: `kioku experiments` compares them (with the simple RNN and the sLSTM) on
# the adding problem of notebook 00, and `docs/cells.md` sets the cells side by side.

# %% [markdown] lang="ja"
# 状態が1つであることの得失をまとめておきます。LSTMは、`c` に情報を持ったまま外には
# 見せない(`o` を0に近づける)ことも、何も消さずに記憶に足し込む(`f` と `i` をどちらも
# 1に近づける)こともできます。GRUにはどちらもできません。新しい状態は、常に古い状態と
# 候補を混ぜ合わせたものだからです。その代わり、重みは4分の1少なく、受け渡す状態も
# 1つで済みます。どちらが常に優れているということはありません。`kioku experiments` では、
# ノートブック00の加算問題でこれらを(シンプルなRNN、sLSTMとともに)比べています。
# `docs/cells.md` には、各セルの式が並べてあります。

# %% [markdown] lang="en"
# ## Summary
#
# - An LSTM layer takes `x (T, B, I)` and returns `y`, the hidden state `h_t` of every
#   step, and the final state `(h_n, c_n)`. Beside `h` it carries the memory cell `c`,
#   which stays inside the layer.
# - `LSTMCell` with the same weights, run one step at a time, gives the same `y`, `h_n`
#   and `c_n`: each step maps `(x_t, h_{t-1}, c_{t-1})` to `(h_t, c_t)`, and everything
#   the layer keeps of the past is in `h` and `c`.
# - A gate is a vector of numbers between 0 and 1 multiplied element-wise into a flow: the
#   forget gate decides what of `c_{t-1}` to keep, the input gate how much of the candidate
#   `g` to write, the output gate how much of `tanh(c_t)` to show as `h_t`.
# - The gates are functions of `x_t` and `h_{t-1}` with learned weights. Untrained they sit
#   near 0.5; in a character model trained on Python code most are nearly shut or wide
#   open.
# - The GRU has the same interface with one state: its update gate `z` keeps (`z`) and
#   writes (`1 − z`) in one, its reset gate `r` decides how much of `h_{t-1}` the candidate
#   sees, and there is no output gate.

# %% [markdown] lang="ja"
# ## まとめ
#
# - LSTMレイヤは `x (T, B, I)` を受け取り、各時刻の隠れ状態 `h_t` を並べた `y` と、最後の
#   状態 `(h_n, c_n)` を返します。`h` の隣には記憶セル `c` があり、`c` はレイヤの外に
#   出ません。
# - 同じ重みの `LSTMCell` を1時刻ずつ動かしても、同じ `y`、`h_n`、`c_n` が得られます。
#   各時刻は `(x_t, h_{t-1}, c_{t-1})` から `(h_t, c_t)` を計算するだけで、レイヤが過去から
#   受け継ぐものは、すべて `h` と `c` に入っています。
# - ゲートは0から1の値を並べたベクトルで、情報の流れに要素ごとに掛けられます。forgetゲートは
#   `c_{t-1}` の何を残すか、inputゲートは候補 `g` をどれだけ書き込むか、outputゲートは
#   `tanh(c_t)` のどれだけを `h_t` として出力するかを決めます。
# - ゲートは `x_t` と `h_{t-1}` から学習された重みで計算されます。学習前はどれも0.5付近に
#   ありますが、Pythonのコードで学習した文字単位モデルでは、多くがほぼ閉じているか、
#   ほぼ全開になっています。
# - GRUのインタフェースはLSTMと同じで、状態は1つだけです。更新ゲート `z` が「残す」(`z`)と
#   「書き込む」(`1 − z`)を一手に引き受け、リセットゲート `r` が候補の計算に `h_{t-1}` を
#   どれだけ使うかを決めます。outputゲートはありません。

# %% [markdown] lang="en"
# ## Exercises
#
# Each exercise has a worked solution in `notebooks/solutions/01_interface_and_gates.py`:
# the functions `exercise_1()`, `exercise_2()` and `exercise_3()` compute the answers on this
# notebook's `lstm`, `gru` and `x`, and `tests/test_notebook_exercises_00_01.py` checks them
# another way. Try first, then compare:
#
# ```python
# import importlib
# solutions = importlib.import_module("solutions.01_interface_and_gates")
# ```
#
# **Exercise 1: carry the state on.** Run `lstm` over the first three steps of `x`, then
# over the last three, passing the state the first call ended in (`state=(h_n, c_n)`) to the
# second. Join the two `y` along time and compare with `y`, the one call over all six steps.
# Then make the second call without the state: what changes, and why? (This is how a
# language model reads a long text in windows.) (Solution: `solutions.exercise_1()`.)

# %% [markdown] lang="ja"
# ## 練習問題
#
# 各問題の解答例は `notebooks/solutions/01_interface_and_gates.py` にあります。関数
# `exercise_1()`、`exercise_2()`、`exercise_3()` がこのノートブックの `lstm`、`gru`、`x` で
# 答えを計算し、`tests/test_notebook_exercises_00_01.py` が別の方法でその答えを確かめて
# います。まず自分で解いてから、次のようにして見比べてください。
#
# ```python
# import importlib
# solutions = importlib.import_module("solutions.01_interface_and_gates")
# ```
#
# **問題1: 状態を引き継ぐ。** `lstm` に `x` の最初の3時刻を読ませ、続けて残りの3時刻を
# 読ませます。2回目の呼び出しには、1回目が終わったときの状態を `state=(h_n, c_n)` として
# 渡してください。2つの `y` を時間方向につなげ、6時刻を一度に読ませたときの `y` と比べます。
# 次に、2回目を状態なしで呼び出すと何が変わるでしょうか。それはなぜでしょう。(言語モデルが
# 長いテキストを区切って読むときには、このように状態を引き継いでいます。)
# (解答例: `solutions.exercise_1()`)

# %%
y_first, state_first = lstm(x[:3])
# [en]
print("after 3 steps: h_n", state_first[0].shape, " c_n", state_first[1].shape)
# your turn: lstm(x[3:], state=state_first), then np.concatenate and compare with y
# [ja]
print("3時刻のあと: h_n", state_first[0].shape, " c_n", state_first[1].shape)
# ここから自分で: lstm(x[3:], state=state_first) を呼び、np.concatenate でつなげて y と比べる
# [end]

# %% [markdown] lang="en"
# **Exercise 2: shut the forget gate.** On a copy of `lstm`, lower the forget gate's bias by
# 30 (`bias_ih_l0[4:8]`: the rows go in gate order i, f, g, o, `H = 4` each), so
# that `f_t = sigmoid(… − 30)` is practically 0. What is left of
# `c_t = f_t ⊙ c_{t−1} + i_t ⊙ g_t`? Predict `c_t` from the traced `input_gate` and
# `candidate` of the copy, and compare with its traced `cell`. Does the cell at the last
# step still depend on `x[0]`? (Solution: `solutions.exercise_2()`.)

# %% [markdown] lang="ja"
# **問題2: forgetゲートを閉じる。** `lstm` のコピーを作り、forgetゲートのバイアスを30だけ
# 下げてください(`bias_ih_l0[4:8]`。行は i, f, g, o の順に、ゲートごとに `H = 4` 行ずつ
# 並んでいます)。すると `f_t = sigmoid(… − 30)` は事実上0になります。
# `c_t = f_t ⊙ c_{t−1} + i_t ⊙ g_t` のうち、何が残るでしょうか。コピーを `trace` して得た
# `input_gate` と `candidate` から `c_t` を予想し、記録された `cell` と比べてください。
# 最後の時刻の記憶セルは、まだ `x[0]` に左右されるでしょうか。(解答例: `solutions.exercise_2()`)

# %%
shut = copy.deepcopy(lstm)
weights = shut.state_dict()
forget_bias = weights["bias_ih_l0"][4:8] + weights["bias_hh_l0"][4:8]
# [en]
print("forget gate's bias now:", np.round(forget_bias, 3))
# your turn: lower weights["bias_ih_l0"][4:8] by 30, shut.load_state_dict(weights), trace shut
# [ja]
print("いまのforgetゲートのバイアス:", np.round(forget_bias, 3))
# ここから自分で: weights["bias_ih_l0"][4:8] を30下げ、shut.load_state_dict(weights) して trace する
# [end]

# %% [markdown] lang="en"
# **Exercise 3: the GRU's gate that keeps.** Which of the GRU's two gates must be held open
# for it to keep its state, whatever it reads? On a copy of `gru`, raise that gate's bias by
# 30 (its rows of `bias_ih_l0`, in the order r, z, n), run the copy over `x` from the state
# `h0` below, and check that every `y[t]` equals `h0`. Then raise the other gate's bias
# instead and see what happens. (Solution: `solutions.exercise_3()`.)

# %% [markdown] lang="ja"
# **問題3: GRUで記憶を保つゲート。** GRUが何を読んでも状態をそのまま保つようにするには、
# 2つのゲートのどちらを開いたままにすればよいでしょうか。`gru` のコピーを作り、そのゲートの
# バイアスを30上げてください(`bias_ih_l0` の行は r, z, n の順)。コピーに、下の状態 `h0` から
# `x` を読ませ、どの時刻の `y[t]` も `h0` と等しいことを確かめます。もう一方のゲートの
# バイアスを上げた場合はどうなるかも試してみましょう。(解答例: `solutions.exercise_3()`)

# %%
h0 = np.linspace(-0.9, 0.9, B * H, dtype=np.float32).reshape(1, B, H)
print("h0:", np.round(h0[0], 2))
# [en]
# your turn: a copy of gru with one gate's rows of bias_ih_l0 raised by 30; copy(x, h0)
# [ja]
# ここから自分で: gru のコピーの、どちらかのゲートの bias_ih_l0 の行を30上げ、copy(x, h0) を呼ぶ
# [end]

# %% [markdown] lang="en"
# The next notebook takes the four parts of the LSTM's cell one by one: the forget gate,
# the input gate, the new memory (the candidate) and the output gate.

# %% [markdown] lang="ja"
# 次のノートブックでは、セルを構成する4つの部品、forgetゲート、inputゲート、候補(新しい
# 記憶)と記憶セルの更新、outputゲートを1つずつ見ていきます。
