"""The GRU: one step and one sequence, forward and BPTT, in both placements of the reset gate.

Forward (PyTorch's layout; gates stacked r|z|n in the rows of the weights, G = 3):

    r = σ(x_t W_irᵀ + b_ir + h_{t−1} W_hrᵀ + b_hr)
    z = σ(x_t W_izᵀ + b_iz + h_{t−1} W_hzᵀ + b_hz)
    reset_after=True  (PyTorch, cuDNN):  n = tanh(x_t W_inᵀ + b_in + r ⊙ (h_{t−1} W_hnᵀ + b_hn))
    reset_after=False (original paper):  n = tanh(x_t W_inᵀ + b_in + (r ⊙ h_{t−1}) W_hnᵀ + b_hn)
    h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}

Where PyTorch differs from the derivation notes: the notes' candidate ĥ_t = tanh(W_h x_t + U_h (r_t ⊙ h_{t−1})
+ b_h) applies the reset gate before the hidden matrix (reset_after=False here); PyTorch and cuDNN apply
it after, r ⊙ (h_{t−1} W_hnᵀ + b_hn) (reset_after=True, the default).  Same weights, different functions.
The update gate is not a difference: the notes' h_t = z ⊙ h_{t−1} + (1 − z) ⊙ ĥ_t is PyTorch's convention
(z keeps the old state); texts writing h_t = (1 − z) ⊙ h_{t−1} + z ⊙ ĥ_t call 1 − z what PyTorch calls z.

Backward, given dh = dL/dh_t (the output path plus what step t+1 sends back):

    dn = dh ⊙ (1 − z),   dz = dh ⊙ (h_{t−1} − n),   dh_{t−1} = dh ⊙ z + (the gate paths below)
    da_n = dn ⊙ (1 − n²)                                   (the gradient on n's pre-activation, = dgx_n)
    reset_after=True,  gh_n = h_{t−1} W_hnᵀ + b_hn:   dgh_n = da_n ⊙ r,   dr = da_n ⊙ gh_n
    reset_after=False, u = r ⊙ h_{t−1} (hn_in):   dgh_n = da_n,   du = da_n W_hn,
                       dr = du ⊙ h_{t−1},   dh_{t−1} += du ⊙ r
    da_r = dr ⊙ r(1 − r),   da_z = dz ⊙ z(1 − z)
    dh_{t−1} += [da_r | da_z | dgh_n] W_hh         (reset_after=False: the r|z rows only; n went through u)
    dW_ih = Σ_t [da_r | da_z | da_n]ᵀ x_t,   dW_hh = Σ_t [da_r | da_z | dgh_n]ᵀ h_{t−1}
    (reset_after=False: the n rows of dW_hh are Σ_t dgh_nᵀ u_t, u_t = r_t ⊙ h_{t−1})
"""

from collections.abc import Sequence
from functools import partial
from typing import Any, NamedTuple

import numpy as np

from .activations import sigmoid
from .cell import Cell, Params, StepCache, cell_step_backward, cell_step_forward
from .gated import gated_cell
from .gemm import linear, outer
from .gru_fused import GRU_KERNEL
from .sequence import BPTTSteps, SequenceCache, layer_forward, sequence_backward


class GRUStep(NamedTuple):
    """The recurrent part of one step.

    hn_in is what W_hn multiplies (h_prev, or u = r ⊙ h_prev when reset_after=False);
    gh_n = hn_in W_hnᵀ + b_hn.
    """

    h_prev: np.ndarray
    r: np.ndarray
    z: np.ndarray
    n: np.ndarray
    hn_in: np.ndarray
    gh_n: np.ndarray
    weight_hh: np.ndarray
    reset_after: bool


def _forward(gx: np.ndarray, state: tuple[np.ndarray, ...], params: Params, reset_after: bool):
    (h_prev,) = state
    hidden = h_prev.shape[-1]
    weight_hh, bias_hh = params["weight_hh"], params.get("bias_hh")
    gx_rz, gx_n = gx[:, : 2 * hidden], gx[:, 2 * hidden :]
    if reset_after:
        gh = linear(h_prev, weight_hh, bias_hh)
        gh_rz, gh_n = gh[:, : 2 * hidden], gh[:, 2 * hidden :]
    else:
        gh_rz = linear(h_prev, weight_hh[: 2 * hidden], None if bias_hh is None else bias_hh[: 2 * hidden])
    rz = sigmoid(gx_rz + gh_rz)
    r, z = rz[:, :hidden], rz[:, hidden:]
    if reset_after:
        hn_in = h_prev
        n = np.tanh(gx_n + r * gh_n)
    else:
        hn_in = r * h_prev
        gh_n = linear(hn_in, weight_hh[2 * hidden :], None if bias_hh is None else bias_hh[2 * hidden :])
        n = np.tanh(gx_n + gh_n)
    h = (1 - z) * n + z * h_prev
    step = GRUStep(
        h_prev=h_prev, r=r, z=z, n=n, hn_in=hn_in, gh_n=gh_n, weight_hh=weight_hh, reset_after=reset_after
    )
    return (h,), step


def _backward(dstate: tuple[np.ndarray, ...], step: GRUStep):
    (dh,) = dstate
    hidden = dh.shape[-1]
    dn = dh * (1 - step.z)
    dz = dh * (step.h_prev - step.n)
    dh_prev = dh * step.z
    da_n = dn * (1 - step.n * step.n)
    if step.reset_after:
        dgh_n = da_n * step.r
        dr = da_n * step.gh_n
    else:
        dgh_n = da_n
        dhn_in = dgh_n @ step.weight_hh[2 * hidden :]
        dr = dhn_in * step.h_prev
        dh_prev = dh_prev + dhn_in * step.r
    da_rz = np.concatenate([dr * step.r * (1 - step.r), dz * step.z * (1 - step.z)], axis=-1)
    dgx = np.concatenate([da_rz, da_n], axis=-1)
    if step.reset_after:
        dgh = np.concatenate([da_rz, dgh_n], axis=-1)
        dh_prev = dh_prev + dgh @ step.weight_hh
    else:
        dgh = dgx
        dh_prev = dh_prev + da_rz @ step.weight_hh[: 2 * hidden]
    return dgx, (dh_prev,), dgh


def _weight_hh_grad(dgh: np.ndarray, steps: Sequence[GRUStep], per_step: bool) -> np.ndarray:
    """dW_hh rows r|z from h_{t−1}, rows n from hn_in (h_{t−1}, or r ⊙ h_{t−1} when reset_after=False)."""
    h_prev = np.stack([s.h_prev for s in steps])
    if steps[0].reset_after:
        return outer(dgh, h_prev, per_step)
    hidden = h_prev.shape[-1]
    hn_in = np.stack([s.hn_in for s in steps])
    rows_rz = outer(dgh[..., : 2 * hidden], h_prev, per_step)
    return np.concatenate([rows_rz, outer(dgh[..., 2 * hidden :], hn_in, per_step)], axis=-2)


def gru_cell(reset_after: bool = True) -> Cell:
    """The GRU recurrence as a `Cell` (G = 3), for the sequence loop and the stacks."""
    cell = gated_cell(
        "gru", 3, ("h",), partial(_forward, reset_after=reset_after), _backward, _weight_hh_grad
    )
    return cell._replace(fused=GRU_KERNEL) if reset_after else cell


def gru_step_forward(
    x_t: np.ndarray, h_prev: np.ndarray, params: Params, reset_after: bool = True
) -> tuple[np.ndarray, StepCache]:
    """h = (1 − z) ⊙ n + z ⊙ h_prev for one step.   x_t: (N, D), h_prev: (N, H) → h: (N, H)."""
    (h,), cache = cell_step_forward(gru_cell(reset_after), x_t, (h_prev,), params)
    return h, cache


def gru_step_backward(dh: np.ndarray, cache: StepCache) -> tuple[np.ndarray, np.ndarray, Params]:
    """(dx, dh_prev, dparams) for one step; see the module docstring for the equations."""
    dx, (dh_prev,), dparams = cell_step_backward((dh,), cache)
    return dx, dh_prev, dparams


def gru_forward(
    x: np.ndarray,
    h0: np.ndarray,
    params: Params,
    lengths: Any = None,
    reverse: bool = False,
    reset_after: bool = True,
) -> tuple[np.ndarray, np.ndarray, SequenceCache]:
    """One GRU layer.   x: (T, N, D), h0: (N, H) → output (T, N, H), h_n (N, H).

    `lengths` and `reverse` follow PyTorch's packed sequences (see `sequence`).
    """
    output, (h_n,), cache = layer_forward(gru_cell(reset_after), x, (h0,), params, lengths, reverse)
    return output, h_n, cache


def gru_backward(
    doutput: np.ndarray, dh_n: np.ndarray | None, cache: SequenceCache, return_steps: bool = False
) -> tuple[np.ndarray, np.ndarray, Params] | tuple[np.ndarray, np.ndarray, Params, BPTTSteps]:
    """BPTT: (dx (T, N, D), dh0 (N, H), dparams); dh_n may be None (zeros).

    With `return_steps` a fourth element, `BPTTSteps`, holds dL/dh_t per step and each step's
    contribution to every shared parameter's gradient.
    """
    dx, (dh0,), dparams, steps = sequence_backward(doutput, (dh_n,), cache, return_steps)
    return (dx, dh0, dparams, steps) if return_steps else (dx, dh0, dparams)
