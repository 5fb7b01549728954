# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown] lang="en"
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

# %% [markdown] lang="ja"
# # 2. LSTMの構造: 4つの部品
#
# LSTMの1時刻分の計算は、入力 `x_t`、1つ前の隠れ状態 `h_{t-1}`、1つ前の記憶セル `c_{t-1}`
# から4つの値を求め、それらを組み合わせるというものです。
#
# $$
# \begin{aligned}
# f_t &= \sigma(x_t W_{xf} + h_{t-1} W_{hf} + b_f) && \text{2.1 forgetゲート(忘却ゲート)} \\
# i_t &= \sigma(x_t W_{xi} + h_{t-1} W_{hi} + b_i) && \text{2.2 inputゲート(入力ゲート)} \\
# g_t &= \tanh(x_t W_{xg} + h_{t-1} W_{hg} + b_g) && \text{2.3 候補(新しい記憶)} \\
# c_t &= f_t \odot c_{t-1} + i_t \odot g_t && \text{2.3 新しい記憶セル} \\
# o_t &= \sigma(x_t W_{xo} + h_{t-1} W_{ho} + b_o) && \text{2.4 outputゲート(出力ゲート)} \\
# h_t &= o_t \odot \tanh(c_t) && \text{2.4 隠れ状態}
# \end{aligned}
# $$
#
# `σ` はsigmoid関数、`⊙` は要素ごとの積(アダマール積)です。このノートブックでは部品ごとに、
# それを計算している `kioku.functional.lstm_step` の行を示し、学習済みの文字単位モデルの
# 重みからNumPyで手計算して、kiokuの結果と一致することを確かめます。そのうえで、その部品が
# 学習済みモデルの中で何をしているかを図にします。

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
from course import SNIPPET, char_model, show_source, sigmoid

import kioku
import kioku.inspect
from kioku.experiments import forgetting
from kioku.experiments.common import Budget
from kioku.functional.lstm import lstm_forward, lstm_step
from kioku.inspect import colours
from kioku.inspect.plots import activation_text, colour_bar

model, vocab, _ = char_model()
text = SNIPPET
tokens = vocab.encode(text)[:, None]  # (T, 1)
with kioku.inspect.trace(model) as tr:
    model(tokens)
# [en]
record = tr.get(layer=0)  # the first LSTM layer; arrays (T, 1, H)
# [ja]
record = tr.get(layer=0)  # LSTMの1層目。配列はどれも (T, 1, H)
# [end]
print(text)

# %% [markdown] lang="en"
# ## Everything the step needs, by hand
#
# The first layer reads the character embeddings. kioku keeps PyTorch's layout: the four
# gates' weights are stacked in one matrix `weight_ih (4H, I)` (and `weight_hh (4H, H)`)
# in the order input, forget, candidate, output. The states entering each step are those
# that left the step before (zeros before the first).

# %% [markdown] lang="ja"
# ## 手計算の準備
#
# 1層目が読むのは文字の埋め込みベクトルです。kiokuの重みはPyTorchと同じ並びで、4つの部品の
# 重みが1つの行列 `weight_ih (4H, I)`(と `weight_hh (4H, H)`)に、input、forget、候補、
# outputの順で積み重なっています。各時刻に入ってくる状態は、1つ前の時刻が出した状態です
# (最初の時刻の前はゼロ)。

# %%
x = model.embedding(tokens)[:, 0].astype(np.float64)  # (T, I)
p = {k: v.astype(np.float64) for k, v in model.lstm.params.items()}
H = model.lstm.hidden_size
# [en]
W_x = dict(zip("ifgo", np.split(p["weight_ih_l0"], 4)))  # each (H, I)
W_h = dict(zip("ifgo", np.split(p["weight_hh_l0"], 4)))  # each (H, H)
b = dict(zip("ifgo", np.split(p["bias_ih_l0"] + p["bias_hh_l0"], 4)))  # each (H,)
# [ja]
W_x = dict(zip("ifgo", np.split(p["weight_ih_l0"], 4)))  # それぞれ (H, I)
W_h = dict(zip("ifgo", np.split(p["weight_hh_l0"], 4)))  # それぞれ (H, H)
b = dict(zip("ifgo", np.split(p["bias_ih_l0"] + p["bias_hh_l0"], 4)))  # それぞれ (H,)
# [end]
h_prev = np.vstack([np.zeros(H), record.hidden[:-1, 0]])  # (T, H): h_{t-1}
c_prev = np.vstack([np.zeros(H), record.cell[:-1, 0]])  # (T, H): c_{t-1}


def pre_activation(gate):
    # [en]
    """x_t W_x + h_{t-1} W_h + b for every step: (T, H)."""
    # [ja]
    """全時刻の x_t W_x + h_{t-1} W_h + b: (T, H)。"""
    # [end]
    return x @ W_x[gate].T + h_prev @ W_h[gate].T + b[gate]


def check(name, by_hand, from_kioku):
    # [en]
    """By hand (float64) against kioku's float32 result, relative to the size of the
    values (a cell can hold numbers far above 1, where float32 has fewer decimals)."""
    # [ja]
    """手計算(float64)とkioku(float32)の差を、値の大きさに対する比で確かめる
    (記憶セルは1よりずっと大きな値を持つことがあり、そこではfloat32の桁が減るため)。"""
    # [end]
    error = np.max(np.abs(by_hand - from_kioku) / (1 + np.abs(by_hand)))
    # [en]
    print(f"{name}: largest relative difference {error:.1e}")
    # [ja]
    print(f"{name}: 最大の相対誤差 {error:.1e}")
    # [end]
    assert error < 1e-5


# %% [markdown] lang="en"
# In kioku all four pre-activations come out of two matrix products: one for the inputs
# of every step at once, before the time loop, and one per step for `h_{t-1}`.
# One step's work is `lstm_step`: the seed's six equations, one line each. The four
# pre-activations sit side by side in one `(B, 4H)` array, in PyTorch's row order
# i, f, g, o; `split_gates` gives the four `(B, H)` blocks as views, and each line
# activates its block in place. (The variants, peepholes, layer normalisation and the
# rest, run a step of their own with hooks; a test checks that it gives the same numbers,
# bit for bit, when no variant is switched on.)

# %% [markdown] lang="ja"
# kiokuでは、4つの部品の活性化前の値が2つの行列積から出てきます。1つは全時刻の入力を
# まとめて、時間のループの前に一度だけ計算するもの、もう1つは時刻ごとに `h_{t-1}` に掛けるもの
# です。1時刻分の計算は `lstm_step` にまとまっていて、シードの6つの式がそれぞれ1行ずつ
# 書かれています。4つの活性化前の値は1つの `(B, 4H)` の配列に、PyTorchと同じ i, f, g, o の
# 順で並んでいます。`split_gates` がそれを4つの `(B, H)` のブロック(ビュー)に分け、各行が
# 自分のブロックをその場で活性化します。(のぞき穴(peephole)や層正規化などの変種は、フックを
# 持つ別のステップで計算します。変種をすべて切ったときに、そのステップがこの `lstm_step` と
# ビット単位で同じ値を出すことはテストで確かめています。)

# %%
show_source(lstm_forward, "preact = (x.reshape")
show_source(lstm_forward, "if bias is not None:", "preact += bias")
show_source(lstm_step, "a = cache.gates[t]", "i, f, g, o = split_gates")

# %% [markdown] lang="en"
# ## 2.1 The forget gate
#
# $$f_t = \sigma(x_t W_{xf} + h_{t-1} W_{hf} + b_f)$$
#
# ![The forget gate in the step](../../docs/img/lstm_forget_gate_en.png)
#
# The forget gate controls what the long-term memory lets go of. Its inputs are the
# current input `x_t` and the previous hidden state `h_{t-1}`; `W_xf` and `W_hf` are the
# weight matrices applied to each, `b_f` the bias. The weighted sum goes through the
# sigmoid, so every element lies between 0 and 1: near 1 a cell keeps its content, near
# 0 it wipes it. In kioku (rows `H:2H` of the stacked pre-activations):

# %% [markdown] lang="ja"
# ## 2.1 forgetゲート(忘却ゲート)
#
# $$f_t = \sigma(x_t W_{xf} + h_{t-1} W_{hf} + b_f)$$
#
# ![1ステップの中のforgetゲート](../../docs/img/lstm_forget_gate_ja.png)
#
# LSTMのforgetゲートは、長期記憶から不要な情報を忘れるための制御を行います。入力は
# 現在の入力 `x_t` と、前の時刻の隠れ状態 `h_{t-1}` です。`W_xf` は現在の入力に、`W_hf` は
# 前の時刻の隠れ状態に適用されるゲートの重み行列で、`b_f` はバイアスです。重み付けされた
# 入力とバイアスの合計がsigmoid関数を通るため、`f_t` の各要素は0から1の値をとります。1に近ければ
# セルは中身を保ち、0に近ければ消し去ります。kiokuでは、積み重なった活性化前の値の
# `H:2H` 行がforgetゲートです。

# %%
show_source(lstm_step, "sigmoid(f, out=f)")
show_source(lstm_step, "np.multiply(f, c_prev")
forget = sigmoid(pre_activation("f"))
# [en]
check("forget gate", forget, record.forget_gate[:, 0])
# [ja]
check("forgetゲート", forget, record.forget_gate[:, 0])
# [end]

# %% [markdown] lang="en"
# What did the trained model learn to forget? Count the cells of the first layer whose
# forget gate shuts (below 0.2 on average) at the end of a line, the character `\n`, and
# among them pick the one whose content follows the position in the line most closely
# (`kioku.inspect.correlations`); the notebook follows that cell from here on.

# %% [markdown] lang="ja"
# 学習済みのモデルは何を忘れることを覚えたのでしょうか。1層目のセルのうち、行末(文字
# `\n`)でforgetゲートが閉じる(平均0.2未満になる)ものを数え、その中から、中身が行内の位置に
# いちばんよく連動しているセルを選びます(`kioku.inspect.correlations`)。このノートブックでは、
# 以降このセルを追いかけます。

# %%
newline = np.array([ch == "\n" for ch in text])
f = record.forget_gate[:, 0]  # (T, H)
closers = np.flatnonzero(f[newline].mean(axis=0) < 0.2)
position = kioku.inspect.get_feature("line_position")(text)  # (T,)
r = kioku.inspect.correlations(record.cell[:, 0], position)  # (H,)
cell = int(closers[np.argmax(np.abs(r[closers]))])
# [en]
print(f"{closers.size} of {H} cells forget at a line end; we follow cell {cell}")
# [ja]
print(f"{H} 個のセルのうち {closers.size} 個が行末で忘れる。以下ではセル {cell} を追う")
# [end]
print(
    # [en]
    f"cell {cell}: forget gate {f[newline, cell].mean():.2f} on average at a line end, "
    f"{f[~newline, cell].mean():.2f} elsewhere"
    # [ja]
    f"セル {cell}: forgetゲートの平均は行末で {f[newline, cell].mean():.2f}、"
    f"それ以外で {f[~newline, cell].mean():.2f}"
    # [end]
)
assert closers.size >= 5 and abs(r[cell]) > 0.5
activation_text(list(text), f[:, cell], f"forget gate of cell {cell}", kind="gate", quantity="f")

# %% [markdown] lang="en"
# Gates are drawn from white (0, closed) to dark green (1, open), the same scale in every
# notebook, the report and `kioku view`. White is where this gate closes: at every line end
# (⏎) this cell drops what it held.
#
# ### Why forget at all: a stream that never ends
#
# The first LSTM (Hochreiter and Schmidhuber, 1997) had no forget gate: in effect `f = 1`
# always, and `c_t = c_{t-1} + i_t ⊙ g_t`. Its cell could only add. Gers, Schmidhuber and
# Cummins (2000) added the forget gate after finding that on a continual input, a stream
# that is never cut into separate sequences, such a cell grows without bound.
#
# `kioku experiments` repeats their test (`kioku.experiments.forgetting`). The stream is
# made of segments of 12 to 24 steps; each step shows one of 4 symbols. In the first four
# steps of a segment a *store* flag marks one symbol, and at the segment's last step a
# *query* flag asks for it. The state is carried on from one chunk of 40 steps to the
# next and never reset, so a network has to erase the old symbol when a new one comes.
# Two networks of 32 cells are trained the same way (700 chunks, the experiment's quick
# setting, `kioku experiments --quick --only forgetting`): one with its forget gate held
# at exactly 1, one that learns it. Then each reads a fresh stream of 2,000 steps, and we
# record the size of its cells and its answers at the query steps (about 20 seconds for
# both on two quiet cores):

# %% [markdown] lang="ja"
# ゲートは白(0、閉)から濃い緑(1、開)で描きます。どのノートブックでも、レポートでも
# `kioku view` でも同じ色の決まりです。白いところでゲートが閉じています。このセルは
# 行末(⏎)が来るたびに、それまでの中身を捨てています。
#
# ### そもそもなぜ忘れるのか: 終わりのない系列
#
# 最初のLSTM(Hochreiter & Schmidhuber, 1997)にはforgetゲートがありませんでした。常に
# `f = 1` であるのと同じで、`c_t = c_{t-1} + i_t ⊙ g_t` となり、記憶セルは足し込むことしか
# できません。Gers, Schmidhuber & Cummins(2000)は、個々の系列に区切られずに入力が
# 流れ続ける場合、このような記憶セルの値が際限なく大きくなることを見いだし、forgetゲートを
# 加えました。
#
# `kioku experiments` はこの実験を再現しています(`kioku.experiments.forgetting`)。系列は
# 12〜24ステップの区間が連なったもので、各ステップには4種類の記号のどれか1つが現れます。
# 区間の最初の4ステップのどこか1つで、その時刻の記号に store の印(「これを覚えておく」と
# いう合図)が付きます。区間の最後のステップには query の印(「答える」という合図)が付き、
# そこで覚えておいた記号を答えなければなりません。
# 状態は40ステップずつの区切りをまたいで引き継がれ、一度もリセットされません。そのため
# ネットワークは、新しい記号が来たら古い記号を消さなければなりません。32セルのネットワークを
# 2つ、同じ手順で学習させます(区切り700個分。実験の quick 設定で、
# `kioku experiments --quick --only forgetting` と同じです)。一方はforgetゲートをちょうど1に
# 固定したもの、もう一方はforgetゲートを学習するものです。学習後、それぞれに新しい2,000
# ステップの系列を読ませ、記憶セルの大きさと、問い合わせへの答えを記録します(空いている
# 2コアのマシンで、2つ合わせて20秒ほどかかります)。

# %%
results = forgetting.run(Budget(quick=True), seed=0, log=lambda line: None)
held = results["variants"]["forget gate open (f = 1)"]
learned = results["variants"]["learned forget gate"]
# [en]
runs = {"forget gate held at 1": held, "learned forget gate": learned}
for name, run in runs.items():
    print(
        f"{name:22s}: {run['accuracy']:.0%} of the queries right (chance 25%), "
        f"mean |c| {run['mean_abs_c_first_window']:.2f} over the first 200 steps, "
        f"{run['mean_abs_c_last_window']:.2f} over the last 200"
    )
# [ja]
runs = {"forgetゲートを1に固定": held, "forgetゲートを学習": learned}
for name, run in runs.items():
    print(
        f"{name}: 問い合わせの正解率 {run['accuracy']:.0%}(当てずっぽうなら25%)、"
        f"|c| の平均は最初の200ステップで {run['mean_abs_c_first_window']:.2f}、"
        f"最後の200ステップで {run['mean_abs_c_last_window']:.2f}"
    )
# [end]
assert held["mean_abs_c_last_window"] > 2 * held["mean_abs_c_first_window"]
assert learned["accuracy"] > 0.9 > 0.4 > held["accuracy"]

fig, (left, right) = plt.subplots(1, 2, figsize=(12, 3.4))
windows = np.arange(len(held["window_accuracy"])) * 200 + 100  # each window's middle step
for (label, run), colour in zip(
    (("f = 1 (no forget gate)", held), ("learned f", learned)), ("C3", "C0")
):
    left.plot(run["mean_abs_c"], color=colour, label=label)
    right.plot(windows, run["window_accuracy"], "o-", color=colour, label=label)
left.set_yscale("log")
left.set_xlabel("step of the stream (never reset)")
left.set_ylabel("mean |c| over cells and streams")
right.axhline(0.25, color="grey", ls="--", label="chance (1 in 4)")
right.set_ylim(0, 1.05)
right.set_xlabel("step of the stream (windows of 200)")
right.set_ylabel("queries answered right")
for ax in (left, right):
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
plt.show()

# %% [markdown] lang="en"
# With the forget gate held at 1 the cells grow step after step, to a few hundred on
# average by the end: the cell is the running sum of everything the input gate ever let
# in (exercise 3 rebuilds it that way), and nothing takes anything out. The stored symbol
# drowns in all the earlier ones, and the answers stay at chance. The network that learns
# its forget gate learns to erase: its cells stay near 1 all along the stream, and it
# answers the queries right. The cell of the character model above does the same at
# every line end.
#
# ## 2.2 The input gate
#
# $$i_t = \sigma(x_t W_{xi} + h_{t-1} W_{hi} + b_i)$$
#
# ![The input gate and the candidate in the step](../../docs/img/lstm_input_gate_en.png)
#
# New information is not written into the memory blindly: the input gate weighs how much
# each new piece is worth adding, so what enters the cell is `i_t ⊙ g_t`, the candidate
# `g_t` (2.3) scaled by the gate. Same form as the forget gate, its own weights (rows
# `0:H`):

# %% [markdown] lang="ja"
# forgetゲートを1に固定したネットワークでは、記憶セルがステップごとに大きくなり、最後には
# 平均で数百に達します。記憶セルは、inputゲートがこれまでに通したものをすべて足し合わせた
# 累積和になっていて(練習問題3では実際にそうやって組み立て直します)、何も取り除かれないからです。
# 覚えるべき記号はそれ以前の記号すべてに埋もれてしまい、正解率は当てずっぽうと変わりません。
# 一方、forgetゲートを学習したネットワークは消すことを覚えます。記憶セルは系列のどこでも
# 1前後にとどまり、問い合わせにも正しく答えます。上で見た文字単位モデルのセルが行末のたびに
# しているのも、これと同じことです。
#
# ## 2.2 inputゲート(入力ゲート)
#
# $$i_t = \sigma(x_t W_{xi} + h_{t-1} W_{hi} + b_i)$$
#
# ![1ステップの中のinputゲートと候補](../../docs/img/lstm_input_gate_ja.png)
#
# 新しい情報を記憶に追加するとき、何も考えずに追加するのではなく、追加する情報として
# どれだけ価値があるかを判断したうえで選びます。その判断をするのがinputゲートです。
# セルに実際に入るのは、候補 `g_t`(2.3)をinputゲートで重み付けした `i_t ⊙ g_t` です。
# 式の形はforgetゲートと同じで、重みだけが別です(`0:H` 行)。

# %%
show_source(lstm_step, "sigmoid(i, out=i)")
show_source(lstm_step, "c_next += np.multiply(i, g")
input_gate = sigmoid(pre_activation("i"))
# [en]
check("input gate", input_gate, record.input_gate[:, 0])
# [ja]
check("inputゲート", input_gate, record.input_gate[:, 0])
# [end]

# %%
i = record.input_gate[:, 0]
g = record.candidate[:, 0]
# [en]
print(f"cell {cell}: input gate {i[:, cell].mean():.2f} on average; what it writes, i * g:")
# [ja]
print(f"セル {cell}: inputゲートの平均 {i[:, cell].mean():.2f}。書き込まれる量 i ⊙ g:")
# [end]
title = f"i ⊙ g of cell {cell}: what is written (white: nothing)"
activation_text(list(text), (i * g)[:, cell], title, kind="signed", quantity="g")

# %% [markdown] lang="en"
# ## 2.3 The new memory cell
#
# $$g_t = \tanh(x_t W_{xg} + h_{t-1} W_{hg} + b_g), \qquad c_t = f_t \odot c_{t-1} + i_t \odot g_t$$
#
# ![The cell update in the step](../../docs/img/lstm_cell_update_en.png)
#
# The cell is the LSTM's long-term memory; each step deletes what has gone stale and adds
# what is new. In order:
#
# 1. from `x_t` and `h_{t-1}`, the input gate `i_t` (a sigmoid) and, at the same time,
#    the candidate `g_t` (a tanh, between -1 and 1): the new information;
# 2. `i_t ⊙ g_t`: the part of the candidate that the input gate lets in;
# 3. `f_t ⊙ c_{t-1}`: the old cell, with what the forget gate dropped removed;
# 4. the sum of the two is the new cell `c_t`.

# %% [markdown] lang="ja"
# ## 2.3 新しい記憶セル
#
# $$g_t = \tanh(x_t W_{xg} + h_{t-1} W_{hg} + b_g), \qquad c_t = f_t \odot c_{t-1} + i_t \odot g_t$$
#
# ![1ステップの中の記憶セルの更新](../../docs/img/lstm_cell_update_ja.png)
#
# 記憶セルはLSTMの長期記憶です。古くなった記憶を削除し、新しい情報を追加することで、
# 適切な長期記憶を保ちます。具体的には次の順に計算されます。
#
# 1. inputゲートの計算: 現在の入力 `x_t` と前の隠れ状態 `h_{t-1}` から、inputゲート `i_t` が
#    sigmoid関数で計算されます。同時に、tanh関数で新しい候補セル状態 `g_t`(-1から1の値)が
#    作られます。
# 2. セル状態の更新: inputゲートと候補がアダマール積 `i_t ⊙ g_t` で組み合わされます。また、
#    forgetゲートによって前のセル状態が `f_t ⊙ c_{t-1}` に更新されます。
# 3. 最終的なセル状態: 更新された前のセル状態と、新しく作られた情報が足し合わされ、
#    新しいセル状態 `c_t` になります。

# %%
show_source(lstm_step, "np.tanh(g, out=g)")
show_source(lstm_step, "np.multiply(f, c_prev", "c_next += np.multiply(i, g")
candidate = np.tanh(pre_activation("g"))
# [en]
check("candidate", candidate, record.candidate[:, 0])
# [ja]
check("候補 g", candidate, record.candidate[:, 0])
# [end]
new_cell = forget * c_prev + input_gate * candidate
# [en]
check("cell", new_cell, record.cell[:, 0])
# [ja]
check("記憶セル c", new_cell, record.cell[:, 0])
# [end]

# %% [markdown] lang="en"
# Follow the same cell through the first two lines: at the line end the forget gate
# shuts and the cell falls back to about 0; along the next line the input gate lets a
# share of the candidate in at each character, so the cell moves step by step like a
# counter of the position in the line.

# %% [markdown] lang="ja"
# 同じセルを最初の2行にわたって追ってみます。行末でforgetゲートが閉じ、セルはほぼ0に
# 戻ります。次の行では1文字ごとにinputゲートが候補の一部を通すので、セルは一歩ずつ動き、
# 行内の位置を数えるカウンタのように振る舞います。

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
# [en]
print(f"correlation of cell {cell} with the position in the line: {r[cell]:+.2f}")
# [ja]
print(f"セル {cell} と行内の位置との相関: {r[cell]:+.2f}")
# [end]
activation_text(list(text), c[:, cell], f"cell state c of cell {cell}", quantity="c")

# %% [markdown] lang="en"
# ## 2.4 The output gate
#
# $$o_t = \sigma(x_t W_{xo} + h_{t-1} W_{ho} + b_o), \qquad h_t = o_t \odot \tanh(c_t)$$
#
# ![The output gate in the step](../../docs/img/lstm_output_gate_en.png)
#
# The output gate forms the hidden state. The updated cell `c_t` goes through tanh, and
# the output gate, computed like the others from `x_t` and `h_{t-1}`, decides for every
# element how much of it matters as the hidden state: what the next step and the layer
# above get to see. The product of the two is `h_t`.

# %% [markdown] lang="ja"
# ## 2.4 outputゲート(出力ゲート)
#
# $$o_t = \sigma(x_t W_{xo} + h_{t-1} W_{ho} + b_o), \qquad h_t = o_t \odot \tanh(c_t)$$
#
# outputゲートは隠れ状態を作るのに使われます。更新された記憶セル `c_t` をtanh関数に通し、
# その各要素について「次の時刻の隠れ状態としてどれだけ重要か」をoutputゲートが調整します。
# outputゲートの開き具合も、ほかのゲートと同じく入力 `x_t` と前の状態 `h_{t-1}` から求めます。
# sigmoid関数による出力 `o_t` と、記憶セルをtanh関数に通した tanh(c_t) とのアダマール積が、
# 新しい隠れ状態 `h_t` です。
#
# ![出力ゲート](../../docs/img/lstm_output_gate_ja.png)

# %%
show_source(lstm_step, "sigmoid(o, out=o)")
show_source(lstm_step, "np.multiply(o, np.tanh(c_next")
output_gate = sigmoid(pre_activation("o"))
# [en]
check("output gate", output_gate, record.output_gate[:, 0])
# [ja]
check("outputゲート", output_gate, record.output_gate[:, 0])
# [end]
hidden = output_gate * np.tanh(new_cell)
# [en]
check("hidden state", hidden, record.hidden[:, 0])
# [ja]
check("隠れ状態 h", hidden, record.hidden[:, 0])
# [end]

# %% [markdown] lang="en"
# The cell can hold large numbers; the hidden state is always between -1 and 1, and the
# output gate decides when a cell's content is shown. To see it, pick the cells where the
# output gate does the most: the eight cells of the first layer whose output gate varies
# most over the snippet (the largest standard deviation of `o`), sorted from the most
# often closed (top) to the most often open (bottom). For each, over the first two lines:
# `tanh(c)`, what the cell holds, squashed into (-1, 1); `o`; and their product, `h`.

# %% [markdown] lang="ja"
# 記憶セルは大きな値を持てますが、隠れ状態は必ず-1から1の間に収まります。セルの中身を
# いつ外に見せるかを決めるのはoutputゲートです。それを見るために、outputゲートがいちばん
# 働いているセルを選びます。1層目のセルのうち、スニペット全体で `o` の変動がいちばん大きい
# (標準偏差が大きい)8個です。上から、閉じていることの多い順(下ほど開いていることが多い)に
# 並べます。それぞれのセルについて、最初の2行で、`tanh(c)`(セルの中身を-1から1に押し込んだ
# もの)、`o`、そして両者の積 `h` を描きます。

# %%
o = record.output_gate[:, 0]
h = record.hidden[:, 0]
shown = np.argsort(-o.std(axis=0))[:8]  # the output gate varies most
shown = shown[np.argsort(o[:, shown].mean(axis=0))]  # most often closed first
held_back = (np.abs(np.tanh(c)) > 0.5) & (o < 0.2)  # holds something, shows little
# [en]
print(f"|c| up to {np.abs(c).max():.1f}; |h| up to {np.abs(h).max():.2f}")
print(f"cells shown, most often closed first: {shown.tolist()}")
print(
    f"over all {H} cells and the whole snippet, {held_back.mean():.0%} of the (step, cell) "
    "pairs hold something (|tanh c| > 0.5) that the output gate keeps back (o < 0.2)"
)
# [ja]
print(f"|c| の最大 {np.abs(c).max():.1f}、|h| の最大 {np.abs(h).max():.2f}")
print(f"表示するセル(閉じていることの多い順): {shown.tolist()}")
print(
    f"{H} 個のセルとスニペット全体では、(時刻, セル) の組の {held_back.mean():.0%} で、"
    "セルが中身を持っている(|tanh c| > 0.5)のに、outputゲートがそれを出さずにいる(o < 0.2)"
)
# [end]
fig, axes = plt.subplots(3, 1, figsize=(12, 5.6), sharex=True)
for ax, values, name, quantity, kind in (
    (axes[0], np.tanh(c), "tanh(c)", "c", "signed"),
    (axes[1], o, "o", "o", "gate"),
    (axes[2], h, "h = o ⊙ tanh(c)", "h", "signed"),
):
    part = values[:first_lines][:, shown].T  # (8, steps)
    scale = colours.colour_scale(kind, part, quantity)  # gates 0..1, the rest ±1 around 0
    image = ax.imshow(
        part,
        aspect="auto",
        cmap=colours.colormap(kind),
        vmin=scale.low,
        vmax=scale.high,
        interpolation="nearest",
    )
    ax.set_yticks(range(len(shown)), [str(k) for k in shown], fontsize=8)
    ax.set_ylabel("cell")
    ax.set_title(f"{name}    {scale.legend}", fontsize=9, loc="left")
    colour_bar(fig, image, ax, scale)
axes[2].set_xticks(steps, [{"\n": "⏎", " ": "·"}.get(ch, ch) for ch in text[:first_lines]])
axes[2].tick_params(axis="x", labelsize=7)
plt.show()

# %% [markdown] lang="en"
# Read the three panels of a row together. Where `o` is near 0 (white in the middle
# panel), `h` is white even where `tanh(c)` is dark: the cell keeps its content to
# itself, and the next step and the layer above see nothing of it. Where `o` is near 1
# (green), `h` shows `tanh(c)` as it is. The content is not lost while it is hidden: it
# stays in `c` until the forget gate lets it go.
#
# ## Exercises
#
# Each exercise has a worked solution in `notebooks/solutions/02_the_four_parts.py`: the
# functions `exercise_1()`, `exercise_2()` and `exercise_3()` compute the answers, with the
# working in their docstrings and comments, and `tests/test_notebook_exercises_02_03.py`
# checks them another way. Try first, then compare:
#
# ```python
# import importlib
# solutions = importlib.import_module("solutions.02_the_four_parts")
# ```
#
# 1. **The four parts, backwards.** Take one step of a one-layer LSTM with 3 inputs and 4
#    cells in float64 (`solutions.exercise_1_setup()` gives the LSTM, `x`, the
#    entering state `(h_0, c_0)` and two weight vectors `w_h`, `w_c`) and the loss
#    `L = Σ w_h ⊙ h_1 + Σ w_c ⊙ c_1`. From the six equations alone, derive by hand the
#    gradient of `L` with respect to the four pre-activations (in the order i, f, g, o),
#    and with respect to `x`, `h_0` and `c_0`. Compare with `lstm.backward`. Hints:
#    `σ' = σ (1 - σ)`, `tanh' = 1 - tanh²`, and `c_1` reaches `L` along two paths.
#    (Solution: `solutions.exercise_1()`.)
# 2. **How long does a cell remember?** With the input gate shut nothing is written, so
#    `c_n = f^n c_0`. kioku's `unit_forget_bias=True` (as in Keras) sets the forget gate's
#    bias to 1. With all weights at zero, after how many steps does the cell hold half of
#    its content? What bias keeps at least half for 100 steps? Check both by running a
#    one-cell `kioku.nn.LSTM` with those weights. (Solution: `solutions.exercise_2()`.)
# 3. **Without a forget gate, the cell only adds.** Take the forgetting experiment's
#    model with its forget gate held at 1 (`StreamTagger` and `hold_forget_gate_open`
#    from `kioku.experiments.forgetting`; `solutions.exercise_3_setup()` makes one,
#    untrained), trace it on 2,000 steps of the stream and rebuild its cell at every step
#    from the traced `i` and `g` alone. How large is the mean `|c|` after 50 steps, and
#    after 2,000? (Solution: `solutions.exercise_3()`.)
#
# ## Summary
#
# - Each of the four parts is one line of `lstm_step`, and each was recomputed here by
#   hand from the trained model's weights, equal to kioku's to float32 rounding.
# - The forget gate `f` decides what the cell keeps: cells of the character model shut it
#   at every line end. Without it (`f = 1`) the cell is a running sum that grows without
#   bound on an endless stream, and the stream task stays at chance.
# - The input gate `i` decides how much of the candidate `g` (between -1 and 1) is
#   written; step by step, the followed cell counts the position in the line.
# - The cell `c` can hold large numbers; `h = o ⊙ tanh(c)` stays between -1 and 1, and
#   the output gate `o` decides when the content is shown.
# - One colour language throughout: gates from white (0, closed) to green (1, open); `g`,
#   `c` and `h` blue below zero, white at zero, red above.
#
# The last notebook stacks layers and runs them in both directions.

# %% [markdown] lang="ja"
# 各行の3つのパネルを合わせて読みます。`o` が0に近い(中段が白い)ところでは、`tanh(c)` が
# 濃くても `h` は白くなります。セルは中身を内に秘めたままで、次の時刻にも上の層にも何も
# 伝わりません。`o` が1に近い(緑の)ところでは、`h` に `tanh(c)` がそのまま現れます。
# 隠されている間も中身が失われるわけではありません。forgetゲートが手放すまで、`c` の中に
# とどまっています。
#
# ## 練習問題
#
# 各問題の解答例は `notebooks/solutions/02_the_four_parts.py` にあります。関数
# `exercise_1()`、`exercise_2()`、`exercise_3()` が答えを計算し(考え方はdocstringとコメントに
# 書いてあります)、`tests/test_notebook_exercises_02_03.py` が別の方法でその答えを確かめて
# います。まず自分で解いてから、次のようにして見比べてください。
#
# ```python
# import importlib
# solutions = importlib.import_module("solutions.02_the_four_parts")
# ```
#
# 1. **4つの部品を逆向きにたどる。** 入力3、セル4の1層のLSTM(float64)の1ステップと、損失
#    `L = Σ w_h ⊙ h_1 + Σ w_c ⊙ c_1` を考えます(`solutions.exercise_1_setup()` がLSTM、`x`、
#    入ってくる状態 `(h_0, c_0)`、2つの重みベクトル `w_h`、`w_c` を返します)。6つの式だけを
#    手がかりに、4つの活性化前の値(i, f, g, o の順)についての `L` の勾配と、`x`、`h_0`、
#    `c_0` についての勾配を手で導き、`lstm.backward` の結果と比べてください。ヒント:
#    `σ' = σ (1 - σ)`、`tanh' = 1 - tanh²`。また、`c_1` から `L` への経路は2本あります。
#    (解答例: `solutions.exercise_1()`)
# 2. **セルはどれだけ覚えていられるか。** inputゲートが閉じていれば何も書き込まれないので、
#    `c_n = f^n c_0` です。kiokuの `unit_forget_bias=True`(Kerasと同じ)は、forgetゲートの
#    バイアスを1にします。重みがすべてゼロのとき、セルの中身が半分になるのは何ステップ後
#    でしょうか。また、100ステップ後にも半分以上を残すには、バイアスをいくつにすればよい
#    でしょうか。その重みを持つ1セルの `kioku.nn.LSTM` を実際に動かして、両方を確かめて
#    ください。(解答例: `solutions.exercise_2()`)
# 3. **forgetゲートがなければ、セルは足すだけ。** 忘却の実験のモデルで、forgetゲートを1に
#    固定したもの(`kioku.experiments.forgetting` の `StreamTagger` と
#    `hold_forget_gate_open`。`solutions.exercise_3_setup()` が未学習のものを作ります)を
#    2,000ステップの系列でトレースし、トレースした `i` と `g` だけから、各時刻の記憶セルを
#    組み立て直してください。`|c|` の平均は、50ステップ後と2,000ステップ後でどれくらいに
#    なるでしょうか。(解答例: `solutions.exercise_3()`)
#
# ## まとめ
#
# - 4つの部品はそれぞれ `lstm_step` の1行です。どれも学習済みモデルの重みから手計算し、
#   kiokuの結果とfloat32の丸め誤差の範囲で一致することを確かめました。
# - forgetゲート `f` は、セルが何を保つかを決めます。文字単位モデルには、行末のたびにこの
#   ゲートを閉じるセルがありました。forgetゲートがない(`f = 1`)と、終わりのない系列の上で
#   セルは際限なく大きくなる累積和になり、記号を答える課題は当てずっぽうの域を出ません。
# - inputゲート `i` は、候補 `g`(-1から1の値)をどれだけ書き込むかを決めます。追いかけた
#   セルは、1文字ごとに行内の位置を数えていました。
# - 記憶セル `c` は大きな値を持てますが、`h = o ⊙ tanh(c)` は-1から1の間に収まり、中身を
#   いつ見せるかはoutputゲート `o` が決めます。
# - 色の決まりはどこでも同じです。ゲートは白(0、閉)から緑(1、開)、`g`、`c`、`h` は
#   負なら青、ゼロで白、正なら赤です。
#
# 最後のノートブックでは、層を積み重ね、系列を両方向から読んでみます。
