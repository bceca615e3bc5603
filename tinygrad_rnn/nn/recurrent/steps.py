"""One time step of each recurrent cell, written with Tensor ops only (the autograd differentiates it).

A step object holds one layer-direction's weights for one forward pass, so that each time step costs
one or two matrix products (`linear`, with a C-ordered copy of W_hhᵀ made once) and a few elementwise
ops. The layer checks shapes and dtypes once; inside the time loop the steps call the ops directly.
`project(x)` is the input half of the gates, x W_ihᵀ + b_ih, for all time steps at once (one matmul),
returned as a tuple of column blocks; `__call__(x_proj_t, state)` is the recurrence, given this
step's rows of those blocks (`inputs` cuts them per step: the layer loop's Direction). Row vectors,
PyTorch's layout and gate order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ... import ops
from ...functions import linear
from ...tensor import Tensor


def _named(t: Tensor, name: str) -> Tensor:
    t.name = name
    return t


class _Recurrent:
    """h W_hhᵀ + term for one weight. From the second step on it multiplies by a C-ordered copy of Wᵀ,
    which numpy multiplies fastest; a cell called once (RNNCell & co.) makes no copy."""

    def __init__(self, weight: Tensor) -> None:
        self.weight = weight
        self.weight_t: np.ndarray | None = None
        self.used = False

    def __call__(self, h: Tensor, term: Tensor | None) -> Tensor:
        if self.used and self.weight_t is None:
            self.weight_t = np.ascontiguousarray(self.weight._data.T)
        self.used = True
        # shapes and dtypes were checked where the layer began; this runs once per step, so straight to the op
        if term is None:
            return ops.Linear.apply(h, self.weight, weight_t=self.weight_t)
        return ops.Linear.apply(h, self.weight, term, weight_t=self.weight_t)


class _Step:
    """`inputs(x)`: x (T, N, D) projected in one matmul, then cut into each step's blocks."""

    def project(self, x: Tensor) -> tuple[Tensor, ...]:
        raise NotImplementedError

    def inputs(self, x: Tensor) -> Sequence[tuple[Tensor, ...]]:
        steps, batch, width = x.shape
        blocks = self.project(x.reshape(steps * batch, width))
        return list(zip(*[b.reshape(steps, batch, b.shape[1]).unbind(0) for b in blocks], strict=True))

    def initial_state(self, batch: int) -> None:
        """None: the layer always passes a state (zeros when hx is not given)."""
        return None


class RNNStep(_Step):
    """h_t = φ(x_t W_ihᵀ + b_ih + h_{t−1} W_hhᵀ + b_hh), φ = tanh or relu; b_hh is added in `project`."""

    def __init__(
        self, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None, b_hh: Tensor | None, nonlinearity: str = "tanh"
    ) -> None:
        self.w_ih, self.recurrent = w_ih, _Recurrent(w_hh)
        self.bias = b_ih + b_hh if b_ih is not None else None
        self.activation = Tensor.tanh if nonlinearity == "tanh" else Tensor.relu

    def project(self, x: Tensor) -> tuple[Tensor, ...]:
        return (linear(x, self.w_ih, self.bias),)

    def __call__(self, x_proj: tuple[Tensor, ...], h: Tensor) -> Tensor:
        return _named(self.activation(self.recurrent(h, x_proj[0])), "h")


class LSTMStep(_Step):
    """Gates i|f|g|o = x_t W_ihᵀ + b_ih + h_{t−1} W_hhᵀ + b_hh (b_hh added in `project`);
    i, f, o = σ(·), g = tanh(·); c_t = f ⊙ c_{t−1} + i ⊙ g; h_t = o ⊙ tanh(c_t), or with a
    projection W_hr (P, H) (torch's proj_size) h_t = (o ⊙ tanh(c_t)) W_hrᵀ, of width P."""

    def __init__(
        self, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None, b_hh: Tensor | None, w_hr: Tensor | None = None
    ) -> None:
        self.w_ih, self.recurrent = w_ih, _Recurrent(w_hh)
        self.bias = b_ih + b_hh if b_ih is not None else None
        self.projection = _Recurrent(w_hr) if w_hr is not None else None

    project = RNNStep.project

    def __call__(self, x_proj: tuple[Tensor, ...], state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        h, c = state
        i, f, g, o = self.recurrent(h, x_proj[0]).chunk(4, 1)
        i, f, g, o = (
            _named(i.sigmoid(), "i"),
            _named(f.sigmoid(), "f"),
            _named(g.tanh(), "g"),
            _named(o.sigmoid(), "o"),
        )
        c = _named(ops.Addcmul.apply(f * c, i, g), "c")  # f ⊙ c + i ⊙ g
        h = o * c.tanh()
        return _named(h if self.projection is None else self.projection(h, None), "h"), c


class GRUStep(_Step):
    """Gates r|z|n. r = σ(x W_irᵀ + b_ir + h W_hrᵀ + b_hr), z likewise, h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}.

    reset_after=True (PyTorch, cuDNN): n = tanh(x W_inᵀ + b_in + r ⊙ (h W_hnᵀ + b_hn)). Each step
    makes h W_hhᵀ + b_hh as one product and cuts it in its r|z and n blocks: the step reads only the
    layer's own parameters, so its compiled program is kept from one forward pass to the next.
    reset_after=False (the original GRU, most textbooks): n = tanh(x W_inᵀ + b_in + (r ⊙ h) W_hnᵀ + b_hn):
    `project` adds b_hr, b_hz to the r|z block and b_hn to the n block; each step takes h W_hrzᵀ and
    (r ⊙ h) W_hnᵀ as two products.
    """

    def __init__(
        self, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None, b_hh: Tensor | None, reset_after: bool = True
    ) -> None:
        hidden = w_hh.shape[1]
        self.hidden, self.reset_after = hidden, reset_after
        self.w_ih, self.b_ih, self.b_hh = w_ih, b_ih, b_hh
        if reset_after:
            self.recurrent = _Recurrent(w_hh)
        else:
            w_rz, w_n = w_hh.split([2 * hidden, hidden], 0)
            self.recurrent_rz, self.recurrent_n = _Recurrent(w_rz), _Recurrent(w_n)
            self.b_rz, self.b_n = b_hh.split([2 * hidden, hidden], 0) if b_hh is not None else (None, None)

    def project(self, x: Tensor) -> tuple[Tensor, ...]:
        x_rz, x_n = linear(x, self.w_ih, self.b_ih).split([2 * self.hidden, self.hidden], 1)
        if self.reset_after or self.b_rz is None:
            return x_rz, x_n
        return x_rz + self.b_rz, x_n + self.b_n

    def __call__(self, x_proj: tuple[Tensor, ...], h: Tensor) -> Tensor:
        x_rz, x_n = x_proj
        if self.reset_after:
            h_rz, h_n = self.recurrent(h, self.b_hh).split([2 * self.hidden, self.hidden], 1)
            r, z = (x_rz + h_rz).sigmoid().chunk(2, 1)
            r, z = _named(r, "r"), _named(z, "z")
            n = ops.Addcmul.apply(x_n, r, h_n)
        else:
            r, z = self.recurrent_rz(h, x_rz).sigmoid().chunk(2, 1)
            r, z = _named(r, "r"), _named(z, "z")
            n = self.recurrent_n(r * h, x_n)
        n = _named(n.tanh(), "n")
        return _named(ops.Lerp.apply(n, h, z), "h")  # n + z ⊙ (h − n) = (1 − z) ⊙ n + z ⊙ h
