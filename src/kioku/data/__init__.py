"""Data for kioku: vocabularies, corpora, batching for each task, file readers.

Heavy or optional dependencies (``conllu``) are imported only when used.
"""

from .conllu_io import read_conllu
from .corpus import Corpus, corpus_from_path, load_corpus
from .labeled import read_labeled
from .padded import Example, PaddedBatcher, pad_batch
from .ptb import data_cache, ptb_corpus
from .splits import SplitFiles, find_splits
from .stdlib import stdlib_corpus
from .stream import StreamBatcher
from .text import read_text, split_text
from .timeseries import read_csv_series, windows
from .tokenize import tokenize_words
from .vocab import EOS, UNK, Vocabulary, tokenize

__all__ = [
    "EOS",
    "UNK",
    "Corpus",
    "Example",
    "PaddedBatcher",
    "SplitFiles",
    "StreamBatcher",
    "Vocabulary",
    "corpus_from_path",
    "data_cache",
    "find_splits",
    "load_corpus",
    "pad_batch",
    "ptb_corpus",
    "read_conllu",
    "read_csv_series",
    "read_labeled",
    "read_text",
    "split_text",
    "stdlib_corpus",
    "tokenize",
    "tokenize_words",
    "windows",
]
