"""One time step of each recurrent cell, written with Tensor ops only (the autograd differentiates it).

A step object holds one layer-direction's weights, prepared once (transposed, biases folded where
the equations allow), so that the per-step work is one matmul for all gates and a few elementwise
ops. `project(x)` is the input half of the gates, x W_ihᵀ + b_ih, for all time steps at once;
`__call__(x_proj_t, state)` is the recurrence. Row vectors, PyTorch's layout and gate order.
"""

from __future__ import annotations

from ..functions import addmm
from ..tensor import Tensor

State = Tensor | tuple[Tensor, Tensor]


def _named(t: Tensor, name: str) -> Tensor:
    t.name = name
    return t


class RNNStep:
    """h_t = φ(x_t W_ihᵀ + b_ih + h_{t−1} W_hhᵀ + b_hh), φ = tanh or relu; b_hh folded into the projection."""

    gates = 1

    def __init__(
        self, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None, b_hh: Tensor | None, nonlinearity: str = "tanh"
    ) -> None:
        self.w_ih_t, self.w_hh_t = w_ih.T.contiguous(), w_hh.T.contiguous()
        self.bias = b_ih + b_hh if b_ih is not None else None
        self.activation = Tensor.tanh if nonlinearity == "tanh" else Tensor.relu

    def project(self, x: Tensor) -> Tensor:
        return addmm(self.bias, x, self.w_ih_t) if self.bias is not None else x @ self.w_ih_t

    def __call__(self, x_proj: Tensor, h: Tensor) -> Tensor:
        return _named(self.activation(addmm(x_proj, h, self.w_hh_t)), "h")


class LSTMStep:
    """Gates i|f|g|o = x_t W_ihᵀ + b_ih + h_{t−1} W_hhᵀ + b_hh (b_hh folded into the projection);
    i, f, o = σ(·), g = tanh(·); c_t = f ⊙ c_{t−1} + i ⊙ g; h_t = o ⊙ tanh(c_t)."""

    gates = 4

    def __init__(self, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None, b_hh: Tensor | None) -> None:
        self.w_ih_t, self.w_hh_t = w_ih.T.contiguous(), w_hh.T.contiguous()
        self.bias = b_ih + b_hh if b_ih is not None else None

    project = RNNStep.project

    def __call__(self, x_proj: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        h, c = state
        i, f, g, o = addmm(x_proj, h, self.w_hh_t).chunk(4, 1)
        i, f, g, o = (
            _named(i.sigmoid(), "i"),
            _named(f.sigmoid(), "f"),
            _named(g.tanh(), "g"),
            _named(o.sigmoid(), "o"),
        )
        c = _named(f * c + i * g, "c")
        return _named(o * c.tanh(), "h"), c


class GRUStep:
    """Gates r|z|n. r = σ(x W_irᵀ + b_ir + h W_hrᵀ + b_hr), z likewise, h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}.

    reset_after=True (PyTorch, cuDNN): n = tanh(x W_inᵀ + b_in + r ⊙ (h W_hnᵀ + b_hn)).
    reset_after=False (the original GRU, most textbooks): n = tanh(x W_inᵀ + b_in + (r ⊙ h) W_hnᵀ + b_hn).
    """

    gates = 3

    def __init__(
        self, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None, b_hh: Tensor | None, reset_after: bool = True
    ) -> None:
        hidden = w_hh.shape[1]
        self.w_ih_t, self.bias = w_ih.T.contiguous(), b_ih
        self.reset_after = reset_after
        if reset_after:
            self.w_hh_t, self.b_hh = w_hh.T.contiguous(), b_hh
        else:
            w_rz, w_n = w_hh.split([2 * hidden, hidden], 0)
            self.w_rz_t, self.w_n_t = w_rz.T.contiguous(), w_n.T.contiguous()
            self.b_rz, self.b_n = b_hh.split([2 * hidden, hidden], 0) if b_hh is not None else (None, None)

    project = RNNStep.project

    def __call__(self, x_proj: Tensor, h: Tensor) -> Tensor:
        hidden = h.shape[-1]
        x_rz, x_n = x_proj.split([2 * hidden, hidden], 1)
        if self.reset_after:
            h_proj = addmm(self.b_hh, h, self.w_hh_t) if self.b_hh is not None else h @ self.w_hh_t
            h_rz, h_n = h_proj.split([2 * hidden, hidden], 1)
            r, z = (x_rz + h_rz).sigmoid().chunk(2, 1)
            n = x_n + _named(r, "r") * h_n
        else:
            h_rz = addmm(self.b_rz, h, self.w_rz_t) if self.b_rz is not None else h @ self.w_rz_t
            r, z = (x_rz + h_rz).sigmoid().chunk(2, 1)
            n = addmm(x_n + self.b_n if self.b_n is not None else x_n, _named(r, "r") * h, self.w_n_t)
        n = _named(n.tanh(), "n")
        return _named(n + _named(z, "z") * (h - n), "h")  # (1 − z) ⊙ n + z ⊙ h
