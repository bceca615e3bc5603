"""manual vs PyTorch: outputs, final states and every gradient of nn.RNN / nn.LSTM / nn.GRU stacks.

float64 throughout; weights go from torch to manual through `from_module` under the same names.
GRU with reset_after=False has no PyTorch counterpart and is checked by finite differences only.
"""

import numpy as np
import pytest

from tinygrad_rnn import manual

torch = pytest.importorskip("torch")

RTOL, ATOL = 1e-10, 1e-12
T, N, D, H = 5, 3, 3, 4
LENGTHS = [5, 2, 4]


def torch_module(kind: str, num_layers: int, bidirectional: bool, batch_first: bool, bias: bool = True):
    """A float64 torch recurrent module with random weights from a local generator."""
    options = dict(num_layers=num_layers, bias=bias, batch_first=batch_first, bidirectional=bidirectional)
    if kind.startswith("rnn"):
        module = torch.nn.RNN(D, H, nonlinearity=kind.split("_")[1], **options)
    else:
        module = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind](D, H, **options)
    module = module.double()
    rng = np.random.default_rng(1)
    with torch.no_grad():
        for _, p in module.named_parameters():
            p.copy_(torch.from_numpy(rng.standard_normal(tuple(p.shape)) * 0.5))
    return module


def run_torch(module, x, hx, lengths):
    """(output, h_n) of the module, through a packed sequence when lengths are given."""
    if lengths is None:
        return module(x, hx)
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, module.batch_first, enforce_sorted=False)
    output, state = module(packed, hx)
    output, _ = torch.nn.utils.rnn.pad_packed_sequence(output, module.batch_first, total_length=T)
    return output, state


def compare_stack(kind, num_layers, bidirectional, batch_first, lengths, bias=True, unbatched=False):
    module = torch_module(kind, num_layers, bidirectional, batch_first, bias)
    params, config = manual.from_module(module)
    rng = np.random.default_rng(0)
    dirs = 2 if bidirectional else 1
    x = rng.standard_normal((T, D) if unbatched else (N, T, D) if batch_first else (T, N, D))
    state_shape = (num_layers * dirs, H) if unbatched else (num_layers * dirs, N, H)
    states = [rng.standard_normal(state_shape) for _ in range(2 if kind == "lstm" else 1)]
    hx = tuple(states) if kind == "lstm" else states[0]

    output, h_n, cache = manual.recurrent_forward(x=x, params=params, hx=hx, lengths=lengths, **config)
    manual_states = h_n if kind == "lstm" else (h_n,)
    doutput = rng.standard_normal(output.shape)
    dstates = [rng.standard_normal(s.shape) for s in manual_states]
    dx, dhx, grads = manual.recurrent_backward(
        doutput, tuple(dstates) if kind == "lstm" else dstates[0], cache
    )

    x_t = torch.tensor(x, requires_grad=True)
    states_t = [torch.tensor(s, requires_grad=True) for s in states]
    output_t, h_n_t = run_torch(module, x_t, tuple(states_t) if kind == "lstm" else states_t[0], lengths)
    torch_states = h_n_t if kind == "lstm" else (h_n_t,)
    loss = (output_t * torch.from_numpy(doutput)).sum()
    for s, g in zip(torch_states, dstates, strict=True):
        loss = loss + (s * torch.from_numpy(g)).sum()
    loss.backward()

    np.testing.assert_allclose(output, output_t.detach().numpy(), rtol=RTOL, atol=ATOL)
    for mine, theirs in zip(manual_states, torch_states, strict=True):
        np.testing.assert_allclose(mine, theirs.detach().numpy(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(dx, x_t.grad.numpy(), rtol=RTOL, atol=ATOL)
    for mine, theirs in zip(dhx if kind == "lstm" else (dhx,), states_t, strict=True):
        np.testing.assert_allclose(mine, theirs.grad.numpy(), rtol=RTOL, atol=ATOL)
    named = dict(module.named_parameters())
    assert set(grads) == set(named)
    for name, p in named.items():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), rtol=RTOL, atol=ATOL, err_msg=name)


@pytest.mark.parametrize("lengths", [None, LENGTHS], ids=["full", "lengths"])
@pytest.mark.parametrize("batch_first", [False, True], ids=["time_major", "batch_first"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("kind", ["rnn_tanh", "rnn_relu", "lstm", "gru"])
def test_stack_matches_torch(kind, num_layers, bidirectional, batch_first, lengths):
    compare_stack(kind, num_layers, bidirectional, batch_first, lengths)


@pytest.mark.parametrize("kind", ["rnn_tanh", "rnn_relu", "lstm", "gru"])
def test_stack_without_bias_matches_torch(kind):
    compare_stack(kind, 2, True, False, LENGTHS, bias=False)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("kind", ["rnn_tanh", "lstm", "gru"])
def test_unbatched_matches_torch(kind, bidirectional):
    compare_stack(kind, 2, bidirectional, True, None, unbatched=True)


@pytest.mark.parametrize("kind", ["rnn_tanh", "lstm", "gru"])
def test_language_model_matches_torch(kind):
    vocab, embed = 7, D

    class LanguageModel(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = torch.nn.Embedding(vocab, embed)
            self.rnn = torch_module(kind, 2, True, False)
            self.decoder = torch.nn.Linear(2 * H, vocab)

    model = LanguageModel().double()
    params, config = manual.from_module(model)
    assert set(params) == {name for name, _ in model.named_parameters()}
    rng = np.random.default_rng(0)
    tokens, targets = rng.integers(0, vocab, (T, N)), rng.integers(0, vocab, (T, N))
    loss, h_n, cache = manual.lm_forward(tokens, targets, params, lengths=LENGTHS, **config)
    grads = manual.lm_backward(cache)

    packed = torch.nn.utils.rnn.pack_padded_sequence(
        model.embedding(torch.from_numpy(tokens)), LENGTHS, enforce_sorted=False
    )
    output, h_n_t = model.rnn(packed)
    output, _ = torch.nn.utils.rnn.pad_packed_sequence(output, total_length=T)
    valid = torch.from_numpy(np.arange(T)[:, None] < np.array(LENGTHS)[None, :])
    logits = model.decoder(output)[valid]
    loss_t = torch.nn.functional.cross_entropy(logits, torch.from_numpy(targets)[valid], reduction="sum")
    loss_t.backward()

    np.testing.assert_allclose(loss, loss_t.item(), rtol=RTOL, atol=ATOL)
    for mine, theirs in zip(
        h_n if kind == "lstm" else (h_n,), h_n_t if kind == "lstm" else (h_n_t,), strict=True
    ):
        np.testing.assert_allclose(mine, theirs.detach().numpy(), rtol=RTOL, atol=ATOL)
    for name, p in model.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), rtol=RTOL, atol=ATOL, err_msg=name)


@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(max_norm):
    rng = np.random.default_rng(0)
    grads = {"a": rng.standard_normal((3, 4)), "b": rng.standard_normal(5)}
    clipped, total = manual.clip_grad_norm(grads, max_norm)
    tensors = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads.values()]
    for t, g in zip(tensors, grads.values(), strict=True):
        t.grad = torch.from_numpy(g.copy())
    total_t = torch.nn.utils.clip_grad_norm_(tensors, max_norm)
    np.testing.assert_allclose(total, total_t.item(), rtol=RTOL, atol=ATOL)
    for key, t in zip(grads, tensors, strict=True):
        np.testing.assert_allclose(clipped[key], t.grad.numpy(), rtol=RTOL, atol=ATOL)
