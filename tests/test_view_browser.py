"""``kioku view`` pages in a real browser: headless Chromium (Debian's package) driven by
Selenium through /usr/bin/chromedriver, so nothing is downloaded. The page is opened from
``file://``; the test hovers, clicks and drags like a reader and compares what the page
shows with kioku's own trace arrays. Screenshots go to test-artifacts/ (git-ignored)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from kioku.cli import main
from kioku.data.chars import FormTable
from kioku.data.vocab import Vocabulary, tokenize
from kioku.inspect import colours, trace
from kioku.inspect.trace import CELL_QUANTITIES
from kioku.train.restore import load_model

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
SMALL = ["--embed", "8", "--bptt", "16", "--batch-size", "4", "--eval-tokens", "200"]
SMALL += ["--no-progress"]
LM_TEXT = 'def f7(x):\n    return x + "s7"  # seven\n'
TAG_TEXT = "the cat runs\na dog sleeps.\n"
EAT, USE = "Apple is something that I like to eat.\n", "Apple is something that I like to use.\n"
SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "img"

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
    pytest.skip(
        f"headless Chromium needs {CHROMIUM} and {CHROMEDRIVER} "
        "(Debian: apt-get install chromium chromium-driver)",
        allow_module_level=True,
    )

from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1000",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def trained(tmp_path_factory, name, argv, text, view_args=()):
    """Train a tiny model with ``kioku train``, write its page with ``kioku view``, and
    trace the checkpoint here: (page, {(layer, direction): {q: (T, H) float64}}, tokens).
    A tagger reads one sentence per line, each alone, split as ``kioku predict`` splits it;
    a tagger that reads characters is traced in its word-level layers."""
    folder = tmp_path_factory.mktemp(name)
    # --bptt and --eval-tokens are for language models: another task refuses them
    small = (
        SMALL if "--task" not in argv else ["--embed", "8", "--batch-size", "4", "--no-progress"]
    )
    assert main(["train", "--out", str(folder / "run"), *argv, *small]) == 0
    (folder / "text.txt").write_text(text)
    page = folder / "view.html"
    text_file = folder / "text.txt"
    view = ["view", str(folder / "run"), "--text", str(text_file), "--out", str(page)]
    assert main([*view, *view_args]) == 0
    model, state, vocab, _ = load_model(folder / "run")
    if getattr(model, "num_tags", None) is None:
        segments = [tokenize(text, vocab.level, vocab.tokenizer)]
    else:  # as kioku predict reads a tagger's text: a sentence a line
        segments = [vocab.words(line) for line in text.splitlines() if line.strip()]
    chars = state["task"].get("char_vocab")
    table = None if chars is None else FormTable(Vocabulary.from_dict(chars))
    parts = []
    for words in segments:
        ids = np.array([vocab.index.get(t, 0) for t in words])
        with model.eval_mode(), trace(model) as tr:
            if table is None:
                model(ids[:, None])
            else:
                model(ids[:, None], None, table.char_batch(table.ids(words)[:, None]))
        parts.append(
            {
                (layer, direction): {
                    q: tr.get(layer, direction, module).get(q)[:, 0, :].astype(np.float64)
                    for q in "ifgoch"
                }
                for module, layer, direction in tr.keys()
                if not module.startswith("char_encoder")
            }
        )
    ref = {
        key: {q: np.concatenate([p[key][q] for p in parts]) for q in "ifgoch"} for key in parts[0]
    }
    return page, ref, [t for words in segments for t in words]


@pytest.fixture(scope="module")
def language_model(tmp_path_factory):
    data = tmp_path_factory.mktemp("lm-data") / "code.py"
    data.write_text("".join(f'def f{i}(x):\n    return x + "s{i}"  # seven\n' for i in range(60)))
    argv = ["--data", str(data), "--max-steps", "25", "--hidden", "12", "--layers", "2"]
    return trained(tmp_path_factory, "lm", argv, LM_TEXT)


@pytest.fixture(scope="module")
def tagger(tmp_path_factory):
    rows = []
    for s in range(30):
        rows.append(f"# sent_id = {s}")
        for i, (word, tag) in enumerate([("the", "DET"), ("cat", "NOUN"), ("runs", "VERB")], 1):
            rows.append(f"{i}\t{word}\t{word}\t{tag}\t_\t_\t0\tdep\t_\t_")
        for i, (word, tag) in enumerate([("a", "DET"), ("dog", "NOUN"), ("sleeps", "VERB")], 1):
            rows.append(f"{i}\t{word}\t{word}\t{tag}\t_\t_\t0\tdep\t_\t_")
        rows.append("")
    data = tmp_path_factory.mktemp("tag-data") / "tags.conllu"
    data.write_text("\n".join(rows) + "\n")
    argv = ["--task", "tag", "--data", str(data), "--max-steps", "6", "--hidden", "7"]
    word_only = ["--char-embed", "0", "--word-dropout", "0"]
    return trained(tmp_path_factory, "tag", argv + ["--layers", "2", *word_only], TAG_TEXT)


APPLE_TAGS = [("Apple", "PROPN"), ("is", "AUX"), ("something", "PRON"), ("that", "PRON")]
APPLE_TAGS += [("I", "PRON"), ("like", "VERB"), ("to", "PART"), ("eat", "VERB"), (".", "PUNCT")]


@pytest.fixture(scope="module")
def char_tagger(tmp_path_factory):
    """A 2-layer bidirectional tagger that reads characters (the tag preset's default),
    its compare page (the seed's sentence against "... to use."), and its Japanese page."""
    rows = []
    for s in range(30):
        rows.append(f"# sent_id = {s}")
        rows += [
            f"{i}\t{w}\t{w}\t{t}\t_\t_\t0\tdep\t_\t_" for i, (w, t) in enumerate(APPLE_TAGS, 1)
        ]
        rows.append("")
    data = tmp_path_factory.mktemp("char-tag-data") / "apple.conllu"
    data.write_text("\n".join(rows) + "\n")
    argv = ["--task", "tag", "--data", str(data), "--max-steps", "6", "--hidden", "8"]
    use = data.parent / "use.txt"
    use.write_text(USE)
    page, ref, tokens = trained(
        tmp_path_factory, "char-tag", [*argv, "--layers", "2"], EAT, ("--compare", str(use))
    )
    ja = page.with_name("ja.html")
    text = page.with_name("text.txt")
    command = ["view", str(page.parent / "run"), "--text", str(text), "--out", str(ja)]
    assert main([*command, "--lang", "ja", "--compare", str(use)]) == 0
    return page, ja, ref, tokens


def open_page(driver, page):
    driver.get(page.as_uri())
    assert driver.execute_script("return document.body.dataset.ready") == "1"
    return driver.find_elements(By.CSS_SELECTOR, "#text .tok")


def hover(driver, element):
    ActionChains(driver).move_to_element(element).perform()


LSTM_KINDS = {q.short: q.scale for q in CELL_QUANTITIES["LSTM"]}


def expected_colour(q, value, values):
    """The colour kioku.inspect.colours gives ``value`` of an LSTM's quantity ``q`` when the
    picked cell's values are ``values`` (the page must draw the same)."""
    hex_colour = colours.colour(value, colours.colour_scale(LSTM_KINDS[q], values))
    return tuple(int(hex_colour[k : k + 2], 16) for k in (1, 3, 5))


def rgb(css):
    return tuple(int(v) for v in re.findall(r"\d+", css)[:3])


def shown_step(driver, group, q, cells):
    """The numbers in one column of one step table, as text."""
    shown = driver.execute_script(  # one round trip instead of one per number
        "return Array.from(document.querySelectorAll(arguments[0]),"
        " (td) => [Number(td.dataset.cell), td.textContent])",
        f'td[data-g="{group}"][data-q="{q}"]',
    )
    assert [cell for cell, _ in shown] == list(range(cells))
    return [text for _, text in shown]


def token_colours(driver):
    """Each token's rendered background colour as (r, g, b)."""
    css = driver.execute_script(
        "return Array.from(document.querySelectorAll('#text .tok'),"
        " (span) => getComputedStyle(span).backgroundColor)"
    )
    return [rgb(c) for c in css]


def check_step(driver, ref, t, slack=0):
    """Every gate, cell and hidden value of every layer and direction at step ``t``
    (``slack``: counts of 0.001 the page may differ by, for a comparison's runs that spell
    words in one batch and may round the last bit otherwise)."""
    title = driver.find_element(By.ID, "step-title").text
    assert title.startswith((f"Step {t} of ", f"ステップ {t} / ")), title
    compared = 0
    for g, key in enumerate(sorted(ref)):
        for q in "ifgoch":
            truth = ref[key][q][t]
            shown = shown_step(driver, g, q, truth.size)
            for text, value in zip(shown, truth):
                assert re.fullmatch(r"-?\d+\.\d{3}", text), text
                assert abs(float(text) - value) <= 0.0005 + slack / 1000 + 1e-9, (key, q, text)
                assert abs(round(float(text) * 1000) - np.rint(value * 1000)) <= slack
                compared += 1
    return compared


def ranking_in_python(values, start, end, window, top=10, way="on"):
    """LSTMVis's score from the trace at the page's precision: mean inside ``start..end``
    minus mean over ``window`` steps each side; ranked by score (``way="on"``: highest
    first, ``"off"``: lowest first), ties by cell index."""
    counts = np.rint(values * 1000).astype(np.int64)
    T = counts.shape[0]
    outside = [t for t in range(start - window, end + 1 + window) if 0 <= t < T]
    outside = [t for t in outside if not start <= t <= end]
    inside = counts[start : end + 1].sum(axis=0) / (end + 1 - start)
    score = inside - (counts[outside].sum(axis=0) / len(outside) if outside else 0.0)
    exact = values[start : end + 1].mean(axis=0) - (values[outside].mean(axis=0) if outside else 0)
    sign = -1 if way == "on" else 1
    order = sorted(range(len(score)), key=lambda j: (sign * score[j], j))[:top]
    return order, score / 1000, exact


def check_ranking(driver, ref, start, end, window=5, q="h"):
    """Both lists of every layer-direction: the cells that switch on inside the span (the
    highest scores) and those that switch off (the lowest), as computed here."""
    assert driver.find_element(By.ID, "sel-info").text.startswith(f"tokens {start}–{end}:")
    for g, key in enumerate(sorted(ref)):
        for way in ("on", "off"):
            items = driver.find_elements(
                By.CSS_SELECTOR, f'#ranking .group[data-g="{g}"] ol.rank-{way} li'
            )
            cells = [int(li.get_attribute("data-cell")) for li in items]
            order, score, exact = ranking_in_python(ref[key][q], start, end, window, way=way)
            assert cells == order, (key, way)
            for li, j in zip(items, cells):
                shown = float(li.find_element(By.CLASS_NAME, "score").text)
                assert abs(shown - score[j]) <= 0.0005 + 1e-9
                assert abs(shown - exact[j]) <= 0.0015 + 1e-9  # inputs rounded to 0.0005 too


def drag(driver, tokens, start, end):
    ActionChains(driver).click_and_hold(tokens[start]).move_to_element(
        tokens[end]
    ).release().perform()


def no_errors_and_no_loads(driver, page):
    assert driver.execute_script("return performance.getEntriesByType('resource').length") == 0
    severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == []
    assert "http://" not in page.read_text() and "https://" not in page.read_text()


def test_language_model_page(browser, language_model):
    page, ref, tokens = language_model
    spans = open_page(browser, page)
    assert "".join(s.get_attribute("textContent") for s in spans) == LM_TEXT.replace("\n", "⏎")
    assert sorted(ref) == [(0, 0), (1, 0)]

    # hover: every value of every layer at that step, to the shown precision
    compared = 0
    for t in (0, 17, len(tokens) - 1):
        hover(browser, spans[t])
        compared += check_step(browser, ref, t)
    assert compared == 3 * 2 * 6 * 12

    # pick a cell: the text's colours follow that cell's values
    hover(browser, spans[5])
    for g, q, j in ((1, "c", 9), (0, "f", 2)):
        browser.find_element(
            By.CSS_SELECTOR, f'td[data-g="{g}"][data-q="{q}"][data-cell="{j}"]'
        ).click()
        values = np.rint(ref[sorted(ref)[g]][q][:, j] * 1000) / 1000
        for got, value in zip(token_colours(browser), values, strict=True):
            want = expected_colour(q, value, values)
            assert max(abs(a - b) for a, b in zip(got, want)) <= 1, (q, j, value, got, want)
        assert f"cell {j}, layer {g} forward" in browser.find_element(By.ID, "legend").text

    # a click pins a step, the arrow keys walk the text with the mouse away from it
    spans[5].click()
    hover(browser, browser.find_element(By.ID, "title"))
    assert browser.find_element(By.ID, "step-title").text.startswith("Step 5 of ")
    ActionChains(browser).send_keys(Keys.ARROW_RIGHT, Keys.ARROW_RIGHT, Keys.ARROW_RIGHT).perform()
    ActionChains(browser).send_keys(Keys.ARROW_LEFT).perform()
    check_step(browser, ref, 7)

    # select a span with the mouse: the ranked cells are those of the trace
    start, end = 26, 29  # the string literal "s7"
    drag(browser, spans, start, end)
    check_ranking(browser, ref, start, end)
    hover(browser, spans[start])
    ARTIFACTS.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "view_language_model.png"))
    no_errors_and_no_loads(browser, page)


def test_bidirectional_tagger_page(browser, tagger):
    page, ref, tokens = tagger
    # a sentence a line, each alone, split as kioku predict splits it: no <eos>
    assert tokens == ["the", "cat", "runs", "a", "dog", "sleeps", "."]
    spans = open_page(browser, page)
    assert [s.text for s in spans] == tokens
    assert spans[3].rect["y"] > spans[2].rect["y"]  # the second sentence on its own line
    assert sorted(ref) == [(0, 0), (0, 1), (1, 0), (1, 1)]

    # both directions of a layer side by side, forward on the left
    blocks = browser.find_elements(By.CSS_SELECTOR, "#step-grid .group")
    labels = [b.find_element(By.TAG_NAME, "h3").text for b in blocks]
    assert labels == ["layer 0 forward", "layer 0 reverse", "layer 1 forward", "layer 1 reverse"]
    for left, right in (blocks[0:2], blocks[2:4]):
        assert left.rect["y"] == right.rect["y"]
        assert left.rect["x"] + left.rect["width"] <= right.rect["x"]
    assert blocks[2].rect["y"] > blocks[0].rect["y"]

    for t in (1, 3):  # "cat", "a": the reverse direction has already read what follows
        hover(browser, spans[t])
        assert check_step(browser, ref, t) == 4 * 6 * 7
        output = browser.find_element(By.ID, "step-output").text
        assert output.startswith("model's tag here: ") and re.search(r"DET|NOUN|VERB", output)

    drag(browser, spans, 4, 5)
    check_ranking(browser, ref, 4, 5)
    ranked = browser.find_elements(By.CSS_SELECTOR, "#ranking .group")
    assert ranked[0].rect["y"] == ranked[1].rect["y"] < ranked[2].rect["y"]
    # a ranked cell is a pick: the reverse direction's cell colours the text
    first = browser.find_element(By.CSS_SELECTOR, '#ranking .group[data-g="1"] li')
    first.click()
    j = int(first.get_attribute("data-cell"))
    values = np.rint(ref[0, 1]["h"][:, j] * 1000) / 1000
    for got, value in zip(token_colours(browser), values, strict=True):
        want = expected_colour("h", value, values)
        assert max(abs(a - b) for a, b in zip(got, want)) <= 1
    ARTIFACTS.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "view_tagger.png"))
    no_errors_and_no_loads(browser, page)


def test_japanese_text_from_file(browser, tmp_path):
    """Characters outside ASCII survive the embedded JSON and the page's rendering."""
    from kioku.data.vocab import Vocabulary
    from kioku.inspect.view import write_view
    from kioku.models import LanguageModel

    text = "LSTMは記憶セルを持つ。\n忘却ゲートが開き具合を決める。"
    vocab = Vocabulary.build(text, "char")
    model = LanguageModel(len(vocab), 4, 5, num_layers=1, rng=7)
    write_view(model, vocab, text, tmp_path / "ja.html")
    spans = open_page(browser, tmp_path / "ja.html")
    assert "".join(s.text for s in spans) == text.replace("\n", "⏎")
    hover(browser, spans[6])
    assert browser.find_element(By.ID, "step-title").text == 'Step 6 of 29: "憶"'
    ids = np.array([vocab.index[c] for c in text])
    with trace(model) as tr:
        model(ids[:, None])
    rec = tr.get(0, 0)
    check_step(browser, {(0, 0): {q: rec.get(q)[:, 0, :].astype(np.float64) for q in "ifgoch"}}, 6)


def strip_colours(driver):
    """The strip's rows: {quantity: [(r, g, b) per step]}."""
    rows = driver.execute_script(
        "return Array.from(document.querySelectorAll('#strip tr[data-q]'), (row) =>"
        " [row.dataset.q, Array.from(row.querySelectorAll('td'),"
        " (td) => getComputedStyle(td).backgroundColor)])"
    )
    return {q: [rgb(c) for c in css] for q, css in rows}


def test_off_ranking_and_the_strip(browser, language_model):
    """Rank by the forget gate: the cells that switch off inside a line end are listed with
    the page's numbers; a click on one draws its six quantities over the text."""
    page, ref, tokens = language_model
    spans = open_page(browser, page)
    Select(browser.find_element(By.ID, "rank-quantity")).select_by_value("f")
    start = end = tokens.index("\n")  # the first line end
    drag(browser, spans, start, end)
    check_ranking(browser, ref, start, end, q="f")
    first = browser.find_element(By.CSS_SELECTOR, '#ranking .group[data-g="1"] ol.rank-off li')
    first.click()
    j = int(first.get_attribute("data-cell"))
    assert browser.find_element(By.ID, "strip-info").text.startswith(f"layer 1 forward, cell {j}:")
    shown = strip_colours(browser)
    assert list(shown) == list("ifgoch")
    for q, got in shown.items():
        values = np.rint(ref[1, 0][q][:, j] * 1000) / 1000
        for colour, value in zip(got, values, strict=True):
            want = expected_colour(q, value, values)
            assert max(abs(a - b) for a, b in zip(colour, want)) <= 1, (q, value)
    legend = browser.find_element(By.ID, "strip-legend").text
    assert "gates (i, f, o): closed 0" in legend and "1 open" in legend
    assert "c: negative −" in legend and "h: negative −1.000" in legend
    # a column of the strip is a step: hovering it shows that step's tables
    hover(browser, browser.find_element(By.CSS_SELECTOR, '#strip tr[data-q="f"] td[data-t="7"]'))
    check_step(browser, ref, 7)
    ARTIFACTS.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "view_off_ranking.png"))
    no_errors_and_no_loads(browser, page)


def compare_cells(driver, group):
    """The comparison table's cells of one layer-direction, as text."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll("
        f"'.compare-table tr[data-g=\"{group}\"] td'), (td) => td.textContent)"
    )


def test_char_tagger_compare_page(browser, char_tagger):
    """The seed's lesson in the browser: "Apple is something that I like to eat." against
    "... to use.": layer 0 forward shows "=" (exactly equal) up to "eat"/"use", its reverse
    differs at "Apple" already; the character encoder is said to be left out."""
    page, _, ref, tokens = char_tagger
    words = ["Apple", "is", "something", "that", "I", "like", "to", "eat", "."]
    assert tokens == words
    spans = open_page(browser, page)
    assert [s.text for s in spans] == words + words[:7] + ["use", "."]
    note = browser.find_element(By.ID, "char-note")
    assert note.is_displayed() and "character encoder is left out" in note.text
    assert browser.find_element(By.ID, "compare-panel").is_displayed()
    lesson = browser.find_element(By.ID, "compare-lesson").text
    assert lesson.startswith("The seed's lesson: the forward direction of the first layer")
    forward, reverse = compare_cells(browser, 0), compare_cells(browser, 1)
    assert forward[:7] == ["="] * 7 and forward[7] != "="
    assert "=" not in reverse[:7]
    framed = browser.find_elements(By.CSS_SELECTOR, ".compare-table td.first")
    assert [td.text for td in framed] == ["eat", "use"]
    # a cell of the comparison is a step of the first sentence: its tables show it
    hover(
        browser,
        browser.find_element(By.CSS_SELECTOR, '.compare-table tr[data-g="1"] td[data-t="2"]'),
    )
    check_step(browser, ref, 2, slack=1)
    Select(browser.find_element(By.ID, "compare-quantity")).select_by_value("c")
    assert compare_cells(browser, 0)[:7] == ["="] * 7
    ARTIFACTS.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "view_compare.png"))
    no_errors_and_no_loads(browser, page)


def test_japanese_page(browser, char_tagger):
    _, ja, ref, _ = char_tagger
    spans = open_page(browser, ja)
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "ja"
    assert browser.find_element(By.ID, "howto-title").text == "このページの読み方"
    body = browser.find_element(By.ID, "howto-body").text
    assert "forgetゲート(忘却ゲート:" in body and "記憶セル" in body and "隠れ状態" in body
    hover(browser, spans[1])
    assert browser.find_element(By.ID, "step-title").text == 'ステップ 1 / 18: "is"'
    check_step(browser, ref, 1, slack=1)  # the numbers are the same in every language
    heads = [h.text for h in browser.find_elements(By.CSS_SELECTOR, "#step-grid h3")]
    assert heads == ["第0層 順方向", "第0層 逆方向", "第1層 順方向", "第1層 逆方向"]
    columns = browser.find_elements(By.CSS_SELECTOR, "#step-grid thead th")
    assert columns[0].text == "セル" and [c.text for c in columns[1:7]] == list("ifgoch")
    assert "閉 0" in browser.find_element(By.ID, "strip-legend").text
    assert "文字単位の双方向LSTM" in browser.find_element(By.ID, "char-note").text
    assert browser.find_element(By.ID, "compare-lesson").text.startswith("シードの教訓")
    drag(browser, spans, 3, 4)
    assert browser.find_element(By.ID, "sel-info").text.startswith("トークン 3–4:")
    ranked = browser.find_elements(By.CSS_SELECTOR, "#ranking .group h3")
    assert ranked[0].text == "第0層 順方向: h がオンになるセル"
    assert ranked[1].text == "第0層 順方向: h がオフになるセル"
    ARTIFACTS.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "view_ja.png"))
    no_errors_and_no_loads(browser, ja)
