"""The cell drawn: every diagram of kioku.inspect.diagrams regenerated in both languages,
each a PNG of its stated size and an SVG; the copies committed in docs/img are the ones the
code makes today and the docs and notebooks show them; no Japanese font is a clear error."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # draws every diagram (several seconds)

pytest.importorskip("matplotlib")

from kioku.inspect import diagrams  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
IMG = ROOT / "docs" / "img"


def png_info(data: bytes) -> tuple[int, int, dict[str, str]]:
    """Width, height and the tEXt entries of a PNG file's bytes."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, text, size = 8, {}, None
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        body = data[offset + 8 : offset + 8 + length]
        crc = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])[0]
        assert zlib.crc32(kind + body) == crc, kind
        if kind == b"IHDR":
            size = struct.unpack(">II", body[:8])
        elif kind == b"tEXt":
            key, _, value = body.partition(b"\0")
            text[key.decode("latin-1")] = value.decode("latin-1")
        offset += 12 + length
    return size[0], size[1], text


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    try:  # the README's plain `pytest` on a machine without one; .ci/run installs one
        diagrams.japanese_font()
    except RuntimeError as error:
        pytest.skip(f"no font with Japanese glyphs on this machine: {error}")
    out = tmp_path_factory.mktemp("diagrams")
    written = diagrams.write_diagrams(out)
    assert len(written) == len(diagrams.diagram_names()) * 2 * 2
    return out


@pytest.mark.slow
def test_every_diagram_in_both_languages_at_its_size(generated):
    names = diagrams.diagram_names()
    assert set(names) == set(diagrams.SIZES)
    for part in ("forget_gate", "input_gate", "cell_update", "output_gate"):
        assert f"lstm_{part}" in names
    for name in names:
        for lang in diagrams.LANGUAGES:
            png = (generated / f"{name}_{lang}.png").read_bytes()
            width, height, _ = png_info(png)
            assert (width, height) == diagrams.SIZES[name], (name, lang)
            assert len(png) > 20_000, (name, lang)  # drawn, not blank
            svg = (generated / f"{name}_{lang}.svg").read_text("utf-8")
            assert svg.startswith("<?xml") and "<svg" in svg and len(svg) > 20_000


def test_labels_differ_by_language(generated):
    for name in diagrams.diagram_names():
        en = (generated / f"{name}_en.svg").read_bytes()
        ja = (generated / f"{name}_ja.svg").read_bytes()
        assert en != ja, name


def test_committed_diagrams_are_the_current_ones(generated):
    """Byte for byte, when this matplotlib drew the committed ones (and, for Japanese, the
    same font is installed): otherwise only their presence and size can be checked."""
    mine = png_info((generated / "lstm_step_en.png").read_bytes())[2]["Software"]
    font = diagrams.japanese_font()
    stale, compared = [], 0
    for path in sorted(generated.iterdir()):
        committed = IMG / path.name
        assert committed.is_file(), (
            f"{committed} is missing: python -m kioku.inspect.diagrams docs/img"
        )
        if path.suffix == ".png":
            theirs = png_info(committed.read_bytes())
            assert theirs[:2] == png_info(path.read_bytes())[:2], path.name
            if theirs[2].get("Software") != mine:
                continue
        if path.stem.endswith("_ja") and font != "Noto Sans CJK JP":
            continue
        compared += 1
        if committed.read_bytes() != path.read_bytes():
            stale.append(path.name)
    assert not stale, f"out of date, rerun python -m kioku.inspect.diagrams docs/img: {stale}"
    if compared == 0:
        pytest.skip(f"docs/img was drawn by another matplotlib than {mine}: sizes checked only")


def test_docs_notebooks_and_view_show_the_diagrams():
    learn = (ROOT / "docs" / "learn.md").read_text("utf-8")
    for name in [
        "lstm_step",
        "lstm_stacked",
        "lstm_bidirectional",
        *diagrams.PART_DIAGRAMS.values(),
    ]:
        for lang in diagrams.LANGUAGES:
            assert f"img/{name}_{lang}.png" in learn, (name, lang)
    cells = (ROOT / "docs" / "cells.md").read_text("utf-8")
    for name in ("lstm_step", "gru_step", "slstm_step"):
        assert f"img/{name}_en.png" in cells and f"img/{name}_ja.png" in cells, name
    sources = "\n".join(p.read_text("utf-8") for p in (ROOT / "notebooks" / "src").glob("*.py"))
    for name in [
        "lstm_step",
        "lstm_stacked",
        "lstm_bidirectional",
        *diagrams.PART_DIAGRAMS.values(),
    ]:
        for lang in diagrams.LANGUAGES:
            assert f"docs/img/{name}_{lang}.png" in sources, (name, lang)
    # the view's "how to read" note holds the drawing of the model's own cell, and names
    # the diagrams in docs/learn.md
    from kioku.inspect.view import cell_diagram
    from kioku.inspect.view_text import page_text
    from kioku.models import SequenceTagger

    for cell in ("lstm", "gru", "slstm"):
        model = SequenceTagger(vocab_size=5, embed_size=3, hidden_size=4, cell=cell, rng=0)
        for lang in diagrams.LANGUAGES:
            assert cell_diagram(model, lang) == diagrams.svg_data_uri(f"{cell}_step", lang)
            assert "docs/learn.md" in page_text(lang)["colour_help"]


def test_without_a_japanese_font_it_says_how_to_get_one(monkeypatch, tmp_path):
    from matplotlib import font_manager

    monkeypatch.setattr(font_manager.fontManager, "ttflist", [])
    monkeypatch.setattr(diagrams.shutil, "which", lambda name: None)
    monkeypatch.setattr(diagrams.glob, "glob", lambda *a, **k: [])
    with pytest.raises(RuntimeError, match=r"apt-get install fonts-noto-cjk"):
        diagrams.japanese_font()
    with pytest.raises(RuntimeError, match="Japanese glyphs"):
        diagrams.write_diagrams(tmp_path / "out", ["lstm_step"], languages=("ja",))
    assert not list((tmp_path / "out").glob("*"))  # nothing drawn with empty boxes
    assert diagrams.main([str(tmp_path / "out")]) == 1


def test_bad_names_are_refused():
    with pytest.raises(ValueError, match="name: expected one of lstm_step, .* found 'lstm'"):
        diagrams.draw("lstm")
    with pytest.raises(ValueError, match="lang: expected one of en, ja, found 'fr'"):
        diagrams.draw("lstm_step", "fr")
    assert diagrams.main([]) == 2
