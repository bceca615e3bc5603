"""Module, Parameter, Linear, Embedding, Dropout, Sequential: traversal, state, dtype, gradients."""

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import nn


class Tagger(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(7, 3, padding_idx=0, dtype=np.float64, rng=0)
        self.encoder = nn.LSTM(3, 4, dtype=np.float64, rng=1)
        self.head = nn.Linear(4, 5, dtype=np.float64, rng=2)

    def forward(self, ids):
        output, _ = self.encoder(self.embedding(ids))
        return self.head(output)


def test_named_parameters_are_dotted_and_ordered():
    names = [name for name, _ in Tagger().named_parameters()]
    assert names == [
        "embedding.weight", "encoder.weight_ih_l0", "encoder.weight_hh_l0", "encoder.bias_ih_l0",
        "encoder.bias_hh_l0", "head.weight", "head.bias",
    ]  # fmt: skip
    model = Tagger()
    assert [type(m).__name__ for m in model.children()] == ["Embedding", "LSTM", "Linear"]
    assert len(list(model.modules())) == 4


def test_train_eval_and_zero_grad():
    model = Tagger()
    model.eval()
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    model(np.array([[1, 2], [3, 0]])).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_state_dict_round_trip_copies():
    model, other = Tagger(), Tagger()
    other.head.weight.data += 1.0
    state = model.state_dict()
    state["head.bias"][0] = 123.0  # a copy: the model is not touched
    assert model.head.bias.data[0] != 123.0
    other.load_state_dict(model.state_dict())
    for (name, a), (_, b) in zip(model.named_parameters(), other.named_parameters(), strict=True):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)


def test_bad_state_dict_lists_every_problem_and_changes_nothing():
    model = Tagger()
    before = model.state_dict()
    bad = model.state_dict()
    bad["head.weight"] = bad["head.weight"] + 1.0  # valid, but must not be applied
    del bad["encoder.bias_hh_l0"]
    bad["encoder.weight_hh_l0"] = np.zeros((3, 3))
    bad["head.bias"] = np.array(["a"] * 5)
    bad["decoder.weight"] = np.zeros(2)
    with pytest.raises(ValueError) as error:
        model.load_state_dict(bad)
    message = str(error.value)
    for expected in (
        "missing keys: ['encoder.bias_hh_l0']",
        "unexpected keys: ['decoder.weight']",
        "encoder.weight_hh_l0: expected shape (16, 4), got (3, 3)",
        "head.bias: expected numbers, got dtype <U1",
    ):
        assert expected in message
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)


def test_load_state_dict_keeps_parameter_dtype_and_accepts_tensors():
    model = nn.Linear(2, 3, rng=0)
    model.load_state_dict({"weight": tg.Tensor(np.ones((3, 2))), "bias": np.arange(3.0)})
    assert model.weight.dtype == np.float32 and model.bias.dtype == np.float32
    np.testing.assert_array_equal(model.bias.data, [0.0, 1.0, 2.0])
    model.load_state_dict({"bias": np.zeros(3)}, strict=False)
    np.testing.assert_array_equal(model.bias.data, [0.0, 0.0, 0.0])


def test_dtype_conversion():
    model = nn.GRU(2, 3, rng=0)
    assert model.dtype == np.float32
    model.double()
    assert all(p.dtype == np.float64 for p in model.parameters())
    model.to(np.float32)
    assert all(p.dtype == np.float32 for p in model.parameters())
    with pytest.raises(TypeError, match="expected a float dtype"):
        model.to(np.int64)


def test_repr_is_readable():
    text = repr(Tagger())
    assert "(encoder): LSTM(3, 4)" in text
    assert "(head): Linear(in_features=4, out_features=5, bias=True)" in text
    assert "(embedding): Embedding(7, 3, padding_idx=0)" in text


def test_linear_gradients_and_errors():
    layer = nn.Linear(3, 2, dtype=np.float64, rng=0)
    x = tg.Tensor(np.random.default_rng(0).standard_normal((4, 5, 3)), requires_grad=True)
    assert tg.gradcheck(lambda x, w, b: layer(x), [x, layer.weight, layer.bias])
    with pytest.raises(ValueError, match=r"Linear: expected input with last dimension 3.*got shape \(4, 2\)"):
        layer(tg.zeros(4, 2, dtype=np.float64))
    assert nn.Linear(3, 2, bias=False).bias is None


def test_embedding_accumulates_repeated_ids_and_skips_padding():
    emb = nn.Embedding(5, 2, padding_idx=0, dtype=np.float64, rng=0)
    assert np.all(emb.weight.data[0] == 0)
    ids = np.array([[1, 1, 0], [4, 1, 0]])
    g = np.random.default_rng(1).standard_normal((2, 3, 2))
    (emb(ids) * tg.Tensor(g)).sum().backward()
    expected = np.zeros((5, 2))
    np.add.at(expected, ids, g)
    expected[0] = 0.0
    np.testing.assert_allclose(emb.weight.grad.data, expected, rtol=1e-12, atol=0)


def test_dropout_train_and_eval():
    drop = nn.Dropout(0.5, rng=0)
    x = tg.ones(1000, dtype=np.float64)
    y = drop(x).data
    assert set(np.unique(y)) <= {0.0, 2.0} and 0.4 < (y == 0).mean() < 0.6
    drop.eval()
    np.testing.assert_array_equal(drop(x).data, x.data)
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\]"):
        nn.Dropout(1.5)


def test_sequential():
    model = nn.Sequential(nn.Linear(3, 4, rng=0), nn.Linear(4, 2, rng=1))
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert model(tg.zeros(5, 3)).shape == (5, 2) and len(model) == 2
    with pytest.raises(TypeError, match="Sequential: item 0 is a int"):
        nn.Sequential(3)


def test_parameter_requires_float():
    assert nn.Parameter(np.zeros(2)).requires_grad
    with pytest.raises(TypeError, match="only floating-point tensors can require grad"):
        nn.Parameter(np.zeros(2, dtype=np.int64))


def test_module_state_matches_torch_layout():
    torch = pytest.importorskip("torch")
    reference = torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True)
    model = nn.LSTM(3, 4, num_layers=2, bidirectional=True, rng=0)
    model.load_state_dict({k: v.detach().numpy() for k, v in reference.state_dict().items()})
    for name, value in reference.state_dict().items():
        np.testing.assert_array_equal(model.state_dict()[name], value.numpy(), err_msg=name)
