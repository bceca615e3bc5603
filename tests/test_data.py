"""Text files, the vocabulary, the train/validation split and the (T, N) batches for truncated BPTT."""

import math

import numpy as np
import pytest

from tinygrad_rnn.lm.data import (
    Batches,
    InputError,
    Vocabulary,
    load_corpus,
    read_text,
    shipped_text_path,
    tracks,
    unigram_entropy,
)


def test_shipped_text_is_small_public_domain_hamlet_and_loads():
    path = shipped_text_path()
    assert path.is_file()
    assert path.stat().st_size < 400_000
    corpus = load_corpus()
    assert "HAMLET" in corpus.vocab.decode(corpus.train[:100])
    total = len(corpus.train) + len(corpus.valid)
    assert len(corpus.valid) == math.ceil(0.1 * total)


@pytest.mark.parametrize(
    "content, message",
    [(b"", "is empty"), (b"ok\xff\xfe", "not UTF-8 text: byte 0xff at offset 2")],
)
def test_bad_text_files_give_clear_errors(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        load_corpus(path)


def test_missing_text_and_directory_give_clear_errors(tmp_path):
    with pytest.raises(InputError, match="no such text file"):
        read_text(tmp_path / "nothing.txt")
    with pytest.raises(InputError, match="is a directory"):
        read_text(tmp_path)


def test_corpus_of_utf8_text_splits_at_the_end_with_one_vocabulary(tmp_path):
    text = "ünïcödé text — with ∑ and 😀\n" * 10
    path = tmp_path / "u.txt"
    path.write_text(text, encoding="utf-8")
    corpus = load_corpus(path, valid_fraction=0.25)
    assert corpus.vocab == Vocabulary.from_text(text)
    assert corpus.vocab.decode(np.concatenate([corpus.train, corpus.valid])) == text
    assert len(corpus.valid) == math.ceil(0.25 * len(text))


def test_vocabulary_round_trips_through_ids_and_a_plain_array():
    vocab = Vocabulary(["\x00", "a", "é", "😀", "\n"])
    ids = vocab.encode("a😀\x00é\n")
    np.testing.assert_array_equal(ids, [1, 3, 0, 2, 4])
    assert vocab.decode(ids) == "a😀\x00é\n"
    codes = vocab.to_array()
    assert codes.dtype == np.int32
    assert Vocabulary.from_array(codes) == vocab


def test_vocabulary_rejects_unknown_characters_and_duplicates():
    vocab = Vocabulary.from_text("abc")
    assert vocab.chars == ("a", "b", "c")
    with pytest.raises(InputError, match="not in the vocabulary: 'xz'"):
        vocab.encode("axbzx")
    with pytest.raises(InputError, match="appears twice"):
        Vocabulary("aba")
    with pytest.raises(InputError, match="code points"):
        Vocabulary.from_array(np.array([1.5]))


def test_unigram_entropy_is_that_of_the_character_frequencies():
    assert unigram_entropy(np.array([0, 1, 2, 3]), 4) == pytest.approx(math.log(4), rel=1e-12, abs=0)
    assert unigram_entropy(np.array([2, 2, 2]), 5) == pytest.approx(0.0, abs=1e-12)
    p = np.array([0.75, 0.25])
    expected = -(p * np.log(p)).sum()
    assert unigram_entropy(np.array([0, 0, 0, 1]), 2) == pytest.approx(expected, rel=1e-12, abs=0)


def test_tracks_cut_the_stream_into_columns():
    data = tracks(np.arange(23), 4)
    assert data.shape == (5, 4)
    np.testing.assert_array_equal(data[:, 1], np.arange(5, 10))
    np.testing.assert_array_equal(data[:, 3], np.arange(15, 20))


def test_batches_continue_each_track_and_restart_after_an_epoch():
    ids = np.arange(4 * 11)  # 4 tracks of 11: two batches of T = 4 (rows 0-4 and 4-8), then a restart
    batches = Batches(ids, batch=4, seq_len=4)
    x1, y1, restart1 = batches.next()
    x2, y2, restart2 = batches.next()
    assert x1.shape == (4, 4) and not restart1 and not restart2
    np.testing.assert_array_equal(x1[:, 2], [22, 23, 24, 25])
    np.testing.assert_array_equal(y1, x1 + 1)
    np.testing.assert_array_equal(x2[0], y1[-1])  # each column goes on where it stopped
    x3, _, restart3 = batches.next()
    assert restart3
    np.testing.assert_array_equal(x3, x1)


def test_batches_resume_from_a_saved_position():
    ids = np.random.default_rng(0).integers(0, 7, 300)
    walk = Batches(ids, batch=3, seq_len=5)
    for _ in range(7):
        walk.next()
    resumed = Batches(ids, batch=3, seq_len=5, position=walk.position)
    for _ in range(30):
        expected, got = walk.next(), resumed.next()
        np.testing.assert_array_equal(expected[0], got[0])
        assert expected[2] == got[2]


def test_batches_refuse_a_text_too_short_for_the_batch_shape():
    with pytest.raises(InputError, match="too few for 8 tracks"):
        Batches(np.arange(40), batch=8, seq_len=5)
