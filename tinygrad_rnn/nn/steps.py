"""One time step of each recurrent cell, written with Tensor ops only (the autograd differentiates it).

A step object holds one layer-direction's weights, prepared once per forward (transposed to C order,
biases folded where the equations allow), so that each time step costs one or two matmuls and a few
elementwise ops. `project(x)` is the input half of the gates, x W_ihᵀ + b_ih, for all time steps at
once (one matmul), returned as a tuple of column blocks; `__call__(x_proj_t, state)` is the
recurrence, given this step's rows of those blocks. Row vectors, PyTorch's layout and gate order.
"""

from __future__ import annotations

from ..functions import addcmul, addmm, lerp
from ..tensor import Tensor

State = Tensor | tuple[Tensor, Tensor]


def _named(t: Tensor, name: str) -> Tensor:
    t.name = name
    return t


def _transposed(w: Tensor) -> Tensor:
    """Wᵀ in C order: the per-step products h Wᵀ run fastest on it."""
    return w.T.contiguous()


class RNNStep:
    """h_t = φ(x_t W_ihᵀ + b_ih + h_{t−1} W_hhᵀ + b_hh), φ = tanh or relu; b_hh is added in `project`."""

    def __init__(
        self, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None, b_hh: Tensor | None, nonlinearity: str = "tanh"
    ) -> None:
        self.w_ih_t, self.w_hh_t = _transposed(w_ih), _transposed(w_hh)
        self.bias = b_ih + b_hh if b_ih is not None else None
        self.activation = Tensor.tanh if nonlinearity == "tanh" else Tensor.relu

    def project(self, x: Tensor) -> tuple[Tensor, ...]:
        return (addmm(self.bias, x, self.w_ih_t) if self.bias is not None else x @ self.w_ih_t,)

    def __call__(self, x_proj: tuple[Tensor, ...], h: Tensor) -> Tensor:
        return _named(self.activation(addmm(x_proj[0], h, self.w_hh_t)), "h")


class LSTMStep:
    """Gates i|f|g|o = x_t W_ihᵀ + b_ih + h_{t−1} W_hhᵀ + b_hh (b_hh added in `project`);
    i, f, o = σ(·), g = tanh(·); c_t = f ⊙ c_{t−1} + i ⊙ g; h_t = o ⊙ tanh(c_t)."""

    def __init__(self, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None, b_hh: Tensor | None) -> None:
        self.w_ih_t, self.w_hh_t = _transposed(w_ih), _transposed(w_hh)
        self.bias = b_ih + b_hh if b_ih is not None else None

    project = RNNStep.project

    def __call__(self, x_proj: tuple[Tensor, ...], state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        h, c = state
        i, f, g, o = addmm(x_proj[0], h, self.w_hh_t).chunk(4, 1)
        i, f, g, o = (
            _named(i.sigmoid(), "i"),
            _named(f.sigmoid(), "f"),
            _named(g.tanh(), "g"),
            _named(o.sigmoid(), "o"),
        )
        c = _named(addcmul(f * c, i, g), "c")  # f ⊙ c + i ⊙ g
        return _named(o * c.tanh(), "h"), c


class GRUStep:
    """Gates r|z|n. r = σ(x W_irᵀ + b_ir + h W_hrᵀ + b_hr), z likewise, h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}.

    reset_after=True (PyTorch, cuDNN): n = tanh(x W_inᵀ + b_in + r ⊙ (h W_hnᵀ + b_hn)).
    reset_after=False (the original GRU, most textbooks): n = tanh(x W_inᵀ + b_in + (r ⊙ h) W_hnᵀ + b_hn).

    `project` returns the r|z block (with b_hr, b_hz added) and the n block (with b_hn added when r
    does not multiply it); each step then takes h W_hrzᵀ and h W_hnᵀ as two products.
    """

    def __init__(
        self, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None, b_hh: Tensor | None, reset_after: bool = True
    ) -> None:
        hidden = w_hh.shape[1]
        self.hidden, self.reset_after = hidden, reset_after
        self.w_ih_t = _transposed(w_ih)
        w_rz, w_n = w_hh.split([2 * hidden, hidden], 0)
        self.w_rz_t, self.w_n_t = _transposed(w_rz), _transposed(w_n)
        self.b_ih = b_ih
        self.b_rz, self.b_n = b_hh.split([2 * hidden, hidden], 0) if b_hh is not None else (None, None)

    def project(self, x: Tensor) -> tuple[Tensor, ...]:
        both = addmm(self.b_ih, x, self.w_ih_t) if self.b_ih is not None else x @ self.w_ih_t
        x_rz, x_n = both.split([2 * self.hidden, self.hidden], 1)
        if self.b_rz is None:
            return x_rz, x_n
        return x_rz + self.b_rz, (x_n if self.reset_after else x_n + self.b_n)

    def __call__(self, x_proj: tuple[Tensor, ...], h: Tensor) -> Tensor:
        x_rz, x_n = x_proj
        r, z = addmm(x_rz, h, self.w_rz_t).sigmoid().chunk(2, 1)
        r, z = _named(r, "r"), _named(z, "z")
        if self.reset_after:
            h_n = addmm(self.b_n, h, self.w_n_t) if self.b_n is not None else h @ self.w_n_t
            n = addcmul(x_n, r, h_n)
        else:
            n = addmm(x_n, r * h, self.w_n_t)
        n = _named(n.tanh(), "n")
        return _named(lerp(n, h, z), "h")  # n + z ⊙ (h − n) = (1 − z) ⊙ n + z ⊙ h
