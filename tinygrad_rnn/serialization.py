"""Weights to and from files without pickle: `save(state_dict, path)` and `load(path)`.

The suffix picks the format: `.safetensors` (the `safetensors` package's numpy API; the format the
Hugging Face hub and `safetensors.torch.load_file/save_file` use, so weights move to and from
PyTorch unchanged) or `.npz` (numpy's zip of `.npy` files, read with `allow_pickle=False`). Both
hold a flat mapping name -> array of bool, int, uint or float dtype, and nothing executable.
safetensors reserves the key `__metadata__` (its header's own entry): `save` refuses it there.

`save` overwrites an existing file, as `torch.save` does, but atomically: the bytes go to a
temporary file in the same directory, are flushed and fsync'ed, and only then renamed over the
target, so a failed or interrupted write leaves the old file as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

from .tensor import Tensor

SUFFIXES = (".safetensors", ".npz")
RESERVED = "__metadata__"  # the safetensors header's entry for free-form strings, never a tensor
# the dtypes both formats store exactly (safetensors has no float128, no strings, no objects)
DTYPES = tuple(
    np.dtype(t)
    for t in (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64)
    + (np.float16, np.float32, np.float64)
)


def save(state_dict: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Write `state_dict` (name -> ndarray or Tensor) to `path`, `.safetensors` or `.npz`.

    Every key and value is checked before anything is written (TypeError for a non-str key or a
    value that is not an array of numbers, ValueError for an unknown suffix); the file is then
    replaced atomically, keeping an existing file's permissions.
    """
    target = Path(os.path.realpath(_checked_path(path, "save")))  # through a symlink, as open() would
    if not isinstance(state_dict, Mapping):
        hint = " (pass module.state_dict())" if hasattr(state_dict, "state_dict") else ""
        raise TypeError(f"save: expected a mapping of name -> array, got {_type_name(state_dict)}{hint}")
    arrays = {name: _array(name, value) for name, value in state_dict.items()}
    if _is_safetensors(target) and RESERVED in arrays:
        raise ValueError(
            f"save: the key {RESERVED!r} is reserved by the safetensors format (its header's own entry); "
            "rename it, or save to .npz"
        )
    if target.is_dir():
        raise IsADirectoryError(f"save: {target} is a directory, expected a file path")
    if not target.parent.is_dir():
        raise FileNotFoundError(f"save: the directory {target.parent} does not exist")
    if _is_safetensors(target):
        to_bytes = _safetensors("save").numpy.save
        write_atomically(target, lambda f: f.write(to_bytes(arrays)))
    else:
        write_atomically(target, lambda f: _write_npz(f, arrays))


def load(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read a file written by `save` (or by safetensors / `np.savez` elsewhere): name -> a new array.

    FileNotFoundError when there is no such file, ValueError naming the file when it is not a
    readable file of its suffix's format, or naming the file, the key and the dtype when it holds a
    dtype numpy cannot represent (torch's bfloat16 and float8 types).
    """
    source = _checked_path(path, "load")
    if not source.is_file():
        raise FileNotFoundError(f"load: no file at {source}")
    if _is_safetensors(source):
        _refuse_dtypes_numpy_lacks(source)
    try:
        if _is_safetensors(source):
            safetensors = _safetensors("load")
            try:
                arrays = safetensors.numpy.load_file(source)
            except safetensors.SafetensorError as error:
                raise ValueError(error) from None
            except (TypeError, AttributeError) as error:  # a dtype newer than the list above
                raise ValueError(f"a dtype numpy has no type for: {error}") from None
        else:
            with np.load(source, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"load: {source} is not a readable {source.suffix} file ({error})") from None
    return {name: np.array(array) for name, array in arrays.items()}


# safetensors dtypes numpy has no type for (torch writes them); safetensors.numpy fails on them with
# TypeError or AttributeError
NOT_IN_NUMPY = ("BF16", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2")


def _refuse_dtypes_numpy_lacks(source: Path) -> None:
    """ValueError naming the first entry whose dtype numpy cannot hold, read from the file's header
    (8 bytes of little-endian length, then JSON name -> {dtype, shape, data_offsets})."""
    with open(source, "rb") as f:
        length = int.from_bytes(f.read(8), "little")
        if length > os.fstat(f.fileno()).st_size:
            return  # not a safetensors header: safetensors' own error names the problem
        try:
            header = json.loads(f.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return
    if not isinstance(header, dict):
        return
    for name, entry in header.items():
        dtype = entry.get("dtype") if isinstance(entry, dict) else None
        if dtype in NOT_IN_NUMPY:
            raise ValueError(
                f"load: {source}: {name!r} is {dtype}, which numpy has no dtype for; convert it in torch "
                "first (e.g. {k: v.float() for k, v in state_dict.items()} before save_file)"
            )


def write_atomically(path: str | os.PathLike[str], write: Callable[[IO[bytes]], object]) -> None:
    """Call `write(f)` on a temporary file beside `path`, fsync it, then rename it over `path`.

    The temporary file is created with the process umask (as `open` would) or, when `path`
    exists, with its mode; on any error it is removed and `path` is untouched.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o666
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if path.exists():
            os.chmod(temporary, mode)  # os.open applied the umask to the existing file's mode
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _fsync_directory(path.parent)


def _checked_path(path: str | os.PathLike[str], op: str) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{op}: expected a path (str or os.PathLike), got {_type_name(path)}")
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise ValueError(f"{op}: expected a path ending in {' or '.join(SUFFIXES)}, got {str(path)!r}")
    return path


def _is_safetensors(path: Path) -> bool:
    return path.suffix.lower() == ".safetensors"


def _safetensors(op: str) -> Any:
    """The safetensors package (imported on first use, so `.npz` works without it)."""
    try:
        import safetensors.numpy
    except ImportError:
        raise ImportError(
            f"{op}: .safetensors files need the safetensors package (pip install safetensors)"
        ) from None
    return safetensors


def _type_name(value: Any) -> str:
    kind = type(value)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def _array(name: Any, value: Any) -> np.ndarray:
    """The value as a C-contiguous, native-byte-order array of a storable dtype (always a copy)."""
    if not isinstance(name, str):
        raise TypeError(f"save: keys must be str, got {_type_name(name)} {name!r}")
    if isinstance(value, Tensor):
        value = value.data
    if not isinstance(value, (np.ndarray, np.generic, bool, int, float)):
        raise TypeError(f"save: {name!r}: expected an ndarray or Tensor, got {_type_name(value)}")
    array = np.asarray(value)
    native = array.dtype.newbyteorder("=")
    if native not in DTYPES:
        kinds = ", ".join(str(d) for d in DTYPES)
        raise TypeError(f"save: {name!r}: expected one of the dtypes {kinds}; got {array.dtype}")
    return np.array(array, dtype=native, order="C")


def _write_npz(f: IO[bytes], arrays: dict[str, np.ndarray]) -> None:
    """numpy's .npz layout (one `<name>.npy` member per array), written without pickle.

    Written here rather than with `np.savez(f, **arrays)`, whose own keyword arguments (`file`,
    `allow_pickle`) would swallow state_dict entries of those names.
    """
    with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, array in arrays.items():
            with archive.open(name + ".npy", mode="w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where a directory cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
