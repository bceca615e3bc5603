"""Manual BPTT against the autograd (and central finite differences): `compare(module, inputs)`.

    report = compare(nn.LSTM(3, 4, num_layers=2, dtype="float64", rng=0), x, lengths=[5, 3, 2])
    print(report)          # the table;  report.ok is the verdict

The same weights (copied under the module's own parameter names) run through two independent
derivations of every gradient: the module's forward recorded by the Tensor and differentiated by
its backward, and `tinygrad_rnn.manual`'s hand-written BPTT,

    dL/dh_t = doutput_t + δ_{t+1} W_hh     (the output path plus the path through step t+1)
    δ_t     = dL/dh_t ⊙ φ'(a_t)            (e.g. 1 − h_t² for tanh; the gate derivatives for LSTM, GRU)
    dW      = Σ_t dW_t,  dW_hh,t = δ_tᵀ h_{t−1},  dW_ih,t = δ_tᵀ x_t

on the same loss with the same upstream gradients (see `problem`).  Any cell compares the same way:
nn.Recurrent(MyCell, ...) with `manual=(step_forward, step_backward)`, the cell's own hand-written
step pair (the protocol of `manual.cell`), which manual's machinery runs over layers, directions and
lengths; without a pair, `finite_differences=True` checks the layer's autograd alone.

The report gives, per parameter, input and initial state, the max absolute and relative error (by
gate block for the built-ins' stacked weights), per time step ‖dL/dh_t‖ from both paths and manual's
per-step ‖dθ_t‖ (whose sum over t is checked against dθ), the first step where the paths diverge,
and a verdict against a tolerance that depends on the dtype (relative 1e-10 in float64, 1e-4 in
float32).

Language models (Embedding → recurrent stack → Linear, summed cross-entropy) compare the same way,
also with truncated BPTT (`tbptt=k`: k-step chunks, state detached between them, against
`manual.lm_truncated_bptt`), and any comparison can clip by global norm (`max_norm`: nn.utils'
clip_grad_norm_ against manual.clip_grad_norm).

    run.py                 compare(): the paths run, the rows and steps built, the first divergence
    problem.py             the inputs every path shares: arrays, upstream gradients G, the manual cell
    autograd_side.py       the run through the nn module and the Tensor's backward
    manual_side.py         the same run through `tinygrad_rnn.manual`
    finite_differences.py  central differences in float64
    measures.py            errors (absolute, relative), tolerances, gate blocks
    report.py              the `Report` and its table
"""

from .report import Divergence, Report, Row, StepRow
from .run import compare

__all__ = ["Divergence", "Report", "Row", "StepRow", "compare"]
