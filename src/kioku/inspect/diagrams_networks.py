"""Diagrams beyond the one LSTM step: stacked layers, the two directions (the seed's "Apple
is something that I like to eat."), and the GRU and sLSTM cells of ``docs/cells.md``. Drawn
with the primitives of :mod:`kioku.inspect.diagrams`, which lists and writes them all."""

from __future__ import annotations

from .diagrams import GATE_FILL, TANH_FILL, Canvas

_LAYER_FILL = "#e8eef7"


def stacked(lang: str = "en"):
    """Three LSTM layers over four steps: each layer carries its own ``(h, c)`` along time
    and hands its hidden sequence up to the layer above."""
    words = {
        "en": ("Stacked (multi-layer) LSTM", "layer", "each layer keeps its own state (h, c) "
               "along time; layer l reads the hidden states of layer l − 1", "output"),
        "ja": ("多層LSTM", "第{}層", "各層は自分の状態 (h, c) を時間方向に引き継ぎ、"
               "第l層は第l−1層の隠れ状態の列を入力として読む", "出力"),
    }[lang]  # fmt: skip
    title, layer_word, caption, output = words
    cv = Canvas(10, 6, (0, 12.5), (-1.2, 7.8))
    cv.text(6.25, 7.35, title, size=15, weight="bold")
    xs, ys = [3.2 + 2.5 * t for t in range(4)], [1.4 + 1.75 * k for k in range(3)]
    for k, y in enumerate(ys):
        name = f"{layer_word} {k + 1}" if lang == "en" else layer_word.format(k + 1)
        cv.text(0.3, y, name, size=12, ha="left")
        cv.line([(1.6, y), (xs[0] - 0.6, y)])  # the initial state
        for t, x in enumerate(xs):
            cv.box(x, y, f"LSTM {k + 1}", _LAYER_FILL, w=1.2, h=0.7, size=10)
            if t + 1 < len(xs):
                cv.line([(x + 0.6, y), (xs[t + 1] - 0.6, y)])
            if k + 1 < len(ys):
                cv.line([(x, y + 0.35), (x, ys[k + 1] - 0.35)])
                cv.text(x + 0.1, (y + ys[k + 1]) / 2, rf"$h^{{({k + 1})}}_{t + 1}$", size=11,
                        ha="left")  # fmt: skip
        cv.text((xs[0] + xs[1]) / 2, y + 0.22, "(h, c)", size=9, va="bottom")
    for t, x in enumerate(xs):
        cv.line([(x, -0.3), (x, ys[0] - 0.35)])
        cv.text(x, -0.55, rf"$x_{t + 1}$", size=13)
        cv.line([(x, ys[-1] + 0.35), (x, ys[-1] + 1.05)])
        cv.text(x, ys[-1] + 1.3, rf"$h^{{(3)}}_{t + 1}$", size=13)
    cv.text(12.3, ys[-1] + 1.3, output, size=11, ha="right")
    cv.text(6.25, -1.0, caption, size=10)
    return cv.fig


SENTENCE = ("Apple", "is", "something", "that", "I", "like", "to", "eat", ".")


def bidirectional(lang: str = "en"):
    """The seed's sentence read both ways: the forward chain left to right, the backward
    chain right to left, the two states joined at every step; at "Apple" only the backward
    state has read "... like to eat ." (the fruit, not the company)."""
    words = {
        "en": ("Bidirectional LSTM: two directions, joined at every step", "forward", "backward",
               "joined", "At “Apple” the forward state has read only “Apple”; the backward "
               "state has read “… like to eat .”: the fruit, not the company."),
        "ja": ("双方向LSTM: 2つの向きを各時刻で連結する", "順方向", "逆方向", "連結",
               "「Apple」の時点で、順方向の状態は「Apple」しか読んでいない。逆方向の状態は"
               "「… like to eat .」まで読んでいるので、会社ではなく果物だとわかる。"),
    }[lang]  # fmt: skip
    title, forward, backward, joined, caption = words
    cv = Canvas(12, 5.6, (0, 15), (-1.6, 6.4), highlight="apple")
    cv.text(7.5, 6.0, title, size=15, weight="bold")
    xs = [2.3 + 1.5 * t for t in range(len(SENTENCE))]
    y_tok, y_fw, y_bw, y_join = -0.35, 1.3, 2.8, 4.4
    cv.text(0.2, y_fw, forward, size=11, ha="left")
    cv.text(0.2, y_bw, backward, size=11, ha="left")
    cv.text(0.2, y_join, joined, size=11, ha="left")
    for t, (x, word) in enumerate(zip(xs, SENTENCE)):
        first = ("apple",) if t == 0 else ()
        weight = "bold" if t == 0 else "normal"
        cv.text(x, y_tok, word, ("apple",), size=12, weight=weight)
        cv.line([(x + 0.2, y_tok + 0.3), (x + 0.2, y_fw - 0.3)], first)
        cv.line([(x - 0.2, y_tok + 0.3), (x - 0.2, y_bw - 0.3)], ("apple",))  # behind →
        cv.box(x, y_fw, "→", GATE_FILL, first, w=0.8, h=0.6, size=12)
        cv.box(x, y_bw, "←", TANH_FILL, ("apple",), w=0.8, h=0.6, size=12)
        if t + 1 < len(xs):
            cv.line([(x + 0.4, y_fw), (xs[t + 1] - 0.4, y_fw)], ())
            cv.line([(xs[t + 1] - 0.4, y_bw), (x + 0.4, y_bw)], ("apple",))
        cv.line([(x + 0.2, y_fw + 0.3), (x + 0.2, y_join - 0.3)], first)  # behind ←
        cv.line([(x - 0.2, y_bw + 0.3), (x - 0.2, y_join - 0.3)], first)
        cv.node(x, y_join, "[→;←]", first, r=0.34, size=7)
    cv.text(7.5, -1.2, caption, size=10.5)
    return cv.fig


def gru_step(lang: str = "en"):
    """The GRU step in PyTorch's form: reset gate r, update gate z, candidate
    ``n = tanh(W_n x + r ⊙ (U_n h + b_hn))``, ``h_t = (1 − z) ⊙ n + z ⊙ h_{t-1}``."""
    words = {
        "en": ("One GRU step (PyTorch's form)", "update gate", "reset gate", "candidate",
               "no separate cell: the hidden state h is the memory, z decides how much of it to "
               "keep"),
        "ja": ("GRUの1ステップ (PyTorchの形)", "更新ゲート", "リセットゲート", "候補",
               "記憶セルは持たず、隠れ状態 h そのものが記憶; z がそのうちどれだけを保つかを決める"),
    }[lang]  # fmt: skip
    title, update, reset, candidate, caption = words
    cv = Canvas(10, 6.4, (0, 12.5), (-1.7, 8.3))
    cv.frame(1.3, 0.75, 10.9, 7.0)
    cv.text(6.25, 7.95, title, size=15, weight="bold")
    cv.text(6.25, 7.4, r"$h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}$", size=13)
    y_h, y_bus, y_g = 6.2, 1.5, 2.7
    cv.line([(0.2, y_h), (2.75, y_h)], arrow=False)
    cv.line([(3.25, y_h), (7.75, y_h)], arrow=False)
    cv.line([(8.25, y_h), (12.3, y_h)])
    cv.text(0.2, y_h + 0.35, r"$h_{t-1}$", size=13, ha="left")
    cv.text(12.3, y_h + 0.35, r"$h_t$", size=13, ha="right")
    cv.node(3.0, y_h, "⊙")
    cv.node(8.0, y_h, "+")
    cv.dot(1.6, y_h)
    cv.line([(1.6, y_h), (1.6, y_bus), (8.0, y_bus)], arrow=False)
    cv.line([(2.2, -0.45), (2.2, y_bus)], arrow=False)
    cv.dot(2.2, y_bus)
    cv.text(2.2, -0.75, r"$x_t$", size=13)
    for x, act, fill, short, name in (
        (3.0, "σ", GATE_FILL, "z", update),
        (4.9, "σ", GATE_FILL, "r", reset),
        (8.0, "tanh", TANH_FILL, "n", candidate),
    ):
        cv.line([(x, y_bus), (x, y_g - 0.38)])
        cv.box(x, y_g, act, fill, size=12 if act == "tanh" else 15)
        cv.text(x + 0.12, y_bus + 0.42, name, size=9, ha="left")
        cv.text(x - 0.12, y_g + 0.75, rf"${short}_t$", size=13, ha="right")
    # r gates the recurrent term of the candidate
    cv.line([(5.4, y_g), (6.2, y_g)])
    cv.line([(6.45, y_bus), (6.45, y_g - 0.25)])
    cv.node(6.45, y_g, "⊙")
    cv.text(6.6, y_bus + 0.42, r"$U_n h$", size=10, ha="left")
    cv.line([(6.7, y_g), (7.5, y_g)])
    # z keeps the old state; 1 − z lets the candidate in
    cv.line([(3.0, y_g + 0.38), (3.0, y_h - 0.25)])
    cv.dot(3.0, 4.6)
    cv.line([(3.0, 4.6), (4.25, 4.6)])
    cv.node(4.55, 4.6, "1−", r=0.3, size=11)
    cv.line([(4.85, 4.6), (7.75, 4.6)])
    cv.line([(8.0, y_g + 0.38), (8.0, 4.35)])
    cv.node(8.0, 4.6, "⊙")
    cv.line([(8.0, 4.85), (8.0, y_h - 0.25)])
    cv.text(6.25, -1.35, caption, size=10)
    return cv.fig


def slstm_step(lang: str = "en"):
    """The sLSTM step (xLSTM): exponential input gate, exponential or sigmoid forget gate,
    stabiliser ``m``, normaliser ``n``; ``h_t = o_t ⊙ c_t / n_t``."""
    words = {
        "en": ("One sLSTM step (xLSTM)", "input gate", "forget gate", "cell input",
               "output gate", "stabiliser m",
               "exponential gates, brought back to at most 1 by the stabiliser state m"),
        "ja": ("sLSTMの1ステップ (xLSTM)", "入力ゲート", "忘却ゲート", "セル入力", "出力ゲート",
               "安定化 m", "指数関数のゲートを、安定化状態 m で 1 以下に戻す"),
    }[lang]  # fmt: skip
    title, w_i, w_f, w_z, w_o, stabilise, caption = words
    cv = Canvas(10, 6.8, (0, 12.5), (-1.7, 8.9))
    cv.frame(1.3, 0.75, 10.9, 7.55)
    cv.text(6.25, 8.55, title, size=15, weight="bold")
    equations = (
        r"$c_t = f'_t \odot c_{t-1} + i'_t \odot z_t$,   "
        r"$n_t = f'_t \odot n_{t-1} + i'_t$,   $h_t = o_t \odot c_t / n_t$"
    )
    cv.text(6.25, 8.0, equations, size=12)
    y_c, y_n, y_bus, y_g, y_m = 6.9, 5.9, 1.5, 2.5, 3.75
    for y, name in ((y_c, "c"), (y_n, "n")):
        cv.line([(0.2, y), (12.3, y)])
        cv.text(0.2, y + 0.3, rf"${name}_{{t-1}}$", size=12, ha="left")
        cv.text(12.3, y + 0.3, rf"${name}_t$", size=12, ha="right")
        cv.node(3.6 if name == "c" else 3.0, y, "⊙")
        cv.node(6.2 if name == "c" else 5.3, y, "+")
    cv.line([(0.2, y_bus), (8.6, y_bus)], arrow=False)
    cv.line([(2.0, 0.0), (2.0, y_bus)], arrow=False)
    cv.dot(2.0, y_bus)
    cv.text(0.2, y_bus + 0.35, r"$h_{t-1}$", size=13, ha="left")
    cv.text(2.0, -0.3, r"$x_t$", size=13)
    gates = (
        (2.7, "exp", GATE_FILL, w_i), (4.2, "exp/σ", GATE_FILL, w_f),
        (7.2, "tanh", TANH_FILL, w_z), (8.6, "σ", GATE_FILL, w_o),
    )  # fmt: skip
    for x, act, fill, name in gates:
        cv.line([(x, y_bus), (x, y_g - 0.38)])
        cv.box(x, y_g, act, fill, w=1.05, size=11 if len(act) > 1 else 15)
        cv.text(x + 0.1, y_bus + 0.42, name, size=8.5, ha="left")
    # i and f through the stabiliser, which keeps m_t, to i' and f'
    cv.box(3.45, y_m, stabilise, "#eeeeee", w=2.2, h=0.6, size=10)
    cv.line([(2.7, y_g + 0.38), (2.7, y_m - 0.3)])
    cv.line([(4.2, y_g + 0.38), (4.2, y_m - 0.3)])
    cv.line([(3.6, y_m + 0.3), (3.6, y_c - 0.25)])  # f' scales c ...
    cv.dot(3.6, 5.2)
    cv.line([(3.6, 5.2), (3.0, 5.2), (3.0, y_n - 0.25)])  # ... and n
    cv.text(3.45, y_m + 0.6, r"$f'_t$", size=12, ha="right")
    cv.line([(4.4, y_m + 0.3), (4.4, 4.75), (5.95, 4.75)])
    cv.text(4.55, 4.95, r"$i'_t$", size=12, ha="left")
    cv.dot(5.3, 4.75)
    cv.line([(5.3, 4.75), (5.3, y_n - 0.25)])  # i' adds to n ...
    cv.node(6.2, 4.75, "⊙")
    cv.line([(7.2, y_g + 0.38), (7.2, 4.75), (6.45, 4.75)])
    cv.line([(6.2, 5.0), (6.2, y_c - 0.25)])  # ... and i' ⊙ z to c
    cv.text(7.35, 3.4, r"$z_t$", size=12, ha="left")
    # c_t / n_t, then ⊙ o
    cv.dot(9.6, y_c)
    cv.dot(10.1, y_n)
    cv.line([(9.6, y_c), (9.6, 4.6)])
    cv.line([(10.1, y_n), (10.1, 4.4), (9.85, 4.4)])
    cv.node(9.6, 4.35, "÷", size=13)
    cv.line([(9.6, 4.1), (9.6, 3.25)])
    cv.line([(8.6, y_g + 0.38), (8.6, 3.0), (9.35, 3.0)])
    cv.node(9.6, 3.0, "⊙")
    cv.line([(9.85, 3.0), (10.5, 3.0), (10.5, y_bus), (12.3, y_bus)])
    cv.text(12.3, y_bus + 0.35, r"$h_t$", size=13, ha="right")
    stabiliser = (
        r"$m_t = \max(\log f_t + m_{t-1},\ \tilde{\imath}_t)$,   "
        r"$i'_t = \exp(\tilde{\imath}_t - m_t)$,   $f'_t = \exp(\log f_t + m_{t-1} - m_t)$"
    )
    cv.text(6.25, -1.05, stabiliser, size=11)
    cv.text(6.25, -1.5, caption, size=9.5)
    return cv.fig
