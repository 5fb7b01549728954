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

os.environ.setdefault("KIOKU_KERNELS", "reference")  # NumPyの参照実装で動かす
sys.path.insert(0, str(Path.cwd().parent))  # notebooks/ (course.py の置き場所)
# %matplotlib inline

import matplotlib.pyplot as plt
import numpy as np
from course import SNIPPET, char_model, untrained_model

import kioku
import kioku.inspect

rng = np.random.default_rng(0)

# %% [markdown]
# ## 1.1 LSTMの全体像: `h` と、その隣の `c`
#
# シンプルなRNNのレイヤが時刻から時刻へ受け渡すのは、隠れ状態 `h` だけです。`x_t` と
# `h_{t-1}` を受け取って `h_t` を出し、その `h_t` がレイヤの出力であると同時に、
# 次の時刻への入力にもなります。

# %%
T, B, I, H = 6, 2, 3, 4
x = rng.normal(size=(T, B, I)).astype(np.float32)  # 時間が先頭: (時刻, バッチ, 特徴量)

rnn = kioku.nn.RNN(I, H, rng=0)
y_rnn, h_n = rnn(x)
print("RNN : y", y_rnn.shape, " h_n", h_n.shape)

lstm = kioku.nn.LSTM(I, H, rng=0)
y, (h_n, c_n) = lstm(x)
print("LSTM: y", y.shape, " h_n", h_n.shape, " c_n", c_n.shape)

# %% [markdown]
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
    assert np.allclose(h, y[t], atol=1e-6)  # 時刻tのレイヤの出力は h_t
assert np.allclose(h, h_n[0], atol=1e-6) and np.allclose(c, c_n[0], atol=1e-6)
print("1時刻ずつ == 系列全体;  h_T:", np.round(h[0], 3), " c_T:", np.round(c[0], 3))

# %% [markdown]
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
# - **forgetゲート** `f`: `c_{t-1}` の何を残すか
# - **inputゲート** `i`: 新しい候補 `g` をどれだけ `c` に書き込むか
# - **outputゲート** `o`: `tanh(c_t)` のどれだけを `h_t` として見せるか
#
# `kioku.inspect.trace` を使うと、すべての時刻のすべてのゲートを記録できます。
# 上の小さなLSTMで見てみましょう。

# %%
with kioku.inspect.trace(lstm) as tr:
    lstm(x)
record = tr.get(layer=0)
for name in ("forget_gate", "input_gate", "output_gate", "candidate"):
    values = getattr(record, name)
    print(f"{name:12s} {values.shape}  最小 {values.min():+.3f}  最大 {values.max():+.3f}")
for gate in (record.forget_gate, record.input_gate, record.output_gate):
    assert ((gate > 0) & (gate < 1)).all()
assert (np.abs(record.candidate) < 1).all()  # 候補はtanhなので -1 から 1 の間

# %% [markdown]
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
    f"{summary['train_characters']:,} 文字で学習; 損失 {summary['first_bits_per_char']:.2f} "
    f"-> {summary['last_bits_per_char']:.2f} ビット/文字"
)
assert summary["last_bits_per_char"] < 0.5 * summary["first_bits_per_char"]
sample = model.sample(vocab.encode("def "), 120, temperature=0.5, rng=0)
print("def " + vocab.decode(sample))

# %% [markdown]
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

# %% [markdown]
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
    print(f"{label:16s} 1層目で飽和している時刻の割合: " + ", ".join(parts))
sat = {
    label: np.mean([np.mean(s.low + s.high) for s in kioku.inspect.gate_saturation(tr)])
    for label, tr in traces.items()
}
assert sat["trained"] > sat["before training"] + 0.2

# %% [markdown]
# いつ記憶を残し、いつ書き込み、いつ外に見せるかを、ネットワークはテキストから自分で
# 決めたわけです。次のノートブックでは、セルを構成する4つの部品、forgetゲート、inputゲート、
# 新しい記憶セル(候補)、outputゲートを1つずつ見ていきます。
