"""PyTorch's own RNN test cases, ported to this API as far as it reaches.

The behaviours checked by torch's test/test_nn.py (argument and shape checks of the recurrent layers
and cells, nonlinearity, initial state, dropout between layers, retained graphs, variable-length
batches against one sequence at a time), test/nn/test_packed_sequence.py (padding, packing and their
round trips, orders, errors, gradients) and the no-batch-dim samples of torch's module tests
(an unbatched input gives what a batch of one gives), written here in this library's API. Not
ported: devices, cuDNN, half precision and integer dtypes other than as data to pad or pack, and the
UserWarning torch gives for dropout with one layer.
"""

import itertools

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import nn
from tinygrad_rnn.nn.recurrent import RNNBase
from tinygrad_rnn.nn.utils.rnn import (
    PackedSequence,
    pack_padded_sequence,
    pack_sequence,
    pad_packed_sequence,
    pad_sequence,
    unpack_sequence,
    unpad_sequence,
)

LAYERS = {"RNN": nn.RNN, "GRU": nn.GRU, "LSTM": nn.LSTM}
CELLS = {"RNNCell": nn.RNNCell, "GRUCell": nn.GRUCell, "LSTMCell": nn.LSTMCell}


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def parts(state) -> list:
    """A layer's or cell's state as a list: [h] or [h, c]."""
    return list(state) if isinstance(state, tuple) else [state]


def assert_packed_equal(a: PackedSequence, b: PackedSequence) -> None:
    np.testing.assert_array_equal(a.data.data, b.data.data)
    np.testing.assert_array_equal(a.batch_sizes, b.batch_sizes)
    for x, y in [(a.sorted_indices, b.sorted_indices), (a.unsorted_indices, b.unsorted_indices)]:
        assert (x is None) == (y is None)
        if x is not None:
            np.testing.assert_array_equal(x, y)


# --- test_nn.py: argument checks of the layers ---------------------------------------------------------


@pytest.mark.parametrize(("mode", "proj_size"), [("RNN", 0), ("GRU", 0), ("LSTM", 0), ("LSTM", 2)])
def test_rnn_args_check(mode, proj_size):
    """Every axis of the input and of each part of hx, set to a wrong size, raises RuntimeError."""
    input_size, hidden_size, num_layers, batch, steps, bad = 3, 5, 2, 4, 6, 7
    extra = {"proj_size": proj_size} if proj_size else {}
    model = LAYERS[mode](input_size, hidden_size, num_layers, dtype=np.float64, **extra)
    h_width = proj_size or hidden_size
    good_input = (steps, batch, input_size)
    good_parts = [(num_layers, batch, h_width)] + (
        [(num_layers, batch, hidden_size)] if mode == "LSTM" else []
    )

    def run(input_shape, part_shapes):
        parts = [tg.Tensor(np.zeros(s)) for s in part_shapes]
        return model(tg.Tensor(np.zeros(input_shape)), tuple(parts) if mode == "LSTM" else parts[0])

    output, _ = run(good_input, good_parts)
    assert output.shape == (steps, batch, h_width)
    for axis in (1, 2):  # batch (then hx no longer fits) and width; any number of steps is valid
        shape = list(good_input)
        shape[axis] = bad
        with pytest.raises(RuntimeError):
            run(tuple(shape), good_parts)
    for k, axis in itertools.product(range(len(good_parts)), range(3)):
        parts = [list(p) for p in good_parts]
        parts[k][axis] = bad
        with pytest.raises(RuntimeError):
            run(good_input, [tuple(p) for p in parts])


@pytest.mark.parametrize("mode", ["RNN", "GRU"])
def test_projections_are_refused_on_rnn_and_gru(mode):
    with pytest.raises(ValueError, match="only supported for LSTM"):
        RNNBase(mode if mode == "GRU" else "RNN_TANH", 4, 5, proj_size=3)


def test_lstm_projection_sizes_are_checked():
    for bad in (-1, 5, 6):
        with pytest.raises(ValueError, match="proj_size"):
            nn.LSTM(4, 5, proj_size=bad)


@pytest.mark.parametrize("mode", list(LAYERS))
def test_invalid_dropout_probabilities_are_refused(mode):
    for p in (-0.1, 1.1):
        with pytest.raises(ValueError, match="dropout"):
            LAYERS[mode](10, 10, 2, dropout=p)


def test_rnn_nonlinearity():
    assert nn.RNN(1, 10).nonlinearity == "tanh"
    assert nn.RNN(1, 10, nonlinearity="relu").nonlinearity == "relu"
    assert nn.RNN(1, 10, 1, "relu").nonlinearity == "relu"  # passed positionally, as torch allows
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(1, 10, nonlinearity="garbage")


@pytest.mark.parametrize("mode", list(LAYERS))
def test_rnn_initial_hidden_state(mode):
    model = LAYERS[mode](30, 20, 2, dtype=np.float64, rng=0)
    x = rng().standard_normal((10, 32, 30))
    zeros = tg.Tensor(np.zeros((2, 32, 20)))
    output, hidden = model(x)
    output_zero, hidden_zero = model(x, (zeros, zeros) if mode == "LSTM" else zeros)
    np.testing.assert_array_equal(output.data, output_zero.data)
    for a, b in zip(parts(hidden), parts(hidden_zero), strict=True):
        np.testing.assert_array_equal(a.data, b.data)


@pytest.mark.parametrize("mode", list(LAYERS))
def test_empty_batch_gives_empty_outputs(mode):
    model = LAYERS[mode](3, 4, dtype=np.float64)
    output, hidden = model(np.zeros((5, 0, 3)))
    assert output.shape == (5, 0, 4)
    for h in parts(hidden):
        assert h.shape == (1, 0, 4)


# --- test_nn.py: cells ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "bias"), list(itertools.product(CELLS, [True, False])))
def test_rnn_cell(name, bias):
    cell = CELLS[name](10, 20, bias, dtype=np.float64, rng=0)
    x = tg.Tensor(rng(1).standard_normal((3, 10)), requires_grad=True)
    state = tg.Tensor(rng(2).standard_normal((3, 20)))
    state = (state, tg.Tensor(rng(3).standard_normal((3, 20)))) if name == "LSTMCell" else state
    for _ in range(6):
        state = cell(x, state)
    h = state[0] if name == "LSTMCell" else state
    assert h.shape == (3, 20)
    h.sum().backward()
    assert x.grad is not None and all(p.grad is not None for p in cell.parameters())
    assert sum(1 for _ in cell.parameters()) == (4 if bias else 2)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_cell_nonlinearity(nonlinearity):
    cell = nn.RNNCell(10, 20, nonlinearity=nonlinearity, dtype=np.float64, rng=0)
    x, h = rng(1).standard_normal((3, 10)), rng(2).standard_normal((3, 20))
    pre = x @ cell.weight_ih.data.T + cell.bias_ih.data + h @ cell.weight_hh.data.T + cell.bias_hh.data
    expected = np.tanh(pre) if nonlinearity == "tanh" else np.maximum(pre, 0)
    np.testing.assert_allclose(cell(x, h).data, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", list(CELLS))
def test_rnn_cell_no_broadcasting(name):
    """A state of batch 1 does not broadcast against an input of batch 3, nor the other way round."""
    cell = CELLS[name](10, 20, dtype=np.float64)

    def state(batch):
        h = tg.Tensor(np.zeros((batch, 20)))
        return (h, h) if name == "LSTMCell" else h

    for x_batch, h_batch in [(3, 1), (1, 3)]:
        with pytest.raises(RuntimeError):
            cell(np.zeros((x_batch, 10)), state(h_batch))


@pytest.mark.parametrize("name", list(CELLS))
def test_rnn_cell_forward_input_and_hidden_size(name):
    cell = CELLS[name](10, 20, dtype=np.float64)
    good, bad = tg.Tensor(np.zeros((3, 20))), tg.Tensor(np.zeros((3, 21)))
    with pytest.raises(RuntimeError):
        cell(np.zeros((3, 11)))
    states = [(bad, good), (good, bad)] if name == "LSTMCell" else [bad]
    for s in states:
        with pytest.raises(RuntimeError):
            cell(np.zeros((3, 10)), s)


@pytest.mark.parametrize("name", list(CELLS))
def test_rnn_cell_forward_zero_hidden_size(name):
    cell = CELLS[name](10, 0, dtype=np.float64)
    out = cell(np.zeros((3, 10)))
    for h in parts(out):
        assert h.shape == (3, 0)


# --- test_nn.py: dropout, retained graphs, variable-length batches --------------------------------------


@pytest.mark.parametrize("p", [0.0, 0.276, 0.5, 1.0])
def test_rnn_dropout(p):
    """All weights 1, a relu RNN of 2 layers: layer 1's units are 10 each, dropped to 0 or 10/(1−p);
    every unit of layer 2 sums the same kept units, so all equal 10·kept/(1−p)."""
    model = nn.RNN(10, 1000, 2, nonlinearity="relu", bias=False, dropout=p, dtype=np.float64, rng=0)
    for weight in model.parameters():
        weight.data[...] = 1.0
    output, h_n = model(np.ones((1, 1, 10)), tg.Tensor(np.zeros((2, 1, 1000))))
    values = output.data
    assert values.min() == values.max()
    kept_times_ten = values[0, 0, 0] * (1 - p)
    assert abs(kept_times_ten - 10 * round(kept_times_ten / 10)) < 1e-6
    if p == 0:
        assert values[0, 0, 0] == 10000
    if p == 1:
        assert values[0, 0, 0] == 0
    assert h_n.data[0].min() == h_n.data[0].max() == 10
    assert h_n.data[1, 0, 0] == values[0, 0, 0]


@pytest.mark.parametrize("p", [0.0, 0.5])
def test_rnn_dropout_state(p):
    """Between layers only: in eval mode two runs agree; in training they differ when p > 0."""
    model = nn.RNN(100, 100, 2, nonlinearity="relu", dropout=p, dtype=np.float64, rng=0)
    x = rng(1).standard_normal((1, 1, 100))
    model.eval()
    first, second = model(x)[0].data, model(x)[0].data
    np.testing.assert_array_equal(first, second)
    model.train()
    first, second = model(x)[0].data, model(x)[0].data
    assert np.array_equal(first, second) == (p == 0)


def test_rnn_change_dropout():
    model = nn.RNN(10, 30, 2, nonlinearity="relu", dropout=0.5, dtype=np.float64, rng=0)
    x = rng(1).standard_normal((2, 3, 10))
    model.dropout = 0.0
    np.testing.assert_array_equal(model(x)[0].data, model(x)[0].data)
    model.dropout = 1.0  # the second layer sees only zeros: relu(0 + biases) for every input
    outputs = model(x)[0].data
    np.testing.assert_array_equal(outputs, model(np.zeros_like(x))[0].data)


@pytest.mark.parametrize("mode", list(LAYERS))
def test_rnn_retain_variables(mode):
    model = LAYERS[mode](10, 20, 2, dtype=np.float64, rng=0)
    x = tg.Tensor(rng(1).standard_normal((5, 6, 10)), requires_grad=True)
    output = model(x)[0]
    output.sum().backward(retain_graph=True)
    first = [p.grad.data.copy() for p in model.parameters()] + [x.grad.data.copy()]
    model.zero_grad()
    x.grad = None
    output.sum().backward()
    for a, b in zip(first, [p.grad.data for p in model.parameters()] + [x.grad.data], strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("bidirectional", "enforce_sorted"), list(itertools.product([False, True], [True, False]))
)
def test_variable_sequence(bidirectional, enforce_sorted):
    """A packed batch gives each sequence what running it alone gives: outputs, h_n, c_n, gradients."""
    lengths = [10, 10, 6, 2, 2, 1, 1] if enforce_sorted else [2, 10, 1, 6, 10, 1, 2]
    x = rng(1).standard_normal((max(lengths), len(lengths), 3))
    model = nn.LSTM(3, 4, 2, bidirectional=bidirectional, dtype=np.float64, rng=0)
    packed = pack_padded_sequence(tg.Tensor(x), lengths, enforce_sorted=enforce_sorted)
    output, (h_n, c_n) = model(packed)
    padded, _ = pad_packed_sequence(output)
    padded.sum().backward()
    grads = {name: p.grad.data.copy() for name, p in model.named_parameters()}
    model.zero_grad()
    alone_grads = {name: np.zeros_like(g) for name, g in grads.items()}
    for i, n in enumerate(lengths):
        out_i, (h_i, c_i) = model(tg.Tensor(x[:n, i : i + 1]))
        np.testing.assert_allclose(padded.data[:n, i : i + 1], out_i.data, rtol=1e-12, atol=1e-14)
        np.testing.assert_array_equal(padded.data[n:, i], 0.0)
        np.testing.assert_allclose(h_n.data[:, i : i + 1], h_i.data, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(c_n.data[:, i : i + 1], c_i.data, rtol=1e-12, atol=1e-14)
        out_i.sum().backward()
        for name, p in model.named_parameters():
            alone_grads[name] += p.grad.data
        model.zero_grad()
    for name in grads:
        np.testing.assert_allclose(grads[name], alone_grads[name], rtol=1e-10, atol=1e-12, err_msg=name)


# --- test_packed_sequence.py ------------------------------------------------------------------------------

A, B, C = np.array([1, 2, 3]), np.array([4, 5]), np.array([6])


def random_sequences(trailing_dims: int, order: str) -> list[np.ndarray]:
    """Sequences of lengths i² for i = 1..5, each (ℓ, 5, 4, ..., 4), longest first or shuffled."""
    generator = rng(trailing_dims)
    sequences = [generator.random((i * i, 5, *[4] * trailing_dims)) for i in range(5, 0, -1)]
    if order == "shuffled":
        sequences = [sequences[k] for k in generator.permutation(len(sequences))]
    return sequences


def test_wrong_order():
    a, b = np.ones((25, 300)), np.ones((22, 300))
    with pytest.raises(RuntimeError):
        pack_padded_sequence(pad_sequence([b, a]), [22, 25], enforce_sorted=True)


def test_pad_sequence_with_tensor_sequences():
    from_tuple = pad_sequence((np.array([[7.0, 6.0]]), np.array([[-7.0, -1.0]])))
    from_tensor = pad_sequence(tg.Tensor(np.array([[[7.0, 6.0]], [[-7.0, -1.0]]])))
    np.testing.assert_array_equal(from_tuple.data, from_tensor.data)
    assert from_tuple.shape == (1, 2, 2)


def test_pad_sequence_with_non_iterable_sequences():
    with pytest.raises(TypeError, match="expected an iterable of sequences, got int"):  # torch: RuntimeError
        pad_sequence(5)


def test_pad_sequence():
    expected = np.array([[4, 5, 0], [1, 2, 3], [6, 0, 0]])
    np.testing.assert_array_equal(pad_sequence([B, A, C], True).data, expected)
    np.testing.assert_array_equal(pad_sequence([B, A, C]).data, expected.T)
    np.testing.assert_array_equal(
        pad_sequence([B, A, C], True, 1).data, np.array([[4, 5, 1], [1, 2, 3], [6, 1, 1]])
    )
    np.testing.assert_array_equal(
        pad_sequence([A, B, C], True).data, np.array([[1, 2, 3], [4, 5, 0], [6, 0, 0]])
    )
    for trailing in range(4):
        sequences = random_sequences(trailing, "shuffled")
        longest = max(len(s) for s in sequences)
        expected = np.stack(
            [np.concatenate([s, np.zeros((longest - len(s), *s.shape[1:]))]) for s in sequences]
        )
        np.testing.assert_array_equal(pad_sequence(sequences, True).data, expected)
        np.testing.assert_array_equal(pad_sequence(sequences).data, np.swapaxes(expected, 0, 1))


@pytest.mark.parametrize("batch_first", [True, False])
def test_unpad_sequence(batch_first):
    for sequences in [[A, B, C]] + [random_sequences(k, "shuffled") for k in range(4)]:
        lengths = np.array([len(s) for s in sequences])
        unpadded = unpad_sequence(pad_sequence(sequences, batch_first), lengths, batch_first)
        for mine, original in zip(unpadded, sequences, strict=True):
            np.testing.assert_array_equal(mine.data, original)


def test_pack_sequence():
    expected = np.array([1, 4, 6, 2, 5, 3])
    packed = pack_sequence([A, B, C], enforce_sorted=False)
    np.testing.assert_array_equal(packed.batch_sizes, [3, 2, 1])
    np.testing.assert_array_equal(packed.data.data, expected)
    np.testing.assert_array_equal(packed.sorted_indices, [0, 1, 2])
    np.testing.assert_array_equal(packed.unsorted_indices, [0, 1, 2])
    unsorted = pack_sequence([B, C, A], enforce_sorted=False)
    np.testing.assert_array_equal(unsorted.batch_sizes, [3, 2, 1])
    np.testing.assert_array_equal(unsorted.data.data, expected)
    np.testing.assert_array_equal(unsorted.sorted_indices, [2, 0, 1])
    np.testing.assert_array_equal(unsorted.unsorted_indices, [1, 2, 0])
    enforced = pack_sequence([A, B, C], enforce_sorted=True)
    np.testing.assert_array_equal(enforced.data.data, expected)
    assert enforced.sorted_indices is None and enforced.unsorted_indices is None
    with pytest.raises(RuntimeError, match="must be sorted in decreasing order"):
        pack_sequence([B, C, A], enforce_sorted=True)
    with pytest.raises(RuntimeError, match="You can pass `enforce_sorted=False`"):
        pack_sequence([B, C, A], enforce_sorted=True)


@pytest.mark.parametrize(
    ("trailing", "order", "batch_first", "enforce_sorted"),
    [
        (k, order, bf, es)
        for k, order, bf, es in itertools.product(
            range(4), ["sorted", "shuffled"], [True, False], [True, False]
        )
        if not (order == "shuffled" and es)
    ],
)
def test_pack_sequence_agrees_with_pad_and_pack_padded(trailing, order, batch_first, enforce_sorted):
    sequences = random_sequences(trailing, order)
    lengths = [len(s) for s in sequences]
    padded = pad_sequence(sequences, batch_first)
    packed = pack_sequence(sequences, enforce_sorted)
    np.testing.assert_array_equal(pad_packed_sequence(packed, batch_first)[0].data, padded.data)
    assert_packed_equal(packed, pack_padded_sequence(padded, lengths, batch_first, enforce_sorted))


def test_unpack_sequence():
    for sequences in [[A, B, C]] + [random_sequences(k, "shuffled") for k in range(4)]:
        unpacked = unpack_sequence(pack_sequence(sequences, enforce_sorted=False))
        for mine, original in zip(unpacked, sequences, strict=True):
            np.testing.assert_array_equal(mine.data, original)


def test_total_length():
    sequences = random_sequences(0, "sorted")
    lengths = [len(s) for s in sequences]
    longest = max(lengths)
    packed = pack_padded_sequence(pad_sequence(sequences), lengths)
    for total_length, batch_first in itertools.product((-1, 0, longest - 1), (True, False)):
        with pytest.raises(
            ValueError, match="Expected total_length to be at least the length of the longest"
        ):
            pad_packed_sequence(packed, batch_first=batch_first, total_length=total_length)
    for batch_first in (True, False):
        plain, _ = pad_packed_sequence(packed, batch_first=batch_first)
        for extra in (0, 1, 8):
            unpacked, lengths_out = pad_packed_sequence(packed, batch_first, total_length=longest + extra)
            np.testing.assert_array_equal(lengths_out, lengths)
            assert unpacked.shape[1 if batch_first else 0] == longest + extra
            widths = [(0, 0)] * plain.ndim
            widths[1 if batch_first else 0] = (0, extra)
            np.testing.assert_array_equal(unpacked.data, np.pad(plain.data, widths))


def test_type_casts():
    for enforce_sorted in (True, False):
        sequences = [s.astype(np.float32) for s in random_sequences(0, "sorted")]
        packed = pack_padded_sequence(
            pad_sequence(sequences), [len(s) for s in sequences], enforce_sorted=enforce_sorted
        )
        assert pad_packed_sequence(packed.double())[0].dtype == np.float64
        assert pad_packed_sequence(packed.double().float())[0].dtype == np.float32


@pytest.mark.parametrize(
    ("sorted_lengths", "shuffle", "batch_first"),
    [
        (lengths, shuffle, batch_first)
        for (lengths, shuffle), batch_first in itertools.product(
            [
                ([10, 8, 4, 2, 2, 2, 1], False),
                ([11, 10, 8, 6, 4, 3, 1], False),
                ([11, 10, 8, 6, 4, 3, 1], True),
            ],
            [True, False],
        )
    ],
)
def test_pack_padded_sequence(sorted_lengths, shuffle, batch_first):
    """Sequence i (from 1) holds rows 100·i + 5·t + (1..5); packing lists them step by step."""
    longest = sorted_lengths[0]
    columns = [
        np.concatenate([i * 100 + np.arange(1.0, 5 * n + 1).reshape(n, 5), np.zeros((longest - n, 5))])[
            :, None
        ]
        for i, n in enumerate(sorted_lengths, 1)
    ]
    padded = np.concatenate(columns, axis=1)  # (T, N, 5)
    batch_sizes = [sum(n > t for n in sorted_lengths) for t in range(longest)]
    expected = np.stack(
        [np.arange(1.0, 6) + (i + 1) * 100 + 5 * t for t, size in enumerate(batch_sizes) for i in range(size)]
    )
    lengths, unsorted = sorted_lengths, None
    if shuffle:
        sorted_indices = rng(7).permutation(len(sorted_lengths))
        unsorted = np.argsort(sorted_indices)
        padded = padded[:, unsorted]
        lengths = list(np.array(sorted_lengths)[unsorted])
    source = tg.Tensor(np.swapaxes(padded, 0, 1) if batch_first else padded, requires_grad=True)
    packed = pack_padded_sequence(source, lengths, batch_first=batch_first, enforce_sorted=not shuffle)
    np.testing.assert_array_equal(packed.data.data, expected)
    np.testing.assert_array_equal(packed.batch_sizes, batch_sizes)
    if shuffle:
        np.testing.assert_array_equal(packed.unsorted_indices, unsorted)
    else:
        assert packed.unsorted_indices is None
    unpacked, unpacked_lengths = pad_packed_sequence(packed, batch_first=batch_first)
    np.testing.assert_array_equal(unpacked.data, source.data)
    np.testing.assert_array_equal(unpacked_lengths, lengths)
    grad_output = rng(8).standard_normal(unpacked.shape)
    unpacked.backward(grad_output)
    grad = np.swapaxes(source.grad.data, 0, 1) if batch_first else source.grad.data
    grad_output = np.swapaxes(grad_output, 0, 1) if batch_first else grad_output
    for i, n in enumerate(lengths):
        np.testing.assert_array_equal(grad[:n, i], grad_output[:n, i])
        np.testing.assert_array_equal(grad[n:, i], 0.0)


def test_pack_padded_sequence_errors():
    with pytest.raises(RuntimeError, match="You can pass `enforce_sorted=False`"):
        pack_padded_sequence(rng().standard_normal((3, 3)), [1, 3, 2])
    with pytest.raises(RuntimeError, match="empty tensor"):
        pack_padded_sequence(np.zeros((0, 0)), [])
    with pytest.raises(RuntimeError, match="empty tensor"):
        pack_padded_sequence(np.zeros((0, 1, 10)), rng().standard_normal((11, 14, 14, 2)), True)


# --- torch's module tests: no-batch-dim samples -------------------------------------------------------------

LAYER_SAMPLES = [
    ("RNN", {}),
    ("RNN", {"nonlinearity": "relu", "bias": False}),
    ("RNN", {"num_layers": 2, "bidirectional": True, "batch_first": True}),
    ("GRU", {"num_layers": 2}),
    ("GRU", {"bidirectional": True, "batch_first": True}),
    ("LSTM", {"bidirectional": True}),
    ("LSTM", {"num_layers": 2, "batch_first": True, "proj_size": 2}),
    ("LSTM", {"num_layers": 2, "bidirectional": True, "proj_size": 3}),
]


@pytest.mark.parametrize(("mode", "options"), LAYER_SAMPLES, ids=[f"{m}-{o}" for m, o in LAYER_SAMPLES])
@pytest.mark.parametrize("with_hx", [False, True])
def test_no_batch_dim_layers(mode, options, with_hx):
    """An unbatched (T, D) input with hx (L·dirs, H) gives the batch-of-one result without its batch axis."""
    model = LAYERS[mode](3, 4, dtype=np.float64, rng=0, **options)
    rows = options.get("num_layers", 1) * (2 if options.get("bidirectional") else 1)
    generator = rng(1)
    x = generator.standard_normal((5, 3))
    h_width = options.get("proj_size") or 4
    hx = [generator.standard_normal((rows, h_width))] + (
        [generator.standard_normal((rows, 4))] if mode == "LSTM" else []
    )
    batch_axis = 0 if options.get("batch_first") else 1

    def run(x, parts):
        state = None if not with_hx else (tuple(parts) if mode == "LSTM" else parts[0])
        return model(x, state)

    leaves = [tg.Tensor(x, requires_grad=True)] + [tg.Tensor(h, requires_grad=True) for h in hx]
    output, hidden = run(leaves[0], leaves[1:])
    batched = [tg.Tensor(np.expand_dims(x, batch_axis), requires_grad=True)] + [
        tg.Tensor(h[:, None], requires_grad=True) for h in hx
    ]
    output_b, hidden_b = run(batched[0], batched[1:])
    np.testing.assert_allclose(output.data, np.squeeze(output_b.data, batch_axis), rtol=1e-13, atol=1e-15)
    for h, h_b in zip(parts(hidden), parts(hidden_b), strict=True):
        np.testing.assert_allclose(h.data, h_b.data[:, 0], rtol=1e-13, atol=1e-15)
    G = rng(2).standard_normal(output.shape)
    (output * tg.Tensor(G)).sum().backward()
    unbatched_grads = [p.grad.data.copy() for p in model.parameters()]
    model.zero_grad()
    (output_b * tg.Tensor(np.expand_dims(G, batch_axis))).sum().backward()
    for g, p in zip(unbatched_grads, model.parameters(), strict=True):
        np.testing.assert_allclose(g, p.grad.data, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(
        leaves[0].grad.data, np.squeeze(batched[0].grad.data, batch_axis), rtol=1e-12, atol=1e-14
    )
    if with_hx:
        for leaf, leaf_b in zip(leaves[1:], batched[1:], strict=True):
            np.testing.assert_allclose(leaf.grad.data, leaf_b.grad.data[:, 0], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", list(CELLS))
@pytest.mark.parametrize("with_hx", [False, True])
def test_no_batch_dim_cells(name, with_hx):
    """A (D,) input and (H,) state give the batch-of-one result without its batch axis."""
    cell = CELLS[name](3, 4, dtype=np.float64, rng=0)
    generator = rng(1)
    x = generator.standard_normal(3)
    parts = [generator.standard_normal(4) for _ in range(2 if name == "LSTMCell" else 1)]

    def state(arrays):
        if not with_hx:
            return None
        tensors = [tg.Tensor(a) for a in arrays]
        return tuple(tensors) if name == "LSTMCell" else tensors[0]

    out = cell(x, state(parts))
    out_b = cell(x[None], state([p[None] for p in parts]))
    for h, h_b in zip(
        out if name == "LSTMCell" else [out], out_b if name == "LSTMCell" else [out_b], strict=True
    ):
        assert h.shape == (4,)
        np.testing.assert_allclose(h.data, h_b.data[0], rtol=1e-13, atol=1e-15)
