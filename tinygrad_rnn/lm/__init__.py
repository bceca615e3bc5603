"""The character-level language model: text data and vocabulary (`data`), training with truncated
BPTT and sampling (`training`), exact-resume checkpoints (`checkpoint`)."""

from .data import InputError, Vocabulary, load_corpus
from .training import TrainConfig, TrainResult, evaluate, load_model, sample, train

__all__ = ["InputError", "TrainConfig", "TrainResult", "Vocabulary", "evaluate", "load_corpus", "load_model",
           "sample", "train"]  # fmt: skip
