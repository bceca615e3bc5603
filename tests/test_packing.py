"""Packed sequences (nn.utils.rnn): layout and order as torch's, gradients through packing, errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_rnn as tg
from tinygrad_rnn import nn
from tinygrad_rnn.errors import ShapeError
from tinygrad_rnn.nn.recurrent import LAYERS
from tinygrad_rnn.nn.utils.rnn import (
    PackedSequence,
    pack_padded_sequence,
    pack_sequence,
    pad_packed_sequence,
    pad_sequence,
    unpack_sequence,
    unpad_sequence,
)

# (lengths, trailing feature shape): sorted, unsorted, ties, one sequence, all full, no feature axis
CASES = [
    ([4, 3, 1], (2,)),
    ([2, 4, 3], (2,)),
    ([2, 3, 2, 3, 2], (3,)),
    ([5], (2,)),
    ([3, 3], (2, 2)),
    ([1, 3, 2], ()),
]
CASE_IDS = ["sorted", "unsorted", "ties", "one", "full-2d-features", "no-features"]


def padded_input(lengths, features, batch_first, seed=0):
    steps, batch = max(lengths) + 1, len(lengths)  # one step longer than needed: trailing padding
    shape = (batch, steps, *features) if batch_first else (steps, batch, *features)
    return np.random.default_rng(seed).standard_normal(shape)


def is_sorted(lengths):
    return all(a >= b for a, b in zip(lengths, lengths[1:], strict=False))


def torch_or_skip():
    return pytest.importorskip("torch")


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("enforce_sorted", [True, False])
@pytest.mark.parametrize(("lengths", "features"), CASES, ids=CASE_IDS)
def test_pack_and_unpack_equal_torch_values_order_and_gradients(
    lengths, features, batch_first, enforce_sorted
):
    torch = torch_or_skip()
    rnn_utils = torch.nn.utils.rnn
    if enforce_sorted and not is_sorted(lengths):
        with pytest.raises(RuntimeError, match="sorted in decreasing order"):
            pack_padded_sequence(padded_input(lengths, features, batch_first), lengths, batch_first)
        return
    x = padded_input(lengths, features, batch_first)
    ours_x = tg.Tensor(x, requires_grad=True)
    their_x = torch.tensor(x, requires_grad=True)
    ours = pack_padded_sequence(ours_x, lengths, batch_first=batch_first, enforce_sorted=enforce_sorted)
    theirs = rnn_utils.pack_padded_sequence(
        their_x, torch.tensor(lengths), batch_first=batch_first, enforce_sorted=enforce_sorted
    )
    np.testing.assert_array_equal(ours.data.data, theirs.data.detach().numpy())
    np.testing.assert_array_equal(ours.batch_sizes, theirs.batch_sizes.numpy())
    for mine, their in [
        (ours.sorted_indices, theirs.sorted_indices),
        (ours.unsorted_indices, theirs.unsorted_indices),
    ]:
        assert (mine is None) == (their is None)
        if mine is not None:
            np.testing.assert_array_equal(mine, their.numpy())
    total = max(lengths) + 2
    padded, out_lengths = pad_packed_sequence(ours, batch_first, padding_value=-0.5, total_length=total)
    their_padded, their_lengths = rnn_utils.pad_packed_sequence(
        theirs, batch_first, padding_value=-0.5, total_length=total
    )
    np.testing.assert_array_equal(padded.data, their_padded.detach().numpy())
    np.testing.assert_array_equal(out_lengths, their_lengths.numpy())
    assert out_lengths.dtype == np.int64
    G = np.random.default_rng(1).standard_normal(padded.shape)
    (padded * tg.Tensor(G)).sum().backward()
    (their_padded * torch.from_numpy(G)).sum().backward()
    np.testing.assert_allclose(ours_x.grad.data, their_x.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("batch_first", [False, True])
def test_gradients_through_packing_and_unpacking_match_finite_differences(batch_first):
    lengths = [2, 4, 3]
    x = tg.Tensor(padded_input(lengths, (2,), batch_first), requires_grad=True)

    def packed_data(x):
        return pack_padded_sequence(x, lengths, batch_first, enforce_sorted=False).data.tanh()

    def round_trip(x):
        packed = pack_padded_sequence(x, lengths, batch_first, enforce_sorted=False)
        return pad_packed_sequence(packed._replace(data=packed.data * packed.data), batch_first, 1.5)[0]

    assert tg.gradcheck(packed_data, [x])
    assert tg.gradcheck(round_trip, [x])


@settings(max_examples=40, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 5), min_size=1, max_size=5),
    extra=st.integers(0, 2),
    batch_first=st.booleans(),
    features=st.sampled_from([(), (1,), (3,), (2, 2)]),
)
def test_generated_batches_round_trip_and_equal_torch(lengths, extra, batch_first, features):
    torch = torch_or_skip()
    steps = max(lengths) + extra
    shape = (len(lengths), steps, *features) if batch_first else (steps, len(lengths), *features)
    x = np.random.default_rng(len(lengths) + steps).standard_normal(shape)
    packed = pack_padded_sequence(x, lengths, batch_first, enforce_sorted=False)
    theirs = torch.nn.utils.rnn.pack_padded_sequence(
        torch.from_numpy(x), lengths, batch_first, enforce_sorted=False
    )
    np.testing.assert_array_equal(packed.data.data, theirs.data.numpy())
    np.testing.assert_array_equal(packed.sorted_indices, theirs.sorted_indices.numpy())
    padded, out_lengths = pad_packed_sequence(packed, batch_first, total_length=steps)
    np.testing.assert_array_equal(out_lengths, lengths)
    valid = np.arange(steps)[:, None] < np.array(lengths)[None, :]  # (T, N)
    mask = valid.T if batch_first else valid
    mask = mask.reshape(mask.shape + (1,) * len(features))
    np.testing.assert_array_equal(padded.data, np.where(mask, x, 0.0))
    for b, sequence in enumerate(unpack_sequence(packed)):
        np.testing.assert_array_equal(
            sequence.data, x[b, : lengths[b]] if batch_first else x[: lengths[b], b]
        )


@pytest.mark.parametrize("padding_side", ["right", "left"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_pad_sequence_equals_torch_with_gradients(batch_first, padding_side):
    torch = torch_or_skip()
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((n, 2, 3)) for n in (2, 4, 1)]
    ours = [tg.Tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = pad_sequence(ours, batch_first, padding_value=7.0, padding_side=padding_side)
    their_out = torch.nn.utils.rnn.pad_sequence(theirs, batch_first, 7.0, padding_side)
    np.testing.assert_array_equal(out.data, their_out.detach().numpy())
    G = rng.standard_normal(out.shape)
    (out * tg.Tensor(G)).sum().backward()
    (their_out * torch.from_numpy(G)).sum().backward()
    for mine, their in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(mine.grad.data, their.grad.numpy())


@pytest.mark.parametrize("enforce_sorted", [True, False])
def test_pack_sequence_equals_torch_and_unpacks_to_the_sequences(enforce_sorted):
    torch = torch_or_skip()
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((n, 3)) for n in ((4, 2, 2, 1) if enforce_sorted else (2, 4, 1, 2))]
    ours = pack_sequence(arrays, enforce_sorted=enforce_sorted)
    theirs = torch.nn.utils.rnn.pack_sequence([torch.from_numpy(a) for a in arrays], enforce_sorted)
    np.testing.assert_array_equal(ours.data.data, theirs.data.numpy())
    np.testing.assert_array_equal(ours.batch_sizes, theirs.batch_sizes.numpy())
    for mine, array in zip(unpack_sequence(ours), arrays, strict=True):
        np.testing.assert_array_equal(mine.data, array)
    padded = pad_sequence(arrays, batch_first=True)
    for mine, array in zip(
        unpad_sequence(padded, [len(a) for a in arrays], batch_first=True), arrays, strict=True
    ):
        np.testing.assert_array_equal(mine.data, array)


def test_packed_sequence_is_a_named_tuple_with_read_only_indices():
    packed = pack_sequence([np.ones((1, 2)), np.ones((3, 2))], enforce_sorted=False)
    data, batch_sizes, sorted_indices, unsorted_indices = packed
    assert data is packed.data and data.shape == (4, 2)
    np.testing.assert_array_equal(batch_sizes, [2, 1, 1])
    np.testing.assert_array_equal(sorted_indices, [1, 0])
    np.testing.assert_array_equal(unsorted_indices, [1, 0])
    np.testing.assert_array_equal(packed.lengths, [1, 3])
    with pytest.raises(ValueError, match="read-only"):
        packed.batch_sizes[0] = 5
    assert packed.float().data.dtype == np.float32 and packed.double().data.dtype == np.float64
    rebuilt = PackedSequence(packed.data, [2, 1, 1], [1, 0])  # unsorted_indices from sorted_indices
    np.testing.assert_array_equal(rebuilt.unsorted_indices, [1, 0])


def test_lengths_given_as_tensor_array_or_whole_floats():
    x = padded_input([3, 2], (1,), False)
    expected = pack_padded_sequence(x, [3, 2]).data.data
    for lengths in (np.array([3, 2]), np.array([3.0, 2.0]), tg.Tensor(np.array([3.0, 2.0])), (3, 2)):
        np.testing.assert_array_equal(pack_padded_sequence(x, lengths).data.data, expected)


def test_errors_are_torch_s_kinds_and_name_the_problem():
    x = padded_input([3, 2], (2,), False)  # T = 4, N = 2
    cases = [
        (
            lambda: pack_padded_sequence(x, [2, 3]),
            RuntimeError,
            r"sorted in decreasing order .* got \[2, 3\]",
        ),
        (lambda: pack_padded_sequence(x, [3, 0]), RuntimeError, r"at least 1, got lengths \[3, 0\]"),
        (lambda: pack_padded_sequence(x, [3, -1], enforce_sorted=False), RuntimeError, "at least 1"),
        (lambda: pack_padded_sequence(x, [3, 2, 1]), RuntimeError, r"expected 2 lengths .* got 3"),
        (lambda: pack_padded_sequence(x, [5, 2]), RuntimeError, r"exceed the padded length T = 4"),
        (lambda: pack_padded_sequence(x, [[3, 2]]), RuntimeError, r"1-D .* got shape \(1, 2\)"),
        (lambda: pack_padded_sequence(np.zeros((3, 0, 2)), []), RuntimeError, "empty tensor"),
        (lambda: pack_padded_sequence(np.zeros(3), [3]), RuntimeError, r"\(T, N, \*\), got \(3,\)"),
        (lambda: pack_padded_sequence(x, [2.5, 2]), TypeError, r"lengths must be integers, got \[2.5, 2.0\]"),
        (lambda: pack_padded_sequence([[1.0]], [1]), TypeError, "expected a Tensor or ndarray, got list"),
        (lambda: pack_sequence([np.ones((2, 3)), np.ones((0, 3))]), RuntimeError, "at least 1"),
        (lambda: pad_sequence([]), RuntimeError, "non-empty list"),
        (
            lambda: pad_sequence([np.ones((2, 3)), np.ones((2, 4))]),
            RuntimeError,
            r"sequence 1 has shape \(2, 4\)",
        ),
        (lambda: pad_sequence([np.ones(2)], padding_side="up"), ValueError, "'left' or 'right', got 'up'"),
        (lambda: pad_packed_sequence(x), TypeError, "expected a PackedSequence, got ndarray"),
        (
            lambda: PackedSequence(tg.Tensor(np.ones((4, 2))), [2, 1]),
            RuntimeError,
            "sum to 3, but data has 4",
        ),
        (lambda: PackedSequence(tg.Tensor(np.ones((3, 2))), [1, 2]), ValueError, "non-increasing"),
        (lambda: PackedSequence(tg.Tensor(np.ones((3, 2))), [2, 1], [0, 0]), ValueError, "permutation"),
    ]
    for make, kind, message in cases:
        with pytest.raises(kind, match=message):
            make()
    packed = pack_padded_sequence(x, [3, 2])
    with pytest.raises(
        ValueError, match=r"at least the length of the longest sequence in input \(3\), got total_length=2"
    ):
        pad_packed_sequence(packed, total_length=2)
    assert issubclass(ShapeError, RuntimeError) and issubclass(ShapeError, ValueError)


# --- recurrent layers take and give PackedSequences ----------------------------------------------------

D, H = 3, 4
LAYER_GRID = [
    (kind, layers, bidirectional, batch_first, enforce_sorted)
    for kind in ("rnn", "lstm", "gru")
    for layers in (1, 2)
    for bidirectional in (False, True)
    for batch_first in (False, True)
    for enforce_sorted in (True, False)
]


def layer_pair(kind, layers, bidirectional, batch_first, torch):
    ours = LAYERS[kind](
        D, H, layers, batch_first=batch_first, bidirectional=bidirectional, dtype=np.float64, rng=0
    )
    theirs = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind](
        D, H, layers, batch_first=batch_first, bidirectional=bidirectional, dtype=torch.float64
    )
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    return ours, theirs


def finals_of(h_n):
    return list(h_n) if isinstance(h_n, tuple) else [h_n]


@pytest.mark.parametrize(("kind", "layers", "bidirectional", "batch_first", "enforce_sorted"), LAYER_GRID)
def test_layers_on_packed_sequences_equal_torch(kind, layers, bidirectional, batch_first, enforce_sorted):
    torch = torch_or_skip()
    ours, theirs = layer_pair(kind, layers, bidirectional, batch_first, torch)
    lengths = [5, 3, 3, 1] if enforce_sorted else [3, 5, 1, 3]
    x = padded_input(lengths, (D,), batch_first, seed=3)
    rng = np.random.default_rng(4)
    rows = layers * (2 if bidirectional else 1)
    hx = [rng.standard_normal((rows, len(lengths), H)) for _ in range(2 if kind == "lstm" else 1)]

    ours_x, ours_hx = tg.Tensor(x, requires_grad=True), [tg.Tensor(h, requires_grad=True) for h in hx]
    their_x, their_hx = torch.tensor(x, requires_grad=True), [torch.tensor(h, requires_grad=True) for h in hx]
    packed = pack_padded_sequence(ours_x, lengths, batch_first, enforce_sorted)
    their_packed = torch.nn.utils.rnn.pack_padded_sequence(their_x, lengths, batch_first, enforce_sorted)
    output, h_n = ours(packed, tuple(ours_hx) if kind == "lstm" else ours_hx[0])
    their_output, their_h_n = theirs(their_packed, tuple(their_hx) if kind == "lstm" else their_hx[0])

    assert isinstance(output, PackedSequence)
    np.testing.assert_array_equal(output.batch_sizes, their_output.batch_sizes.numpy())
    assert (output.sorted_indices is None) == enforce_sorted
    if not enforce_sorted:
        np.testing.assert_array_equal(output.sorted_indices, their_output.sorted_indices.numpy())
        np.testing.assert_array_equal(output.unsorted_indices, their_output.unsorted_indices.numpy())
    close = {"rtol": 1e-10, "atol": 1e-12}
    np.testing.assert_allclose(output.data.data, their_output.data.detach().numpy(), **close)
    for mine, their in zip(finals_of(h_n), finals_of(their_h_n), strict=True):
        np.testing.assert_allclose(mine.data, their.detach().numpy(), **close)

    G = rng.standard_normal(output.data.shape)
    Gs = [rng.standard_normal(h.shape) for h in finals_of(h_n)]
    loss = (output.data * tg.Tensor(G)).sum()
    their_loss = (their_output.data * torch.from_numpy(G)).sum()
    for mine, their, g in zip(finals_of(h_n), finals_of(their_h_n), Gs, strict=True):
        loss = loss + (mine * tg.Tensor(g)).sum()
        their_loss = their_loss + (their * torch.from_numpy(g)).sum()
    loss.backward()
    their_loss.backward()
    np.testing.assert_allclose(ours_x.grad.data, their_x.grad.numpy(), **close)
    for mine, their in zip(ours_hx, their_hx, strict=True):
        np.testing.assert_allclose(mine.grad.data, their.grad.numpy(), **close)
    their_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.data, their_params[name].grad.numpy(), **close, err_msg=name)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_recurrent_of_a_cell_on_a_packed_sequence_equals_its_padded_run(bidirectional):
    layer = nn.Recurrent(nn.GRUCell, D, H, num_layers=2, bidirectional=bidirectional, dtype=np.float64, rng=0)
    lengths = [2, 4, 1]
    x = tg.Tensor(padded_input(lengths, (D,), False, seed=5), requires_grad=True)
    packed_out, packed_h = layer(pack_padded_sequence(x, lengths, enforce_sorted=False))
    padded, out_lengths = pad_packed_sequence(packed_out, total_length=x.shape[0])
    reference, reference_h = layer(x, lengths=lengths)
    np.testing.assert_array_equal(out_lengths, lengths)
    np.testing.assert_allclose(padded.data, reference.data, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(packed_h.data, reference_h.data, rtol=1e-14, atol=1e-15)

    def fn(x):
        output, h_n = layer(pack_padded_sequence(x, lengths, enforce_sorted=False))
        return tg.cat([output.data.reshape(-1), h_n.reshape(-1)])

    assert tg.gradcheck(fn, [x], atol=1e-7, rtol=1e-6)


def test_layers_refuse_lengths_with_a_packed_sequence_and_a_wrong_hx():
    lstm = nn.LSTM(D, H, dtype=np.float64)
    packed = pack_sequence([np.ones((3, D)), np.ones((2, D))])
    with pytest.raises(TypeError, match="PackedSequence carries its lengths"):
        lstm(packed, lengths=[3, 2])
    with pytest.raises(RuntimeError, match=r"expected h_0 of shape \(1, 2, 4\), got \(1, 3, 4\)"):
        lstm(packed, (tg.zeros(1, 3, H, dtype=np.float64), tg.zeros(1, 3, H, dtype=np.float64)))
    with pytest.raises(RuntimeError, match="width 3"):
        lstm(pack_sequence([np.ones((3, D + 1))]))


@settings(max_examples=25, deadline=None)
@given(
    kind=st.sampled_from(["rnn", "lstm", "gru"]),
    lengths=st.lists(st.integers(1, 4), min_size=1, max_size=4),
    layers=st.integers(1, 2),
    bidirectional=st.booleans(),
    batch_first=st.booleans(),
    with_hx=st.booleans(),
)
def test_generated_packed_batches_through_layers_equal_torch(
    kind, lengths, layers, bidirectional, batch_first, with_hx
):
    torch = torch_or_skip()
    ours, theirs = layer_pair(kind, layers, bidirectional, batch_first, torch)
    x = padded_input(lengths, (D,), batch_first, seed=len(lengths))
    rows = layers * (2 if bidirectional else 1)
    hx = [
        np.random.default_rng(9).standard_normal((rows, len(lengths), H))
        for _ in range(2 if kind == "lstm" else 1)
    ]

    def state(parts):
        return None if not with_hx else (tuple(parts) if kind == "lstm" else parts[0])

    ours_x, their_x = tg.Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    output, h_n = ours(
        pack_padded_sequence(ours_x, lengths, batch_first, False), state([tg.Tensor(h) for h in hx])
    )
    their_output, their_h_n = theirs(
        torch.nn.utils.rnn.pack_padded_sequence(their_x, lengths, batch_first, False),
        state([torch.from_numpy(h) for h in hx]),
    )
    close = {"rtol": 1e-10, "atol": 1e-12}
    np.testing.assert_allclose(output.data.data, their_output.data.detach().numpy(), **close)
    for mine, their in zip(finals_of(h_n), finals_of(their_h_n), strict=True):
        np.testing.assert_allclose(mine.data, their.detach().numpy(), **close)
    G = np.random.default_rng(10).standard_normal(output.data.shape)
    (output.data * tg.Tensor(G)).sum().backward()
    (their_output.data * torch.from_numpy(G)).sum().backward()
    np.testing.assert_allclose(ours_x.grad.data, their_x.grad.numpy(), **close)
