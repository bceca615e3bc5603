"""tg.save / tg.load: round trips in both formats, atomic overwrite, errors, and weights to and from torch."""

import os
import stat

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import nn
from tinygrad_rnn.serialization import write_atomically

SUFFIXES = [".safetensors", ".npz"]


def sample_state() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "layer.weight": rng.standard_normal((3, 4)),
        "layer.bias": rng.standard_normal(3).astype(np.float32),
        "scalar": np.array(2.5),
        "empty": np.zeros((0, 3)),
        "steps": np.array([3, 1, 2], dtype=np.int64),
        "mask": np.array([True, False]),
        "half": rng.standard_normal(2).astype(np.float16),
        "file": rng.standard_normal(2),  # np.savez's own argument names must be plain keys here
        "allow_pickle": np.array([7], dtype=np.uint8),
        "transposed": rng.standard_normal((2, 3)).T,  # not C-contiguous
        "big_endian": np.arange(3, dtype=">f8"),
    }


def assert_same(loaded: dict[str, np.ndarray], state: dict[str, np.ndarray]) -> None:
    assert sorted(loaded) == sorted(state)
    for name, array in state.items():
        assert loaded[name].shape == array.shape, name
        assert loaded[name].dtype == array.dtype.newbyteorder("="), name
        np.testing.assert_array_equal(loaded[name], array, err_msg=name)


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_round_trip_keeps_names_shapes_dtypes_and_values(tmp_path, suffix):
    state = sample_state()
    path = tmp_path / f"weights{suffix}"
    tg.save(state, path)
    loaded = tg.load(str(path))
    assert_same(loaded, state)
    loaded["layer.weight"][0, 0] = 99.0  # the arrays are the caller's own, writable
    assert not path.with_name(f".{path.name}").exists()
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left behind


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_model_round_trip_through_a_file(tmp_path, suffix):
    model = nn.LSTM(3, 4, num_layers=2, bidirectional=True, dtype=np.float64, rng=0)
    other = nn.LSTM(3, 4, num_layers=2, bidirectional=True, dtype=np.float64, rng=1)
    path = tmp_path / f"lstm{suffix}"
    tg.save({name: p for name, p in model.named_parameters()}, path)  # Tensors are accepted too
    other.load_state_dict(tg.load(path))
    x = np.random.default_rng(2).standard_normal((5, 2, 3))
    np.testing.assert_array_equal(other(x)[0].data, model(x)[0].data)


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_save_overwrites_and_keeps_the_file_mode(tmp_path, suffix):
    path = tmp_path / f"w{suffix}"
    tg.save({"a": np.zeros(2)}, path)
    os.chmod(path, 0o640)
    tg.save({"b": np.ones(3)}, path)
    assert list(tg.load(path)) == ["b"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_bad_values_raise_before_the_old_file_is_touched(tmp_path, suffix):
    path = tmp_path / f"w{suffix}"
    tg.save({"a": np.arange(3.0)}, path)
    before = path.read_bytes()
    bad = [
        ({"a": np.zeros(2), "b": "text"}, "'b': expected an ndarray or Tensor, got str"),
        ({"a": [1.0, 2.0]}, "'a': expected an ndarray or Tensor, got list"),
        ({"a": np.array(["x"])}, "'a': expected one of the dtypes"),
        ({"a": np.array([{}], dtype=object)}, "got object"),
        ({"a": np.zeros(2, dtype=np.complex128)}, "got complex128"),
        ({1: np.zeros(2)}, "keys must be str, got int"),
    ]
    for state, message in bad:
        with pytest.raises(TypeError, match=message):
            tg.save(state, path)
    with pytest.raises(TypeError, match=r"got tinygrad_rnn\.nn\..*LSTM \(pass module.state_dict\(\)\)"):
        tg.save(nn.LSTM(2, 2), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "w.npz"
    path.write_bytes(b"old contents")

    def fail_halfway(f):
        f.write(b"new, partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(path, fail_halfway)
    assert path.read_bytes() == b"old contents"
    assert [p.name for p in tmp_path.iterdir()] == ["w.npz"]


def test_save_writes_through_a_symlink(tmp_path):
    target = tmp_path / "run3.npz"
    tg.save({"a": np.zeros(1)}, target)
    link = tmp_path / "latest.npz"
    link.symlink_to(target)
    tg.save({"a": np.ones(1)}, link)
    assert link.is_symlink()
    np.testing.assert_array_equal(tg.load(target)["a"], np.ones(1))


def test_path_errors(tmp_path):
    with pytest.raises(ValueError, match=r"expected a path ending in .safetensors or .npz, got '.*w.pt'"):
        tg.save({"a": np.zeros(1)}, tmp_path / "w.pt")
    with pytest.raises(ValueError, match="expected a path ending in"):
        tg.load(tmp_path / "w.pkl")
    with pytest.raises(TypeError, match="expected a path .* got int"):
        tg.load(3)
    with pytest.raises(FileNotFoundError, match="no file at .*missing.safetensors"):
        tg.load(tmp_path / "missing.safetensors")
    with pytest.raises(FileNotFoundError, match="the directory .*nowhere does not exist"):
        tg.save({"a": np.zeros(1)}, tmp_path / "nowhere" / "w.npz")
    (tmp_path / "d.npz").mkdir()
    with pytest.raises(IsADirectoryError, match="is a directory"):
        tg.save({"a": np.zeros(1)}, tmp_path / "d.npz")


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_unreadable_files_name_the_file(tmp_path, suffix):
    path = tmp_path / f"broken{suffix}"
    path.write_bytes(b"\x00not a weights file at all")
    with pytest.raises(ValueError, match=f"broken{suffix} is not a readable {suffix} file"):
        tg.load(path)


def test_npz_with_pickled_objects_is_refused(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, a=np.array([{"x": 1}], dtype=object))  # a file someone else wrote with pickle
    with pytest.raises(ValueError, match="objects.npz is not a readable .npz file"):
        tg.load(path)


# --- to and from PyTorch ---------------------------------------------------------------------------

T, N, D, H = 5, 3, 4, 6


def torch_lstm(torch):
    return torch.nn.LSTM(D, H, num_layers=2, bidirectional=True, dtype=torch.float64)


def test_saved_here_loads_into_torch_with_the_same_outputs(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file

    model = nn.LSTM(D, H, num_layers=2, bidirectional=True, dtype=np.float64, rng=0)
    path = tmp_path / "lstm.safetensors"
    tg.save(model.state_dict(), path)
    theirs = torch_lstm(torch)
    theirs.load_state_dict(load_file(path))  # strict: every name matches
    x = np.random.default_rng(1).standard_normal((T, N, D))
    out, (h, c) = model(x)
    t_out, (t_h, t_c) = theirs(torch.from_numpy(x))
    for ours, their in [(out, t_out), (h, t_h), (c, t_c)]:
        np.testing.assert_allclose(ours.data, their.detach().numpy(), rtol=1e-10, atol=1e-10)


def test_saved_by_torch_loads_here_with_the_same_outputs(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    torch.manual_seed(0)
    theirs = torch_lstm(torch)
    path = tmp_path / "torch_lstm.safetensors"
    save_file(theirs.state_dict(), path)
    model = nn.LSTM(D, H, num_layers=2, bidirectional=True, dtype=np.float64, rng=5)
    model.load_state_dict(tg.load(path))
    x = np.random.default_rng(1).standard_normal((T, N, D))
    G = np.random.default_rng(2).standard_normal((T, N, 2 * H))
    out, _ = model(x)
    (out * tg.Tensor(G)).sum().backward()
    t_out, _ = theirs(torch.from_numpy(x))
    (t_out * torch.from_numpy(G)).sum().backward()
    np.testing.assert_allclose(out.data, t_out.detach().numpy(), rtol=1e-10, atol=1e-10)
    for name, p in model.named_parameters():
        their_grad = dict(theirs.named_parameters())[name].grad.numpy()
        np.testing.assert_allclose(p.grad.data, their_grad, rtol=1e-10, atol=1e-10, err_msg=name)


# --- keys and dtypes the formats reserve or numpy lacks ----------------------------------------------


def test_a_key_safetensors_reserves_is_refused_before_the_old_file_is_touched(tmp_path):
    path = tmp_path / "w.safetensors"
    tg.save({"a": np.arange(3.0)}, path)
    before = path.read_bytes()
    with pytest.raises(ValueError, match="'__metadata__' is reserved by the safetensors format"):
        tg.save({"a": np.zeros(2), "__metadata__": np.zeros(1)}, path)
    assert path.read_bytes() == before
    np.testing.assert_array_equal(tg.load(path)["a"], np.arange(3.0))
    tg.save({"__metadata__": np.zeros(1)}, tmp_path / "w.npz")  # an ordinary name in .npz


def safetensors_bytes(entries: dict[str, tuple[str, list[int], bytes]]) -> bytes:
    """A .safetensors file by hand: 8-byte little-endian header length, the JSON header, the data."""
    import json

    header, data = {}, b""
    for name, (dtype, shape, raw) in entries.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + data


@pytest.mark.parametrize("dtype, size", [("BF16", 2), ("F8_E4M3", 1), ("F8_E5M2", 1)])
def test_a_dtype_numpy_lacks_is_a_value_error_naming_file_key_and_dtype(tmp_path, dtype, size):
    path = tmp_path / "torch_weights.safetensors"
    entries = {
        "fine": ("F32", [2], np.ones(2, np.float32).tobytes()),
        "rnn.weight": (dtype, [3], b"\0" * 3 * size),
    }
    path.write_bytes(safetensors_bytes(entries))
    with pytest.raises(ValueError, match=rf"torch_weights.safetensors: 'rnn.weight' is {dtype}, which numpy"):
        tg.load(path)


def test_torchs_bfloat16_file_is_a_value_error(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    path = tmp_path / "bf16.safetensors"
    save_file({"w": torch.zeros(2, dtype=torch.bfloat16)}, str(path))
    with pytest.raises(ValueError, match=r"bf16.safetensors: 'w' is BF16.*\.float\(\)"):
        tg.load(path)
