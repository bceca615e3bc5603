"""Layer-level parameter names: which layer and direction a key belongs to, in either layout.

    nn.RNN / nn.LSTM / nn.GRU (PyTorch's):   weight_ih_l0, bias_hh_l1_reverse    key format '{}_l1_reverse'
    nn.Recurrent(cell):                      cell_l0.weight_ih, cell_l1_reverse.peep     'cell_l1_reverse.{}'

A stack's params use one layout throughout; `split_params` gives each layer-direction its cell-level
dict (weight_ih, peep, ...) and the format that names its keys back, so gradients come out under
exactly the keys they went in with. A direction is its index d (0 forward, 1 reverse): the values of
nn.scopes.TimeDirection, which this numpy-only package cannot import (tests/test_direction.py checks
that the names agree).
"""

from functools import lru_cache

from .cell import Params

CELL_PREFIX = "cell_l"


def _stream(text: str) -> tuple[int, int] | None:
    """'0' → (0, 0), '1_reverse' → (1, 1): the layer and direction after an '_l'; None if malformed."""
    reverse = text.endswith("_reverse")
    digits = text.removesuffix("_reverse")
    return (int(digits), int(reverse)) if digits.isdigit() else None


def parse_key(key: str, cells: bool) -> tuple[str, int, int] | None:
    """(name, layer, direction) of a layer-level key in the cell layout or PyTorch's; None if not one."""
    if cells:
        head, dot, name = key.partition(".")
        stream = _stream(head.removeprefix(CELL_PREFIX)) if head.startswith(CELL_PREFIX) and dot else None
    else:
        base = key.removesuffix("_reverse")
        name, sep, digits = base.rpartition("_l")
        stream = _stream(digits + key[len(base) :]) if sep and name else None
    return None if stream is None else (name, *stream)


def stream_name(layer: int, direction: int) -> str:
    """'l0', 'l0_reverse', ...: a layer-direction's name in per-step records and reports."""
    return f"l{layer}" + ("_reverse" if direction else "")


def split_params(params: Params, num_layers: int, directions: int) -> tuple[list[Params], list[str]]:
    """(cell-level params, key format) per layer-direction, index k·dirs + d, from layer-level keys.

    Keys outside the stack (a layer ≥ num_layers, a reverse key without bidirectional, a key of
    neither layout) are a ValueError; a name that some layer-direction lacks is a KeyError.
    """
    placement, formats = _placement(tuple(params), num_layers, directions)
    split: list[Params] = [{} for _ in formats]
    for key, (index, name) in zip(params, placement, strict=True):
        split[index][name] = params[key]
    return split, list(formats)


@lru_cache(maxsize=64)
def _placement(keys: tuple[str, ...], num_layers: int, directions: int) -> tuple[list, list[str]]:
    """(layer-direction index, name) of each key, and the key formats: `split_params`'s parsing and
    checks, done once per set of keys (a training loop passes the same keys at every step)."""
    cells = any(parse_key(key, cells=True) for key in keys)
    formats = [
        f"cell_{stream_name(layer, d)}.{{}}" if cells else f"{{}}_{stream_name(layer, d)}"
        for layer in range(num_layers)
        for d in range(directions)
    ]
    placement = []
    present: list[set[str]] = [set() for _ in formats]
    unexpected = []
    for key in keys:
        name, layer, direction = parse_key(key, cells) or ("", num_layers, 0)
        if layer >= num_layers or direction >= directions:
            unexpected.append(key)
        else:
            placement.append((layer * directions + direction, name))
            present[layer * directions + direction].add(name)
    if unexpected:
        streams = [stream_name(k, d) for k in range(num_layers) for d in range(directions)]
        raise ValueError(
            f"unexpected parameter keys {sorted(unexpected)} for num_layers={num_layers}, "
            f"bidirectional={directions == 2}; expected keys of the layer-directions {streams} named "
            f"{formats[0].format('<name>')!r} or alike"
        )
    names = sorted(set().union(*present))
    for part, key_format in zip(present, formats, strict=True):
        missing = [name for name in names if name not in part]
        if missing:
            raise KeyError(f"missing parameter {key_format.format(missing[0])!r}; given keys {sorted(keys)}")
    return placement, formats
