# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown] lang="en"
# # 3. Beyond one layer, one direction
#
# **3.1** A multi-layer (stacked) LSTM: several recurrent layers on top of each other,
# each reading the sequence of hidden states of the layer below. **3.2** A bidirectional
# LSTM: one LSTM reads the sequence forwards, another backwards, and their states are
# joined at every step, so that every step sees its past and its future.

# %% [markdown] lang="ja"
# # 3. 発展的なLSTM
#
# **3.1** 多層LSTM: 複数のリカレント層を積み重ね、各層が下の層の隠れ状態の系列を入力として
# 受け取る構造です。**3.2** 双方向LSTM: 一方のLSTMが系列を前から、もう一方が後ろから読み、
# 各時刻で2つの状態を結合します。これで、どの時刻も過去と未来の両方を見ることができます。

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
from course import SETTINGS, char_model, train_char_model

import kioku
import kioku.inspect
from kioku.data import stdlib_corpus
from kioku.experiments.common import optimiser, update
from kioku.experiments.depth import valid_bits_per_char
from kioku.experiments.direction import ambiguous_sentences, encode, tagging_vocabulary
from kioku.models import SequenceTagger

# %% [markdown] lang="en"
# ## 3.1 Stacked LSTMs
#
# The character model of the earlier notebooks has two layers. The first reads the
# character embeddings; the second reads the first layer's hidden states `h_t`, one per
# step, as its input. Each layer has its own weights and its own state `(h, c)`:
#
# ![A stacked LSTM](../../docs/img/lstm_stacked_en.png)
#
# To see that this is all there is to it, rebuild the two layers as two separate one-layer
# LSTMs and chain them by hand:

# %% [markdown] lang="ja"
# ## 3.1 多層LSTM
#
# 多層LSTM(Multi-layer LSTM、Stacked LSTMとも呼ばれます)は、複数のリカレント層を積み重ねた
# ニューラルネットワークの構造です。これまでのノートブックで使ってきた文字単位のモデルも
# 2層になっています。1層目は文字の埋め込みを読み、2層目は1層目の隠れ状態 `h_t` を時刻ごとに
# 入力として受け取ります。各層は独自の重みと独自の状態 `(h, c)` を持ちます。
#
# ![多層LSTM](../../docs/img/lstm_stacked_ja.png)
#
# 本当にそれだけなのかを確かめるために、2つの層をそれぞれ1層のLSTMとして作り直し、手で
# つないでみます。

# %%
model, vocab, _ = char_model()
lstm = model.lstm
# [en]
print(f"{lstm.num_layers} layers; h_n and c_n hold one state per layer:")
# [ja]
print(f"{lstm.num_layers} 層。h_n と c_n は層ごとに状態を1つずつ持つ:")
# [end]
x = model.embedding(vocab.encode("for line in lines:\n")[:, None])  # (T, 1, E)
y, (h_n, c_n) = lstm(x)
print("  y", y.shape, " h_n", h_n.shape, " c_n", c_n.shape)

layers = []
for k in range(lstm.num_layers):
    single = kioku.nn.LSTM(lstm.input_size if k == 0 else lstm.hidden_size, lstm.hidden_size)
    single.load_state_dict({name: lstm.params[name[:-1] + str(k)] for name in single.params})
    layers.append(single)
# [en]
below, (h0, c0) = layers[0](x)  # layer 0 reads the characters
above, (h1, c1) = layers[1](below)  # layer 1 reads layer 0's hidden states
# [ja]
below, (h0, c0) = layers[0](x)  # 1層目は文字を読む
above, (h1, c1) = layers[1](below)  # 2層目は1層目の隠れ状態を読む
# [end]
assert np.allclose(above, y, atol=1e-6)
assert np.allclose(np.concatenate([h0, h1]), h_n, atol=1e-6)
assert np.allclose(np.concatenate([c0, c1]), c_n, atol=1e-6)
# [en]
print("two chained one-layer LSTMs == the two-layer LSTM")
# [ja]
print("1層のLSTMを2つつないだもの == 2層のLSTM")
# [end]

# %% [markdown] lang="en"
# Because each layer works on what the layer below has already computed, a stack can
# build features on features, and a stacked LSTM can capture more complex patterns than
# a single layer. Whether the second layer earns its keep is for an experiment to say.
# Train the one-layer twin of the course's model: the same width (64 cells), the same
# characters in the same order, the same 800 updates, the same seed; only the second
# layer is missing (about 15 seconds on two quiet cores). Then measure both on 20,000
# characters of standard-library code that neither has seen, in bits per character (how
# many bits, on average, the model needs to encode each next character: lower is
# better). This is the depth experiment of `kioku experiments` (`kioku.experiments.depth`)
# at the course's scale.

# %% [markdown] lang="ja"
# 各層は下の層がすでに計算した特徴をもとに計算するので、特徴の上にさらに特徴を積み上げる
# ことができます。そのため多層LSTMは、単層のものより複雑なパターンを捉えることができます。
# 2層目が本当に役に立っているかどうかは、実験で確かめてみなければわかりません。そこで、
# このコースのモデルから2層目だけを取り除いた1層のモデルを学習させます。幅(64セル)も、
# 読ませる文字とその順序も、800回の更新も、乱数のシードも同じです(空いている2コアのマシンで
# 15秒ほど)。そのうえで、どちらのモデルも見たことのない標準ライブラリのコード20,000文字で、
# 1文字あたりのビット数(次の1文字を符号化するのに平均で何ビット必要か。小さいほど良い)を
# 測ります。`kioku experiments` の深さの実験(`kioku.experiments.depth`)を、このコースの
# 規模で行うことになります。

# %%
# [en]
one_layer, _, _ = train_char_model(log=lambda line: None, num_layers=1)  # the twin
# [ja]
one_layer, _, _ = train_char_model(log=lambda line: None, num_layers=1)  # 1層の双子
# [end]
held_out = vocab.encode(stdlib_corpus(max_bytes=SETTINGS["corpus_bytes"]).valid[:20_000])
depth = {}
for layers, net in ((1, one_layer), (2, model)):
    depth[layers] = {
        "bits": valid_bits_per_char(net, held_out),
        "parameters": net.lstm.num_parameters(),
    }
    net.eval()  # valid_bits_per_char leaves the model in training mode
    # [en]
    print(
        f"{layers} layer{'s' if layers > 1 else ' '}: {depth[layers]['bits']:.3f} bits per "
        f"character on unseen code, {depth[layers]['parameters']:,} LSTM parameters"
    )
    # [ja]
    print(
        f"{layers}層: 未知のコードで1文字あたり {depth[layers]['bits']:.3f} ビット、"
        f"LSTMのパラメータ {depth[layers]['parameters']:,} 個"
    )
    # [end]
assert depth[2]["bits"] < depth[1]["bits"]

fig, ax = plt.subplots(figsize=(5, 3))
ax.plot([1, 2], [depth[k]["bits"] for k in (1, 2)], "o-", color="C0")
for layers, run in depth.items():
    note = f"{run['bits']:.3f} bits\n{run['parameters']:,} LSTM parameters"
    ax.annotate(note, (layers, run["bits"]), xytext=(8, 4), textcoords="offset points", fontsize=8)
ax.set_xticks([1, 2], ["1 layer", "2 layers"])
ax.set_xlim(0.7, 2.8)
low = min(run["bits"] for run in depth.values())
ax.set_ylim(low - 0.15, low + 0.15)  # the axis does not start at 0: the gap is the point
ax.set_ylabel("bits per character on unseen code\n(lower is better)")
ax.set_title("same width (64 cells), data, order and updates (800)", fontsize=9)
ax.grid(alpha=0.3)
plt.show()

# %% [markdown] lang="en"
# With everything else equal, the second layer lowers the loss on unseen code, by a small
# margin after so short a training. It also
# brings more parameters, so this run shows that the stack learns more from the same data
# in the same number of updates, not that depth beats a single wider layer of the same
# size: a run this short does not settle that (exercise 1 counts the parameters). Longer
# runs keep the order: in the full depth experiment of `kioku experiments` (2,000 updates
# of 128 cells, recorded in the README) one, two and three layers reach 2.266, 2.157 and
# 2.143 bits per character.
#
# ## 3.2 Bidirectional LSTMs
#
# An ordinary LSTM reads the sequence in time order, so at every step it knows only what
# came before; it cannot take in words that come later. For using the past to decide the
# present that is fine, but it cannot look at the "future". In text, the later words can
# matter as much as the earlier ones, or more:
#
# > **Apple** is something that I like to eat.
#
# At "Apple", the fruit or the company? Only the end of the sentence says. A bidirectional
# LSTM is built for this: two LSTM layers read the sequence, one forwards (front to back),
# one backwards (back to front), each producing its own sequence of hidden states, and at
# every step the two are joined (concatenated) into the output:
#
# ![A bidirectional LSTM reading the seed's sentence](../../docs/img/lstm_bidirectional_en.png)
#
# We train two taggers on generated sentences built like the seed's: an ambiguous word
# (apple, amazon, jaguar, python, java, shell) near the start, then filler words, then one
# word that decides its sense ("eat", "river", ... for a thing; "shares", "sued", ... for
# a company). The ambiguous word is to be tagged 1 (company) or 2 (thing), every other
# word 0. The sentences come from `kioku.experiments.direction`.

# %% [markdown] lang="ja"
# ほかの条件をすべてそろえると、2層目によって未知のコードでの損失が下がりました。これだけ
# 短い学習なので、差はわずかです。ただし2層目の分だけパラメータも増えるので、この実験から
# わかるのは「積み重ねたモデルは、同じデータと同じ更新回数からより多くを学ぶ」ということ
# までです。同じパラメータ数の幅の広い1層と比べて深さのほうが有利かどうかは、この程度の短い
# 学習では決まりません(パラメータの数え方は練習問題1で扱います)。学習を長くしても順序は
# 変わりません。READMEに記録されている `kioku experiments` の深さの実験(128セル、2,000回の
# 更新)では、1層、2層、3層で1文字あたり2.266、2.157、2.143ビットでした。
#
# ## 3.2 双方向LSTM(Bidirectional LSTM)
#
# 通常のLSTMは系列を時間の順に読むので、各時刻で知っているのはそれより前のことだけです。
# 後ろにある単語やフレーズの情報を取り込むことはできません。過去の情報を使って現在の出力を
# 決めるにはこれで十分ですが、「未来」の情報は考慮に入れられません。
#
# テキスト処理のタスクでは、文の意味を完全に理解するために、未来の情報が過去の情報と同じくらい、
# あるいはそれ以上に重要なことがあります。
#
# > **Apple** is something that I like to eat.
#
# 「Apple」の時点では、果物なのか会社なのかわかりません。それを決めるのは文の最後の
# 「eat」です。双方向LSTMは、このような欠点を補うために設計されたもので、系列を時間の前後
# 両方の方向から捉えます。具体的には、2つのLSTM層から構成されます。
#
# - 順方向のLSTM: 系列を通常の時間の流れに沿って(前から後ろへ)処理し、各時刻の隠れ状態を
#   更新します。
# - 逆方向のLSTM: 系列を逆順に(後ろから前へ)処理し、別の隠れ状態の系列を作ります。
# - 出力の結合: 2つの層の隠れ状態を時刻ごとに結合して、最終的な出力にします。
#
# ![例文を読む双方向LSTM](../../docs/img/lstm_bidirectional_ja.png)
#
# 例文と同じ形の文を生成して、2つのタガー(単語ごとにタグを付けるモデル)を学習させます。
# 文の最初のほうに多義語(apple, amazon, jaguar, python, java, shell)があり、いくつかの
# つなぎの単語のあとに、意味を決める単語が1つ来ます(物なら "eat"、"river" など、会社なら
# "shares"、"sued" など)。多義語には1(会社)か2(物)、それ以外の単語には0のタグを付けます。
# 文は `kioku.experiments.direction` で作ります。

# %%
TAGS = ["other", "company", "thing"]
rng = np.random.default_rng(0)
train, test = ambiguous_sentences(rng, 2000), ambiguous_sentences(rng, 500)
words = tagging_vocabulary()
print(" ".join(train[0][0]), "->", train[0][1])

taggers = {}
for bidirectional in (False, True):
    rng = np.random.default_rng(0)
    tagger = SequenceTagger(
        len(words), embed_size=32, hidden_size=32, num_tags=3, bidirectional=bidirectional, rng=rng
    )
    opt = optimiser(tagger, lr=0.01)
    for _ in range(300):
        batch = [train[k] for k in rng.choice(len(train), 32, replace=False)]
        tagger.loss(*encode(batch, words))
        update(tagger, opt, max_norm=5.0)
    taggers["bidirectional" if bidirectional else "forward only"] = tagger

ids, tags, lengths = encode(test, words)
ambiguous = (np.arange(tags.shape[0])[:, None] < lengths) & (tags > 0)
accuracy = {}
for name, tagger in taggers.items():
    accuracy[name] = float((tagger.predict(ids, lengths) == tags)[ambiguous].mean())
    # [en]
    print(f"{name:14s}: {accuracy[name]:.1%} of the ambiguous words tagged right")
    # [ja]
    print(f"{name:14s}: 多義語の正解率 {accuracy[name]:.1%}")
    # [end]
assert accuracy["bidirectional"] > 0.95 and accuracy["forward only"] < 0.75

# %% [markdown] lang="en"
# The forward-only tagger is right about half the time: a coin toss between two senses.
# Now the seed's sentence, and the same start with a company ending:

# %% [markdown] lang="ja"
# 順方向だけのタガー(forward only)の正解率は約半分、つまり2つの意味のどちらかを当てずっぽうで
# 選んでいるのと同じです。では例文と、同じ書き出しで会社の意味になる文を読ませてみます。

# %%
sentences = {
    "eat": "Apple is something that I like to eat .",
    "sued": "Apple is something that sued my friend .",
}


def token_ids(sentence):
    # [en]
    """``(T, 1)`` word ids of one sentence (lower-cased, split at spaces)."""
    # [ja]
    """1文の単語ID ``(T, 1)``(小文字にして空白で区切る)。"""
    # [end]
    tokens = sentence.lower().split()
    return encode([(tokens, [0] * len(tokens))], words)[0]


def at_apple(tagger, sentence):
    # [en]
    """The tagger's probabilities for the three tags at the first word."""
    # [ja]
    """最初の単語における3つのタグの確率。"""
    # [end]
    logits = tagger(token_ids(sentence))[0, 0]
    p = np.exp(logits - logits.max())
    return p / p.sum()


probs = {
    (name, s): at_apple(tagger, text)
    for name, tagger in taggers.items()
    for s, text in sentences.items()
}
for (name, s), p in probs.items():
    print(f"{name:14s} '{sentences[s]}': " + ", ".join(f"{t} {v:.3f}" for t, v in zip(TAGS, p)))
assert np.array_equal(probs["forward only", "eat"], probs["forward only", "sued"])
assert probs["bidirectional", "eat"].argmax() == 2 and probs["bidirectional", "sued"].argmax() == 1

fig, ax = plt.subplots(figsize=(7, 3))
for k, (name, s) in enumerate(probs):
    ax.bar(k, probs[name, s][2], color="C0" if name == "forward only" else "C1")
ax.set_xticks(range(4), [f"{name}\n…{s} ." for name, s in probs], fontsize=8)
ax.set_ylabel('P(thing) at "Apple"')
ax.set_ylim(0, 1)
plt.show()

# %% [markdown] lang="en"
# The forward-only tagger gives *exactly* the same answer for both sentences: when it
# reaches "Apple" it has read nothing else, so it cannot know. The bidirectional tagger
# reads the ending through its backward LSTM and gets both right.
#
# Inside the bidirectional LSTM: the output at every step is `[h_forward, h_backward]`,
# the two directions' hidden states side by side. The forward half at "Apple" is the same
# for both sentences; the backward half differs, because the backward LSTM has already
# read the whole sentence from its end when it arrives at "Apple". And the backward
# direction is nothing more than an LSTM with its own weights run on the reversed sequence:

# %% [markdown] lang="ja"
# 順方向だけのタガーは、2つの文に対して**まったく同じ**答えを出します。「Apple」の時点では
# ほかに何も読んでいないので、知りようがないのです。双方向のタガーは、逆方向のLSTMで文の
# 終わりを読んでいるので、どちらの文も正しく判定できます。
#
# 双方向LSTMの中を見てみましょう。各時刻の出力は `[h_順方向, h_逆方向]`、つまり2つの方向の
# 隠れ状態を横に並べたものです。「Apple」における順方向の半分は2つの文で同じですが、逆方向の
# 半分は異なります。逆方向のLSTMは、「Apple」にたどり着くまでに文全体を後ろから読み終えて
# いるからです。そして逆方向のLSTMは、独自の重みを持つ普通のLSTMを、逆順にした系列に
# 適用したものにすぎません。

# %%
bi = taggers["bidirectional"]
H = bi.lstm.hidden_size
states = {}
for s, text in sentences.items():
    x = bi.embedding(token_ids(text))
    y, _ = bi.lstm(x)  # (T, 1, 2H)
    # [en]
    states[s] = y[0, 0]  # at "Apple"
    # [ja]
    states[s] = y[0, 0]  # 「Apple」の位置
    # [end]
    backward = kioku.nn.LSTM(bi.lstm.input_size, H)
    backward.load_state_dict({n: bi.lstm.params[n + "_reverse"] for n in backward.params})
    y_back, _ = backward(x[::-1].copy())
    assert np.allclose(y[:, :, H:], y_back[::-1], atol=1e-6)
forward_same = np.array_equal(states["eat"][:H], states["sued"][:H])
backward_gap = np.abs(states["eat"][H:] - states["sued"][H:]).max()
# [en]
print(
    f"forward half at 'Apple' identical: {forward_same}; "
    f"backward half differs by up to {backward_gap:.2f}"
)
# [ja]
print(f"「Apple」での順方向の半分は同一: {forward_same}、逆方向の半分の差は最大 {backward_gap:.2f}")
# [end]
assert forward_same and backward_gap > 0.1

# %% [markdown] lang="en"
# That is the whole idea: the forward LSTM carries the past to each step, the backward
# LSTM carries the future, and the joined state at every word is built from the entire
# sentence.

# %% [markdown] lang="ja"
# これが双方向LSTMの考え方のすべてです。順方向のLSTMが過去を、逆方向のLSTMが未来を各時刻へ
# 運び、結合された状態は、どの単語においても文全体から作られています。

# %% [markdown] lang="en"
# ## Exercises
#
# Each exercise has a worked solution in
# `notebooks/solutions/03_stacked_and_bidirectional.py`: the functions `exercise_1()`,
# `exercise_2()` and `exercise_3()` compute the answers, with the working in their
# docstrings and comments, and `tests/test_notebook_exercises_02_03.py` checks them
# another way. Try first, then compare:
#
# ```python
# import importlib
# solutions = importlib.import_module("solutions.03_stacked_and_bidirectional")
# ```
#
# 1. **Counting parameters.** From the equations alone (each of the four parts has a
#    weight matrix on the input, one on `h_{t-1}`, and a bias; kioku keeps PyTorch's two
#    biases `bias_ih` and `bias_hh`), how many parameters does
#    `kioku.nn.LSTM(10, 20, num_layers=3, bidirectional=True)` have? Careful with what the
#    second and third layers read. Check against `lstm.params`. How many did the second
#    layer add to the character model above? (Solution: `solutions.exercise_1()`.)
# 2. **Both directions of a ragged batch, by hand.** A batch holds sequences of different
#    lengths, padded at the end (`solutions.exercise_2_setup()`: a bidirectional one-layer
#    LSTM, `x (6, 3, 3)`, `lengths = [6, 4, 2]`). Rebuild `lstm(x, lengths=lengths)` from
#    two one-direction LSTMs run one sequence at a time. Where must the backward direction
#    start for a sequence of length 2, and what goes in the padded steps?
#    (Solution: `solutions.exercise_2()`.)
# 3. **Forward-only, reading backwards.** Train a forward-only tagger exactly as above, but
#    on the sentences with their words (and tags) in reverse order. How well does it tag
#    the ambiguous words of reversed test sentences, and why? What happens if you give it
#    the sentences the right way round? (Solution: `solutions.exercise_3()`, the trained
#    tagger, and `solutions.reverse`.)
#
# ## Summary
#
# - A stacked LSTM is one-layer LSTMs chained: layer `l` reads the hidden states of layer
#   `l - 1`, and each layer keeps its own weights and its own state `(h, c)`; `h_n` and
#   `c_n` hold one state per layer.
# - Run here with the same width, data and updates, the two-layer character model beat
#   its one-layer twin on unseen code; the second layer also added parameters and time.
# - A bidirectional LSTM runs a second LSTM, with its own weights, over the reversed
#   sequence, and joins the two hidden states at every step: `[h_forward, h_backward]`.
# - At "Apple" the forward half is identical whatever follows; only the backward half has
#   read the ending. The forward-only tagger guessed (about 50 %), the bidirectional one
#   tagged every ambiguous word right.
# - With padded batches the backward direction starts at each sequence's last real step,
#   and the outputs past a sequence's length are zero, as in PyTorch.

# %% [markdown] lang="ja"
# ## 練習問題
#
# 各問題の解答例は `notebooks/solutions/03_stacked_and_bidirectional.py` にあります。関数
# `exercise_1()`、`exercise_2()`、`exercise_3()` が答えを計算し(考え方はdocstringとコメントに
# 書いてあります)、`tests/test_notebook_exercises_02_03.py` が別の方法でその答えを確かめて
# います。まず自分で解いてから、次のようにして見比べてください。
#
# ```python
# import importlib
# solutions = importlib.import_module("solutions.03_stacked_and_bidirectional")
# ```
#
# 1. **パラメータを数える。** 式だけを手がかりに(4つの部品はそれぞれ、入力にかかる重み行列、
#    `h_{t-1}` にかかる重み行列、バイアスを持ちます。kiokuはPyTorchと同じく `bias_ih` と
#    `bias_hh` の2つのバイアスを持ちます)、
#    `kioku.nn.LSTM(10, 20, num_layers=3, bidirectional=True)` のパラメータがいくつあるかを
#    求めてください。2層目と3層目が何を入力として読むかに注意しましょう。答えは
#    `lstm.params` で確かめられます。上の文字単位モデルでは、2層目によってパラメータが
#    いくつ増えたでしょうか。
#    (解答例: `solutions.exercise_1()`)
# 2. **長さの違う系列を、両方向とも手で計算する。** バッチには長さの違う系列が、末尾を
#    パディングでそろえて入っています(`solutions.exercise_2_setup()` が双方向の1層LSTM、
#    `x (6, 3, 3)`、`lengths = [6, 4, 2]` を返します)。一方向のLSTMを2つ用意して系列を1本
#    ずつ処理し、`lstm(x, lengths=lengths)` の出力を組み立て直してください。長さ2の系列では、
#    逆方向のLSTMはどこから読み始めるべきでしょうか。また、パディングの位置には何が入る
#    でしょうか。(解答例: `solutions.exercise_2()`)
# 3. **順方向だけのタガーに、後ろから読ませる。** 上と同じ手順で順方向だけのタガーを学習させ
#    ますが、文の単語(とタグ)を逆順に並べ替えたものを使います。逆順にしたテスト文の多義語を、
#    このタガーはどのくらい正しく判定できるでしょうか。それはなぜでしょうか。文を元の順序の
#    まま与えるとどうなるでしょうか。(解答例: 学習済みのタガーを返す
#    `solutions.exercise_3()` と、`solutions.reverse`)
#
# ## まとめ
#
# - 多層LSTMは1層のLSTMをつないだものです。`l` 層目は `l - 1` 層目の隠れ状態を読み、各層は
#   独自の重みと独自の状態 `(h, c)` を持ちます。`h_n` と `c_n` は層ごとに状態を1つずつ
#   持ちます。
# - 幅もデータも更新回数もそろえて実際に学習させると、2層の文字単位モデルは1層のモデルより
#   未知のコードをうまく予測しました。ただし、2層目の分だけパラメータも学習時間も増えます。
# - 双方向LSTMは、独自の重みを持つもう1つのLSTMを逆順の系列に適用し、各時刻で2つの隠れ状態を
#   結合して `[h_順方向, h_逆方向]` とします。
# - 「Apple」の位置では、後ろに何が続いても順方向の半分は同じで、文の終わりを読んでいるのは
#   逆方向の半分だけです。順方向だけのタガーは当てずっぽう(約50%)で、双方向のタガーは多義語を
#   すべて正しく判定しました。
# - パディングされたバッチでは、逆方向のLSTMは各系列の実データがある最後のステップから読み始め、
#   系列の長さを超えた位置の出力はゼロになります。PyTorchと同じです。
