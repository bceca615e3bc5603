"""Manual BPTT against the autograd (and central finite differences): `compare(module, inputs)`.

    report = compare(nn.LSTM(3, 4, num_layers=2, dtype="float64", rng=0), x, lengths=[5, 3, 2])
    print(report)          # the table;  report.ok is the verdict

The same weights (copied by `manual.from_module`) run through two independent derivations of every
gradient: the module's forward recorded by the Tensor and differentiated by its backward, and
`tinygrad_rnn.manual`'s hand-written BPTT,

    dL/dh_t = doutput_t + δ_{t+1} W_hh     (the output path plus the path through step t+1)
    δ_t     = dL/dh_t ⊙ φ'(a_t)            (e.g. 1 − h_t² for tanh; the gate derivatives for LSTM, GRU)
    dW      = Σ_t dW_t,  dW_hh,t = δ_tᵀ h_{t−1},  dW_ih,t = δ_tᵀ x_t

on the same loss with the same upstream gradients (see `comparison.problem`).  The report gives,
per parameter, input and initial state, the max absolute and relative error (by gate block for the
stacked weights), per time step ‖dL/dh_t‖ from both paths and manual's per-step ‖dW_t‖ (whose sum
over t is checked against dW), the first step where the paths diverge, and a verdict against a
tolerance that depends on the dtype (relative 1e-10 in float64, 1e-4 in float32).

Language models (Embedding → recurrent stack → Linear, summed cross-entropy) compare the same way,
also with truncated BPTT (`tbptt=k`: k-step chunks, state detached between them, against
`manual.lm_truncated_bptt`), and any comparison can clip by global norm (`max_norm`: nn.utils'
clip_grad_norm_ against manual.clip_grad_norm).
"""

from typing import Any

import numpy as np

from .comparison.autograd_side import run_autograd
from .comparison.finite_differences import element_count, finite_difference_grads
from .comparison.manual_side import run_manual
from .comparison.measures import FD_TOLERANCE, agreement, block_agreements, gate_blocks, tolerance_for
from .comparison.problem import Problem, Run, make_problem
from .comparison.report import Divergence, Report, Row, StepRow, within

__all__ = ["Divergence", "Report", "Row", "StepRow", "compare"]

FD_MAX_ELEMENTS = 2000


def compare(
    module: Any,
    inputs: Any,
    *,
    hx: Any = None,
    lengths: Any = None,
    targets: Any = None,
    tbptt: int | None = None,
    max_norm: float | None = None,
    finite_differences: bool = False,
    fd_max_elements: int = FD_MAX_ELEMENTS,
    seed: int = 0,
    rtol: float | None = None,
) -> Report:
    """Run `module` through the autograd and through manual BPTT on the same inputs; return a `Report`.

    module: nn.RNN / nn.LSTM / nn.GRU (inputs = x in the module's layout, loss Σ output ⊙ G +
        Σ h_n ⊙ G_h (+ Σ c_n ⊙ G_c) with G ~ N(0, 1) drawn from `seed`), or a language model with
        submodules embedding, rnn, decoder (inputs = tokens (T, N), `targets` (T, N), loss the
        cross-entropy summed over valid positions).  x and hx are converted to the parameters' dtype.
    hx: initial state, h0 or (h0, c0) (L·dirs, N, H); zeros when None.  Its gradient is compared for
        recurrent modules.
    lengths: one length per sequence (packed-sequence semantics on both paths).
    tbptt: chunk length k for truncated BPTT (language models only).
    max_norm: clip the parameter gradients by their global norm on every path before comparing.
    finite_differences: also compare both paths with central differences (float64) when at most
        `fd_max_elements` numbers would be perturbed; otherwise the report notes why they were skipped.
    rtol: the relative tolerance; by default 1e-10 for float64 parameters and 1e-4 for float32.

    The module's parameters and their `.grad` are left as they were.
    """
    problem = make_problem(
        module, inputs, hx=hx, lengths=lengths, targets=targets, tbptt=tbptt, max_norm=max_norm, seed=seed
    )
    tolerance = tolerance_for(problem.dtype) if rtol is None else float(rtol)
    autograd, handmade = run_autograd(problem), run_manual(problem)
    if set(autograd.step_dh) != set(handmade.step_dh):
        raise RuntimeError(
            f"compare: the autograd's per-step states cover {sorted(autograd.step_dh)}, the manual path's "
            f"{sorted(handmade.step_dh)}"
        )
    notes = ["per-step dL/dh_t is not recorded across truncated-BPTT chunks"] if problem.tbptt else []
    fd = None
    if finite_differences and problem.tbptt is not None:
        notes.append("finite differences skipped: truncated BPTT's gradient is not the loss's gradient")
    elif finite_differences and element_count(problem) > fd_max_elements:
        notes.append(
            f"finite differences skipped: {element_count(problem)} numbers to perturb "
            f"> fd_max_elements={fd_max_elements}"
        )
    elif finite_differences:
        fd = finite_difference_grads(problem)
    rows = _rows(problem, autograd, handmade, fd, tolerance)
    steps = _step_rows(problem, autograd, handmade, tolerance)
    return Report(
        title=_title(problem, seed),
        loss=_loss_text(problem, seed),
        dtype=problem.dtype,
        tolerance=tolerance,
        rows=rows,
        steps=steps,
        divergence=_first_divergence(problem, autograd, handmade, rows, steps, tolerance),
        notes=tuple(notes),
    )


def _rows(
    problem: Problem,
    autograd: Run,
    handmade: Run,
    fd: tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None,
    tolerance: float,
) -> tuple[Row, ...]:
    """Forward values, the total norm when clipping, the parameter gradients, then dL/dx, dL/dh0 ..."""
    fd_tolerance = max(tolerance, FD_TOLERANCE) if fd is not None else None
    rows = [
        Row(key, "forward", np.shape(a), agreement(a, handmade.forward[key]), tolerance)
        for key, a in autograd.forward.items()
    ]
    if problem.max_norm is not None:
        norms = np.array(autograd.total_norm), np.array(handmade.total_norm)
        rows.append(Row("total grad norm", "clip", (), agreement(*norms), tolerance))
    clipping = problem.max_norm is not None
    auto_params = autograd.clipped if clipping else autograd.params
    manual_params = handmade.clipped if clipping else handmade.params
    per_step = {key: parts for record in handmade.step_dparams.values() for key, parts in record.items()}
    for kind, auto, hand, reference in (
        ("parameter", auto_params, manual_params, None if fd is None else fd[0]),
        ("input", autograd.inputs, handmade.inputs, None if fd is None else fd[1]),
    ):
        for name, a in auto.items():
            m = hand[name]
            steps_sum = None
            if name in per_step:
                steps_sum = agreement(per_step[name].sum(axis=0), handmade.params[name]).rel
            rows.append(
                Row(
                    name,
                    kind,
                    a.shape,
                    agreement(a, m),
                    tolerance,
                    blocks=block_agreements(a, m, gate_blocks(name, a.shape, problem.rnn.mode)),
                    fd_autograd=None if reference is None else agreement(a, reference[name]).rel,
                    fd_manual=None if reference is None else agreement(m, reference[name]).rel,
                    fd_tolerance=fd_tolerance,
                    steps_sum=steps_sum,
                )
            )
    return tuple(rows)


def _step_rows(problem: Problem, autograd: Run, handmade: Run, tolerance: float) -> tuple[StepRow, ...]:
    """Per layer-direction and step: ‖dL/dh_t‖ by both paths, their error, manual's ‖dW_t‖."""
    prefix = "rnn." if problem.is_lm else ""
    rows = []
    for stream, m in handmade.step_dh.items():
        a = autograd.step_dh[stream]
        scale = max(float(np.max(np.abs(a))), float(np.max(np.abs(m))))
        parts = handmade.step_dparams[stream]
        dw_ih, dw_hh = parts[f"{prefix}weight_ih_{stream}"], parts[f"{prefix}weight_hh_{stream}"]
        for t in range(len(m)):
            err = float(np.max(np.abs(a[t] - m[t])))
            rows.append(
                StepRow(
                    stream,
                    t,
                    float(np.linalg.norm(a[t])),
                    float(np.linalg.norm(m[t])),
                    err / scale if scale > 0 else err,
                    tolerance,
                    float(np.linalg.norm(dw_ih[t])),
                    float(np.linalg.norm(dw_hh[t])),
                )
            )
    return tuple(rows)


def _first_output_step(problem: Problem, a: np.ndarray, m: np.ndarray, tolerance: float) -> int | None:
    """The first time step whose forward output differs beyond the tolerance."""
    axis = 1 if problem.rnn.batch_first and a.ndim == 3 else 0
    scale = max(float(np.max(np.abs(a))), float(np.max(np.abs(m))), np.finfo(np.float64).tiny)
    for t in range(a.shape[axis]):
        if not within(float(np.max(np.abs(np.take(a - m, t, axis=axis)))) / scale, tolerance):
            return t
    return None


def _bptt_position(step: StepRow, steps: int) -> tuple[int, int]:
    """Sort key of the order BPTT visits steps: top layer first; T−1 → 0 forward, 0 → T−1 reverse."""
    layer = int(step.stream[1:].split("_")[0])
    return -layer, step.t if step.stream.endswith("_reverse") else steps - 1 - step.t


def _first_divergence(
    problem: Problem,
    autograd: Run,
    handmade: Run,
    rows: tuple[Row, ...],
    steps: tuple[StepRow, ...],
    tolerance: float,
) -> Divergence | None:
    """Forward values first, then dL/dh_t in BPTT order, then the first disagreeing gradient row."""
    for r in rows:
        if r.kind == "forward" and not r.ok:
            step = None
            if r.name == "output":
                step = _first_output_step(
                    problem, autograd.forward["output"], handmade.forward["output"], tolerance
                )
            return Divergence(r.name, None, step, r.error.rel)
    failing = [s for s in steps if not s.ok]
    if failing:
        length = max(s.t for s in steps) + 1
        s = min(failing, key=lambda s: _bptt_position(s, length))
        return Divergence("dL/dh_t", s.stream, s.t, s.error)
    for r in rows:
        checks = (
            (r.name, r.error.rel, r.tolerance),
            (f"{r.name} (autograd vs finite differences)", r.fd_autograd, r.fd_tolerance),
            (f"{r.name} (manual vs finite differences)", r.fd_manual, r.fd_tolerance),
            (f"Σ_t dW_t of {r.name}", r.steps_sum, r.tolerance),
        )
        for label, value, limit in checks:
            if not within(value, limit):
                return Divergence(label, None, None, value)
    return None


def _title(problem: Problem, seed: int) -> str:
    module = problem.module
    if problem.is_lm:
        vocab, width = module.embedding.weight.shape
        text = f"compare: LanguageModel(vocab={vocab}, embedding={width}, {problem.rnn!r})"
        text += f" · tokens {problem.tokens.shape}"
    else:
        text = f"compare: {module!r} · x {problem.x.shape}"
    if problem.lengths is not None:
        text += f" · lengths {problem.lengths.tolist()}"
    if problem.tbptt is not None:
        text += f" · truncated BPTT k={problem.tbptt}"
    if problem.max_norm is not None:
        text += f" · clip max_norm={problem.max_norm:g}"
    return text + f" · {problem.dtype} · seed {seed}"


def _loss_text(problem: Problem, seed: int) -> str:
    if problem.is_lm:
        text = "Σ_t Σ_n −log softmax(o_t)[y_t] over valid positions (summed, not averaged)"
        if problem.tbptt is not None:
            text += f", in chunks of {problem.tbptt} steps with the state detached between chunks"
        return text
    text = "Σ output ⊙ G + Σ h_n ⊙ G_h" + (" + Σ c_n ⊙ G_c" if "c_n" in problem.upstream else "")
    return text + f", G ~ N(0, 1) from seed {seed}"
