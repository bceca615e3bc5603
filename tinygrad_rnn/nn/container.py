"""Sequential: modules applied one after another."""

from typing import Any

from .module import Module


class Sequential(Module):
    """Sequential(m0, m1, ...): forward(x) = m_k(...m1(m0(x))); sub-modules are named '0', '1', ..."""

    def __init__(self, *modules: Module) -> None:
        super().__init__()
        for i, module in enumerate(modules):
            if not isinstance(module, Module):
                raise TypeError(f"Sequential: item {i} is a {type(module).__name__}, expected a Module")
            setattr(self, str(i), module)

    def __len__(self) -> int:
        return len(self._modules)

    def __getitem__(self, index: int) -> Module:
        return list(self._modules.values())[index]

    def forward(self, x: Any) -> Any:
        for module in self._modules.values():
            x = module(x)
        return x
