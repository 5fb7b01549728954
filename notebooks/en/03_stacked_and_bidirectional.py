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
# # 3. Beyond one layer, one direction
#
# **3.1** A multi-layer (stacked) LSTM: several recurrent layers on top of each other,
# each reading the sequence of hidden states of the layer below. **3.2** A bidirectional
# LSTM: one LSTM reads the sequence forwards, another backwards, and their states are
# joined at every step, so that every step sees its past and its future.

# %%
import os
import sys
from pathlib import Path

os.environ.setdefault("KIOKU_KERNELS", "reference")  # the readable NumPy path
sys.path.insert(0, str(Path.cwd().parent))  # notebooks/, for course.py
# %matplotlib inline

import matplotlib.pyplot as plt
import numpy as np
from course import SETTINGS, char_model

import kioku
import kioku.inspect
from kioku.data import stdlib_corpus
from kioku.experiments.common import optimiser, update
from kioku.experiments.direction import ambiguous_sentences, encode, tagging_vocabulary
from kioku.models import SequenceTagger

# %% [markdown]
# ## 3.1 Stacked LSTMs
#
# The character model of the earlier notebooks has two layers. The first reads the
# character embeddings; the second reads the first layer's hidden states `h_t`, one per
# step, as its input. Each layer has its own weights and its own state `(h, c)`. To see
# that this is all there is to it, rebuild the two layers as two separate one-layer
# LSTMs and chain them by hand:

# %%
model, vocab, _ = char_model()
lstm = model.lstm
print(f"{lstm.num_layers} layers; h_n and c_n hold one state per layer:")
x = model.embedding(vocab.encode("for line in lines:\n")[:, None])  # (T, 1, E)
y, (h_n, c_n) = lstm(x)
print("  y", y.shape, " h_n", h_n.shape, " c_n", c_n.shape)

layers = []
for k in range(lstm.num_layers):
    single = kioku.nn.LSTM(lstm.input_size if k == 0 else lstm.hidden_size, lstm.hidden_size)
    single.load_state_dict({name: lstm.params[name[:-1] + str(k)] for name in single.params})
    layers.append(single)
below, (h0, c0) = layers[0](x)  # layer 0 reads the characters
above, (h1, c1) = layers[1](below)  # layer 1 reads layer 0's hidden states
assert np.allclose(above, y, atol=1e-6)
assert np.allclose(np.concatenate([h0, h1]), h_n, atol=1e-6)
assert np.allclose(np.concatenate([c0, c1]), c_n, atol=1e-6)
print("two chained one-layer LSTMs == the two-layer LSTM")

# %% [markdown]
# Because each layer works on what the layer below has already computed, the layers can
# learn features at different levels, and a stacked LSTM can capture more complex
# patterns than a single layer. Which of the two layers follows which property of the
# code best? `kioku.inspect.cell_search` ranks the cells of every layer by their
# correlation with features of the text, here on 4,000 characters of standard-library
# code the model did not train on.

# %%
text = stdlib_corpus(max_bytes=SETTINGS["corpus_bytes"]).valid[:4000]
with kioku.inspect.trace(model) as tr:
    model(vocab.encode(text)[:, None])
features = ["line_position", "indentation", "bracket_depth", "inside_string"]
best = np.zeros((len(features), lstm.num_layers))
for row, name in enumerate(features):
    values = kioku.inspect.get_feature(name)(text)
    for layer in range(lstm.num_layers):
        r = kioku.inspect.correlations(tr.get(layer=layer).cell[:, 0], values)
        best[row, layer] = np.nanmax(np.abs(r))
    print(
        f"{name:14s} best |r|: " + ", ".join(f"layer {k} {v:.2f}" for k, v in enumerate(best[row]))
    )

fig, ax = plt.subplots(figsize=(7, 3))
width = 0.8 / lstm.num_layers
for layer in range(lstm.num_layers):
    ax.bar(np.arange(len(features)) + layer * width, best[:, layer], width, label=f"layer {layer}")
ax.set_xticks(np.arange(len(features)) + width * (lstm.num_layers - 1) / 2, features)
ax.set_ylabel("best |correlation| of a cell")
ax.set_ylim(0, 1)
ax.legend()
plt.show()

# %% [markdown]
# After half a minute of training the correlations are modest; the README reports cells
# at r = 0.76 (bracket depth) in a model trained for ten minutes. The extra layers pay off
# in the loss too: in the depth experiment of `kioku experiments` (a character model
# trained longer than this one) the validation loss, as recorded in the README, fell from
# 2.266 bits per character with one layer to 2.157 with two and 2.143 with three.
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
# every step the two are joined (concatenated) into the output.
#
# We train two taggers on generated sentences built like the seed's: an ambiguous word
# (apple, amazon, jaguar, python, java, shell) near the start, then filler words, then one
# word that decides its sense ("eat", "river", ... for a thing; "shares", "sued", ... for
# a company). The ambiguous word is to be tagged 1 (company) or 2 (thing), every other
# word 0. The sentences come from `kioku.experiments.direction`.

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
    print(f"{name:14s}: {accuracy[name]:.1%} of the ambiguous words tagged right")
assert accuracy["bidirectional"] > 0.95 and accuracy["forward only"] < 0.75

# %% [markdown]
# The forward-only tagger is right about half the time: a coin toss between two senses.
# Now the seed's sentence, and the same start with a company ending:

# %%
sentences = {
    "eat": "Apple is something that I like to eat .",
    "sued": "Apple is something that sued my friend .",
}


def token_ids(sentence):
    """``(T, 1)`` word ids of one sentence (lower-cased, split at spaces)."""
    tokens = sentence.lower().split()
    return encode([(tokens, [0] * len(tokens))], words)[0]


def at_apple(tagger, sentence):
    """The tagger's probabilities for the three tags at the first word."""
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

# %% [markdown]
# The forward-only tagger gives *exactly* the same answer for both sentences: when it
# reaches "Apple" it has read nothing else, so it cannot know. The bidirectional tagger
# reads the ending through its backward LSTM and gets both right.
#
# Inside the bidirectional LSTM: the output at every step is `[h_forward, h_backward]`,
# the two directions' hidden states side by side. The forward half at "Apple" is the same
# for both sentences; the backward half differs, because the backward LSTM has already
# read the whole sentence from its end when it arrives at "Apple". And the backward
# direction is nothing more than an LSTM with its own weights run on the reversed sequence:

# %%
bi = taggers["bidirectional"]
H = bi.lstm.hidden_size
states = {}
for s, text in sentences.items():
    x = bi.embedding(token_ids(text))
    y, _ = bi.lstm(x)  # (T, 1, 2H)
    states[s] = y[0, 0]  # at "Apple"
    backward = kioku.nn.LSTM(bi.lstm.input_size, H)
    backward.load_state_dict({n: bi.lstm.params[n + "_reverse"] for n in backward.params})
    y_back, _ = backward(x[::-1].copy())
    assert np.allclose(y[:, :, H:], y_back[::-1], atol=1e-6)
forward_same = np.array_equal(states["eat"][:H], states["sued"][:H])
backward_gap = np.abs(states["eat"][H:] - states["sued"][H:]).max()
print(
    f"forward half at 'Apple' identical: {forward_same}; "
    f"backward half differs by up to {backward_gap:.2f}"
)
assert forward_same and backward_gap > 0.1

# %% [markdown]
# That is the whole idea: the forward LSTM carries the past to each step, the backward
# LSTM carries the future, and the joined state at every word is built from the entire
# sentence.
