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
from course import SNIPPET, char_model, untrained_model

import kioku
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
# show. The next notebook takes the four parts of the cell one by one: the forget gate,
# the input gate, the new memory (the candidate) and the output gate.

# %% [markdown] lang="ja"
# いつ記憶を残し、いつ書き込み、いつ外に見せるかを、ネットワークはテキストから自分で
# 決めたわけです。次のノートブックでは、セルを構成する4つの部品、forgetゲート、inputゲート、
# 候補(新しい記憶)と記憶セルの更新、outputゲートを1つずつ見ていきます。
