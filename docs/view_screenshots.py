"""Regenerate the screenshots of ``kioku view`` in docs/img (view-*.png).

    python docs/view_screenshots.py [--out docs/img] [--gum ../shared/data/ud-gum]
                                    [--seconds 45]

Trains two small models with ``kioku train`` (each for ``--seconds``): a bidirectional
tagger that reads characters (the ``tag`` preset's default) on UD English-GUM, and a
character language model on the default corpus (Python's standard library); writes their
pages with ``kioku view`` and photographs them in headless Chromium (Debian's
``chromium`` and ``chromium-driver``, driven by Selenium; nothing is downloaded):

- ``view-compare.png``: the seed's sentence against "... to use." (``--compare``);
- ``view-char-tagger.png``: the top of the tagger's page, the character encoder left out;
- ``view-ja.png``: the same page in Japanese (``--lang ja``);
- ``view-off-ranking.png``: the language model's cells whose forget gate switches off at
  a line end;
- ``view-strip.png``: the strip of one such cell over the text.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from kioku.cli import main

REPO = Path(__file__).resolve().parents[1]
EAT = "Apple is something that I like to eat.\nThe company Apple makes phones.\n"
USE = "Apple is something that I like to use.\nThe company Apple makes computers.\n"
CODE = "def area(width, height):\n    return width * height\n\n\nprint(area(3, 4))\n"


def train_and_view(work: Path, gum: Path, seconds: float) -> dict[str, Path]:
    """The pages: compare (en), compare (ja), the language model's."""
    tagger, lm = work / "tagger", work / "lm"
    budget = ["--max-time", str(seconds), "--no-progress"]
    tag = ["train", "--task", "tag", "--data", str(gum / "train.conllu"), "--out", str(tagger)]
    assert main([*tag, "--hidden", "32", "--embed", "32", "--layers", "2", *budget]) == 0
    assert main(["train", "--out", str(lm), "--hidden", "64", "--layers", "2", *budget]) == 0
    (work / "eat.txt").write_text(EAT)
    (work / "use.txt").write_text(USE)
    (work / "code.py").write_text(CODE)
    pages = {}
    for lang in ("en", "ja"):
        pages[lang] = work / f"compare-{lang}.html"
        view = ["view", str(tagger), "--text", str(work / "eat.txt"), "--out", str(pages[lang])]
        assert main([*view, "--compare", str(work / "use.txt"), "--lang", lang]) == 0
    pages["lm"] = work / "lm.html"
    assert main(["view", str(lm), "--text", str(work / "code.py"), "--out", str(pages["lm"])]) == 0
    return pages


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--window-size=1300,900"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def shoot(driver, out: Path, top: str | None = None) -> None:
    """Save the window, scrolled so that the element ``top`` (an id) starts it."""
    if top:
        driver.execute_script(f"document.getElementById('{top}').scrollIntoView()")
    assert driver.save_screenshot(str(out))
    print(f"wrote {out} ({out.stat().st_size / 1e3:.0f} kB)")


def photograph(pages: dict[str, Path], out: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver = browser()
    try:
        driver.get(pages["en"].as_uri())
        shoot(driver, out / "view-char-tagger.png")
        shoot(driver, out / "view-compare.png", "compare-panel")
        driver.get(pages["ja"].as_uri())
        driver.find_elements(By.CSS_SELECTOR, "#text .tok")[0].click()
        shoot(driver, out / "view-ja.png")

        driver.get(pages["lm"].as_uri())
        spans = driver.find_elements(By.CSS_SELECTOR, "#text .tok")
        Select(driver.find_element(By.ID, "rank-quantity")).select_by_value("f")
        newline = next(i for i, s in enumerate(spans) if s.get_attribute("textContent") == "⏎")
        chain = ActionChains(driver).click_and_hold(spans[newline]).release()
        chain.perform()
        off = driver.find_element(By.CSS_SELECTOR, '#ranking .group[data-g="1"] ol.rank-off li')
        off.click()
        Select(driver.find_element(By.ID, "pick-quantity")).select_by_value("f")
        # the text, the strip and both rankings in one picture: the rest hidden
        for hidden in ("howto", "help", "colour-help", "step"):
            driver.execute_script(f"document.getElementById('{hidden}').style.display = 'none'")
        driver.set_window_size(1300, 1250)
        shoot(driver, out / "view-off-ranking.png", "controls")
        driver.execute_script("window.scrollTo(0, 0)")
        strip = driver.find_element(By.ID, "strip-panel")
        assert strip.screenshot(str(out / "view-strip.png"))
        print(f"wrote {out / 'view-strip.png'}")
    finally:
        driver.quit()


def main_(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img")
    parser.add_argument("--gum", type=Path, default=REPO.parent / "shared" / "data" / "ud-gum")
    parser.add_argument("--seconds", type=float, default=45.0, help="training time per model")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        photograph(train_and_view(Path(work), args.gum, args.seconds), args.out)


if __name__ == "__main__":
    main_()
