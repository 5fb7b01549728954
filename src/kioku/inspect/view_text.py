"""Every word the view's page shows, in English and Japanese (``kioku view --lang en|ja``).

The page carries one language's table (:func:`page_text`) and fills its labels, legends,
help texts and notes from it (``{name}`` marks a value the script puts in). The Japanese
uses the seed's terms: forgetゲート(忘却ゲート), inputゲート(入力ゲート),
outputゲート(出力ゲート), 記憶セル, 隠れ状態.
"""

from __future__ import annotations

LANGS = ("en", "ja")

# a quantity's label (kioku.inspect.trace's long name) as the page names it
QUANTITY_LABELS = {
    "en": {},  # the trace's own labels
    "ja": {
        "input_gate": "inputゲート(入力ゲート)",
        "forget_gate": "forgetゲート(忘却ゲート)",
        "output_gate": "outputゲート(出力ゲート)",
        "candidate": "候補(新しい候補セル状態)",
        "cell": "記憶セル",
        "hidden": "隠れ状態",
        "reset_gate": "resetゲート(リセットゲート)",
        "update_gate": "updateゲート(更新ゲート)",
        "new_state": "新しい状態(候補)",
        "cell_input": "セル入力",
        "normalizer": "正規化項",
        "stabilizer": "安定化項",
    },
}

TEXT = {
    "en": {
        "layer": "layer {layer} {direction}",
        "model": "{name}, {count} parameters",
        "forward": "forward",
        "reverse": "reverse",
        "next_token": "next token",
        "tag": "tag",
        "colour_by": "colour the text by",
        "cell": "cell",
        "value": "value",
        "help": "Hover a token (or step with ← →): every gate and cell at that step below. "
        "Click a value in the tables (or a ranked cell): colour the text by that cell, and "
        "see all its gates and states over the text in the strip. Drag across the text: rank "
        "the cells that switch on inside the span, and those that switch off.",
        "colour_help": "Colours: a gate (an LSTM's i, f, o; a GRU's r, z) runs from white at "
        "0 (closed) to dark green at 1 (open); the candidate g, the cell c, the hidden state h "
        "and every other signed value run from blue (negative) through white (0) to red "
        "(positive), on limits symmetric around 0. Which part of the cell each letter is: the "
        'drawing under "How to read this page" (and the diagrams in docs/learn.md).',
        "howto_title": "How to read this page",
        "diagram_alt": "One step of this model's cell: its gates, candidate, memory cell "
        "and hidden state, and how they join",
        "howto": [
            "Each word (or character) of the text is one step. At every step each cell of "
            "each layer computes its gates and states from the current input and its own "
            "state at the step before: i (input gate: how much new information to write), "
            "f (forget gate: how much of the memory cell to keep), g (the candidate, the new "
            "information), o (output gate: how much of the cell to show), c (the memory cell) "
            "and h (the hidden state, what the layer passes on).",
            "A gate near 1 (dark green) is open, near 0 (white) closed: f near 0 erases the "
            "cell, i near 1 writes the candidate into it. A cell c that stays red or blue "
            "over many words is holding something; where f drops, it lets it go.",
            "A bidirectional model has two LSTMs per layer: the forward one has read the "
            "words up to this one, the reverse one the words from the end back to this one. "
            "Layers above the first read both directions of the layer below.",
            "To find what a cell does: select a span (a phrase, a line end) and look at the "
            "cells that switch on inside it, and those that switch off (rank by f and switch "
            "off: the cells that forget there); click one to see it over the whole text in "
            "the strip.",
        ],
        "step": "Step",
        "step_title": "Step {t} of {T}: {token}",
        "end_of_line": "⏎ (end of line)",
        "space": "␣ (space)",
        "tab": "⇥ (tab)",
        "td_title": "{name}, cell {j}, {label}: click to colour the text by it",
        "output": "model's {kind} here: {top}",
        "class_output": "the model's class for the whole text: {summary}",
        "legend_head": "{name} {q} of cell {j}, {label}: ",
        "token_title": "step {t}: {q} = {value}",
        "selection": "Selection",
        "drag_hint": "(drag across the text)",
        "tokens": "tokens",
        "to": "to",
        "rank_by": "rank by",
        "window": "window",
        "score_help": "score = mean inside the span − mean over the window on each side. "
        "On: highest scores (the cell is higher inside the span than around it). Off: lowest "
        "scores (lower inside: a gate that closes there, a state that drops).",
        "sel_info": "tokens {start}–{end}: {text}",
        "rank_on": "{label}: {q} switches on",
        "rank_off": "{label}: {q} switches off",
        "rank_li_title": "click: colour the text by {q} of cell {j}, {label}",
        "strip_title": "The picked cell over the text",
        "strip_info": "{label}, cell {j}: every gate and state at every step (hover a column: "
        "that step above)",
        "strip_gate_legend": "gates ({names}): closed 0",
        "strip_gate_legend_end": "1 open",
        "strip_signed_legend": "{names}: negative −{bound}",
        "strip_signed_legend_end": "+{bound} positive",
        "summary_words": "words",
        "summary_chars": "characters",
        "summary": "{model}; {T} {unit}; {n} layer-directions ({dirs})",
        "bidirectional": "bidirectional: forward and reverse side by side",
        "forward_only": "forward only",
        "unknown": "; {n} unknown word(s) read as <unk> (dotted)",
        "class": "; class: {summary}",
        "sentences": "; {n} sentences, each read alone (as training and kioku predict read them)",
        "char_encoder_left_out": "This tagger also reads each word's spelling with a "
        "character BiLSTM ({size} cells per direction); that character encoder is left out of "
        "this page: the tables show the word-level layers, whose input is the word's "
        "embedding joined with its spelling's encoding.",
        "compare_title": "Two sentences side by side",
        "compare_help": "Each pair of sentences (line k of each file) is read by the same "
        "model, each alone. A cell shows, per step and layer-direction, the largest "
        "difference between the two runs over all cells of the chosen value: white with = "
        "means exactly identical, darker means a larger difference. The first word that "
        "differs is framed.",
        "compare_lesson": "The seed's lesson: the forward direction of the first layer has "
        "read only the words up to a step, so it is identical in both sentences up to the "
        "first word that differs; the reverse direction has read the words after the step, "
        "so it differs already before that word: only the words after \u201cApple\u201d tell "
        "the fruit from the company. Layers above the first read both directions of the "
        "layer below, so both their directions differ early too.",
        "compare_value": "difference of",
        "compare_pair": "sentence {k}: first difference at word {t}",
        "compare_same": "sentence {k}: the two sentences are the same",
        "compare_identical": "identical",
        "compare_cell_title": "{label}, step {t}: largest |difference| of {q} = {value}",
        "compare_row_a": "A",
        "compare_row_b": "B",
    },
    "ja": {
        "layer": "第{layer}層 {direction}",
        "model": "{name}(パラメータ {count} 個)",
        "forward": "順方向",
        "reverse": "逆方向",
        "next_token": "次のトークン",
        "tag": "タグ",
        "colour_by": "テキストの色分けに使う層",
        "cell": "セル",
        "value": "値",
        "help": "トークンにマウスを重ねると(← → キーでも一歩ずつ移動できます)、"
        "そのステップでのすべてのゲートと記憶セルの値が下の表に出ます。"
        "表の値(またはランキングのセル)をクリックすると、そのセルの値でテキストが色分けされ、"
        "そのセルのゲートと状態がテキスト全体にわたって帯状に表示されます。"
        "テキストの上をドラッグして範囲を選ぶと、"
        "その範囲でオンになるセルとオフになるセルが順位づけされます。",
        "colour_help": "色の意味: ゲート(LSTMの i, f, o、GRUの r, z)は 0(閉)の白から 1(開)"
        "の濃い緑まで。候補 g、記憶セル c、隠れ状態 h など正負の値をとる量は、"
        "0 を中心に対称な範囲で、負が青、0 が白、正が赤です。それぞれの記号がセルのどの部分かは、"
        "「このページの読み方」の図(と docs/learn.md の図)を見てください。",
        "howto_title": "このページの読み方",
        "diagram_alt": "このモデルのセルの1ステップの計算: ゲート、候補、記憶セル、"
        "隠れ状態とそのつながり",
        "howto": [
            "テキストの単語(または文字)一つが一つのステップです。各ステップで、"
            "各層のそれぞれのセルが、現在の入力と一つ前のステップでの自分の状態から、"
            "ゲートと状態を計算します。i は inputゲート(入力ゲート:"
            " 新しい情報をどれだけ書き込むか)、f は forgetゲート(忘却ゲート:"
            " 記憶セルをどれだけ保つか)、g は候補(新しい情報)、o は outputゲート(出力ゲート:"
            " 記憶セルをどれだけ出力するか)、c は記憶セル、h は隠れ状態(層が次へ渡す出力)です。",
            "ゲートは 1 に近い(濃い緑)ほど開き、0 に近い(白)ほど閉じています。"
            "f が 0 に近ければ記憶セルの内容は消え、i が 1 に近ければ候補が書き込まれます。"
            "何語にもわたって赤や青のままの記憶セル c は何かを覚えており、"
            "f が下がるところでそれを手放します。",
            "双方向モデルは層ごとに二つのLSTMを持ちます。順方向はこの単語までを、"
            "逆方向は文末からこの単語までを読み終えています。2層目より上の層は、"
            "下の層の両方向の出力を読みます。",
            "セルの役割を探すには、範囲(句や行末)を選び、"
            "その中でオンになるセルとオフになるセルを見ます(f で順位づけしてオフを見れば、"
            "そこで忘れるセルがわかります)。セルをクリックすると、"
            "テキスト全体にわたるその値が帯に表示されます。",
        ],
        "step": "ステップ",
        "step_title": "ステップ {t} / {T}: {token}",
        "end_of_line": "⏎ (行末)",
        "space": "␣ (空白)",
        "tab": "⇥ (タブ)",
        "td_title": "{label} のセル {j} の{name}: クリックでテキストをこの値で色分け",
        "output": "ここでのモデルの{kind}: {top}",
        "class_output": "テキスト全体に対するモデルのクラス: {summary}",
        "legend_head": "{label} セル {j} の{name} {q}: ",
        "token_title": "ステップ {t}: {q} = {value}",
        "selection": "範囲選択",
        "drag_hint": "(テキストの上をドラッグ)",
        "tokens": "トークン",
        "to": "から",
        "rank_by": "順位づけに使う値",
        "window": "前後の幅",
        "score_help": "スコア = 範囲内の平均 − 前後の幅のステップの平均。オン:"
        " スコアが高い(範囲の中で周りより高い)セル。オフ: スコアが低い(範囲の中で低い:"
        " そこで閉じるゲート、下がる状態)セル。",
        "sel_info": "トークン {start}–{end}: {text}",
        "rank_on": "{label}: {q} がオンになるセル",
        "rank_off": "{label}: {q} がオフになるセル",
        "rank_li_title": "クリック: {label} のセル {j} の {q} でテキストを色分け",
        "strip_title": "選んだセルのテキスト全体での値",
        "strip_info": "{label} のセル {j}:"
        " 各ステップのすべてのゲートと状態(列にマウスを重ねると、そのステップが上に出ます)",
        "strip_gate_legend": "ゲート({names}): 閉 0",
        "strip_gate_legend_end": "1 開",
        "strip_signed_legend": "{names}: 負 −{bound}",
        "strip_signed_legend_end": "+{bound} 正",
        "summary_words": "語",
        "summary_chars": "文字",
        "summary": "{model}; {T} {unit}; 層と方向の組 {n} 個({dirs})",
        "bidirectional": "双方向: 順方向と逆方向を左右に並べて表示",
        "forward_only": "順方向のみ",
        "unknown": "; 未知語 {n} 個を <unk> として読む(点線の下線)",
        "class": "; クラス: {summary}",
        "sentences": "; {n} 文(学習時や kioku predict と同じく、一文ずつ別々に読む)",
        "char_encoder_left_out": "このタガーは各単語のつづりも文字単位の双方向LSTM(各"
        "方向 {size} セル)で読みます。この文字エンコーダはこのページには含めていません。"
        "表に出るのは単語単位の層で、その入力は単語の埋め込みとつづりの符号化を連結したものです。",
        "compare_title": "二つの文の比較",
        "compare_help": "二つのファイルの k 行目どうしを組にして、"
        "同じモデルでそれぞれ別々に読みます。各ステップと層・方向ごとに、"
        "選んだ値の二つの実行の差の絶対値の最大(全セルにわたる)を表示します。"
        "白地に = はまったく同じ値、色が濃いほど差が大きいことを示します。"
        "最初に異なる単語は枠で囲んであります。",
        "compare_lesson": "シードの教訓:"
        " 1層目の順方向はそのステップまでの単語しか読んでいないので、"
        "最初に異なる単語までは二つの文でまったく同じ値になります。"
        "逆方向は文末からそのステップまでの単語を読んでいるので、"
        "異なる単語より前からすでに値が違います。果物のアップルか会社の Apple かは、"
        "\u201cApple\u201d より後の単語にしか手がかりがないのです。"
        "2層目より上の層は下の層の両方向を読むので、どちらの方向も早くから値が違います。",
        "compare_value": "差をとる値",
        "compare_pair": "文 {k}: 最初の違いは単語 {t}",
        "compare_same": "文 {k}: 二つの文は同じです",
        "compare_identical": "同じ",
        "compare_cell_title": "{label}、ステップ {t}: {q} の差の絶対値の最大 = {value}",
        "compare_row_a": "A",
        "compare_row_b": "B",
    },
}


def check_lang(lang: object) -> str:
    """``lang`` if it is one of :data:`LANGS`, else ``ValueError`` naming it."""
    if lang not in LANGS:
        raise ValueError(f"lang: expected one of {', '.join(LANGS)}, found {lang!r}")
    return str(lang)


def page_text(lang: str = "en") -> dict:
    """The page's words in ``lang`` (``"en"`` or ``"ja"``): one entry per key, every
    language with the same keys."""
    return dict(TEXT[check_lang(lang)])


def quantity_label(name: str, label: str, lang: str = "en") -> str:
    """The page's label of the traced quantity ``name`` (its English ``label`` unless
    ``lang`` names it otherwise)."""
    return QUANTITY_LABELS[check_lang(lang)].get(name, label)
