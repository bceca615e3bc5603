"""Module and Parameter, as in torch.nn: parameters and sub-modules are found from attributes."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from ..tensor import FLOAT_DTYPES, Tensor, _as_dtype


def as_input(value: Any, dtype: np.dtype) -> Tensor:
    """A layer's input as a Tensor: a Tensor or an ndarray keeps its dtype (a mismatch is then
    reported by the layer); Python numbers and lists of them take the layer's float `dtype`, as a
    Python scalar never changes a tensor's dtype."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, np.ndarray):
        return Tensor(value)
    return Tensor(value, dtype=dtype if np.asarray(value).dtype.kind == "f" else None)


class Parameter(Tensor):
    """A leaf Tensor that a Module registers; requires grad by default; keeps a float ndarray's dtype."""

    __slots__ = ()

    def __init__(self, data: Any, requires_grad: bool = True, name: str | None = None) -> None:
        array = data.data if isinstance(data, Tensor) else data
        dtype = array.dtype if isinstance(array, np.ndarray) and array.dtype in FLOAT_DTYPES else None
        super().__init__(array, requires_grad=requires_grad, dtype=dtype, name=name)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base of every layer. Assigning a Parameter or a Module to an attribute registers it.

    `named_parameters()` gives dotted names (`rnn.weight_hh_l0`) in registration order, as torch.
    """

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}: call super().__init__() before assigning attributes")
        if not isinstance(value, Parameter):  # a replaced one keeps its place in the order, as torch
            self._parameters.pop(name, None)
        if not isinstance(value, Module):
            self._modules.pop(name, None)
        if isinstance(value, Parameter):
            if value.name is None:
                value.name = name
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        object.__delattr__(self, name)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # --- traversal ---------------------------------------------------------------------------------

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            yield name, module
            children = [(f"{name}.{k}" if name else k, m) for k, m in module._modules.items()]
            stack.extend(reversed(children))

    def modules(self) -> Iterator[Module]:
        return (m for _, m in self.named_modules())

    def named_children(self) -> Iterator[tuple[str, Module]]:
        return iter(self._modules.items())

    def children(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def named_parameters(
        self, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter); a parameter shared by several modules (tied weights) comes once,
        under its first name, unless `remove_duplicate=False` (then under every name, as torch)."""
        seen: set[int] = set()
        for module_name, module in self.named_modules(prefix):
            for name, p in module._parameters.items():
                if remove_duplicate and id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{module_name}.{name}" if module_name else name), p

    def parameters(self) -> Iterator[Parameter]:
        return (p for _, p in self.named_parameters())

    # --- modes and housekeeping --------------------------------------------------------------------

    def train(self, mode: bool = True) -> Module:
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients (`.grad = None`, torch's default), or with set_to_none=False fill them
        with zeros in place, so that the next backward adds into the same buffers."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad.data.fill(0)

    def to(self, dtype: Any) -> Module:
        """Convert every parameter (and its grad) to a float dtype, in place; returns self."""
        target = _as_dtype(dtype)
        if target not in FLOAT_DTYPES:
            raise TypeError(f"{type(self).__name__}.to: expected a float dtype, got {target}")
        for p in self.parameters():
            p.data = p.data.astype(target)
            p.data_changed()
            if p.grad is not None:
                p.grad.data = p.grad.data.astype(target)
        return self

    def double(self) -> Module:
        return self.to(np.float64)

    def float(self) -> Module:
        return self.to(np.float32)

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the parameters (float32 unless converted)."""
        first = next(self.parameters(), None)
        return first.dtype if first is not None else np.dtype(np.float32)

    # --- state -------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, np.ndarray]:
        """name -> a copy of the parameter's values; a shared (tied) parameter is listed under every
        name it is registered by, as torch does."""
        return {name: p.data.copy() for name, p in self.named_parameters(remove_duplicate=False)}

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> None:
        """Copy values into the existing parameters (keeping their dtype), all or nothing.

        Every problem (missing or unexpected keys, shapes, non-float values) is found first and
        reported in one error; the module is unchanged when anything is wrong. A shared (tied)
        parameter may be given under any of its names (missing only when under none); given under
        several, the values must agree, else the error names the keys that disagree.
        """
        if not isinstance(state, Mapping):
            raise TypeError(
                f"load_state_dict: expected a mapping of name -> array, got {type(state).__name__}"
            )
        own = dict(self.named_parameters(remove_duplicate=False))
        given = {id(own[k]) for k in state if k in own}
        problems = []
        if strict:
            missing = [k for k in own if k not in state and id(own[k]) not in given]
            unexpected = [k for k in state if k not in own]
            if missing:
                problems.append(f"missing keys: {missing}")
            if unexpected:
                problems.append(f"unexpected keys: {unexpected}")
        arrays = {}
        for name, value in state.items():
            if name not in own:
                continue
            array = np.asarray(value.data if isinstance(value, Tensor) else value)
            if array.dtype.kind not in "fiu":
                problems.append(f"{name}: expected numbers, got dtype {array.dtype}")
            elif array.shape != own[name].shape:
                problems.append(f"{name}: expected shape {own[name].shape}, got {array.shape}")
            else:
                arrays[name] = array
        first_key: dict[int, str] = {}
        for name, array in arrays.items():
            key = first_key.setdefault(id(own[name]), name)
            if key != name and not np.array_equal(array, arrays[key]):
                problems.append(f"{key} and {name} name one shared parameter but hold different values")
        if problems:
            raise ValueError(f"{type(self).__name__}.load_state_dict: " + "; ".join(problems))
        for name, array in arrays.items():
            own[name].data[...] = array
            own[name].data_changed()

    # --- repr --------------------------------------------------------------------------------------

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        if not self._modules:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, module in self._modules.items():
            child = repr(module).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child}")
        return "\n".join(lines) + "\n)"
