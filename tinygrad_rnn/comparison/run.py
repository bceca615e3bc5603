"""compare(): every path run on one problem, the rows and steps built, the first divergence found."""

from collections.abc import Callable
from typing import Any

import numpy as np

from .autograd_side import run_autograd
from .finite_differences import element_count, finite_difference_grads
from .manual_side import run_manual
from .measures import FD_TOLERANCE, agreement, block_agreements, gate_blocks, tolerance_for
from .problem import Problem, Run, make_problem
from .report import Divergence, Report, Row, StepRow, within
from .single_steps import single_step_errors

FD_MAX_ELEMENTS = 2000


def compare(
    module: Any,
    inputs: Any,
    *,
    hx: Any = None,
    lengths: Any = None,
    manual: tuple[Callable[..., Any], Callable[..., Any]] | None = None,
    finite_differences: bool = False,
    targets: Any = None,
    tbptt: int | None = None,
    max_norm: float | None = None,
    fd_max_elements: int = FD_MAX_ELEMENTS,
    seed: int = 0,
    rtol: float | None = None,
) -> Report:
    """Run `module` through the autograd and through manual BPTT on the same inputs; return a `Report`.

    module: a recurrent layer — nn.RNN / nn.LSTM / nn.GRU, or nn.Recurrent of any cell — (inputs = x
        in the layer's layout, loss Σ output ⊙ G + Σ h_n ⊙ G_h (+ Σ c_n ⊙ G_c ...) with G ~ N(0, 1)
        drawn from `seed`), or a language model with submodules embedding, rnn, decoder (inputs =
        tokens (T, N), `targets` (T, N), loss the cross-entropy summed over valid positions).  x and
        hx are converted to the parameters' dtype.
    hx: initial state in the layer's form, h0 or a tuple such as (h0, c0), each (L·dirs, N, H);
        zeros when None.  Its gradient is compared for recurrent layers.
    lengths: one length per sequence (packed-sequence semantics on every path).
    manual: the cell's hand-written pair (step_forward, step_backward) (see `manual.cell`), with
        params keyed by the cell's own parameter names.  By default the built-in layers' and cells'
        own pairs; a custom cell without one needs `finite_differences=True`, and then its autograd
        is compared with finite differences alone.
    finite_differences: also compare with central differences (float64) when at most
        `fd_max_elements` numbers would be perturbed; otherwise the report notes why they were skipped.
    tbptt: chunk length k for truncated BPTT (language models only).
    max_norm: clip the parameter gradients by their global norm on every path before comparing.
    rtol: the relative tolerance; by default 1e-10 for float64 parameters and 1e-4 for float32
        (1e-6 against finite differences alone).

    The module's parameters and their `.grad` are left as they were.
    """
    problem = make_problem(
        module,
        inputs,
        hx=hx,
        lengths=lengths,
        targets=targets,
        tbptt=tbptt,
        max_norm=max_norm,
        seed=seed,
        manual=manual,
        finite_differences=finite_differences,
    )
    autograd = run_autograd(problem)
    notes = ["per-step dL/dh_t is not recorded across truncated-BPTT chunks"] if problem.tbptt else []
    fd = _finite_differences(problem, finite_differences, fd_max_elements, notes)
    if problem.manual is None:
        if fd is None:
            raise ValueError(f"compare: nothing to compare the autograd with: {notes[-1]}")
        return _against_finite_differences(problem, autograd, fd, notes, seed, rtol)
    tolerance = tolerance_for(problem.dtype) if rtol is None else float(rtol)
    handmade = run_manual(problem)
    if set(autograd.step_dh) != set(handmade.step_dh):
        raise RuntimeError(
            f"compare: the autograd's per-step states cover {sorted(autograd.step_dh)}, the manual path's "
            f"{sorted(handmade.step_dh)}"
        )
    rows = _rows(problem, autograd, handmade, fd, tolerance)
    steps = _step_rows(
        problem, autograd, handmade, single_step_errors(problem, handmade.records or {}), tolerance
    )
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


def _finite_differences(
    problem: Problem, asked: bool, max_elements: int, notes: list[str]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None:
    """The finite-difference gradients when asked and affordable; otherwise a note says why not."""
    if not asked:
        return None
    if problem.tbptt is not None:
        notes.append("finite differences skipped: truncated BPTT's gradient is not the loss's gradient")
    elif element_count(problem) > max_elements:
        notes.append(
            f"finite differences skipped: {element_count(problem)} numbers to perturb "
            f"> fd_max_elements={max_elements}"
        )
    elif problem.manual is None and problem.dtype != np.float64:
        notes.append(
            f"finite differences skipped: they perturb the layer's own {problem.dtype} parameters, which "
            "must be float64 (module.double())"
        )
    else:
        return finite_difference_grads(problem)
    return None


def _against_finite_differences(
    problem: Problem,
    autograd: Run,
    fd: tuple[dict[str, np.ndarray], dict[str, np.ndarray]],
    notes: list[str],
    seed: int,
    rtol: float | None,
) -> Report:
    """The report of a layer without a manual path: its autograd against finite differences alone."""
    tolerance = FD_TOLERANCE if rtol is None else float(rtol)
    reference = Run({}, fd[0], fd[1], {}, {}, fd[0] if problem.max_norm is not None else None, None)
    rows = _rows(problem, autograd, reference, None, tolerance)
    return Report(
        title=_title(problem, seed) + " · autograd vs finite differences",
        loss=_loss_text(problem, seed),
        dtype=problem.dtype,
        tolerance=tolerance,
        rows=rows,
        steps=(),
        divergence=_first_divergence(problem, autograd, reference, rows, (), tolerance),
        notes=tuple(notes),
        reference="finite differences agree with",
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
        if key in handmade.forward
    ]
    if problem.max_norm is not None and handmade.total_norm is not None:
        norms = np.array(autograd.total_norm), np.array(handmade.total_norm)
        rows.append(Row("total grad norm", "clip", (), agreement(*norms), tolerance))
    clipping = problem.max_norm is not None
    auto_params = autograd.clipped if clipping else autograd.params
    manual_params = handmade.clipped if clipping else handmade.params
    per_step = {key: parts for record in handmade.step_dparams.values() for key, parts in record.items()}
    mode = getattr(problem.layer, "mode", None)
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
                    blocks=block_agreements(a, m, gate_blocks(name, a.shape, mode)),
                    fd_autograd=None if reference is None else agreement(a, reference[name]).rel,
                    fd_manual=None if reference is None else agreement(m, reference[name]).rel,
                    fd_tolerance=fd_tolerance,
                    steps_sum=steps_sum,
                )
            )
    return tuple(rows)


def _weight_label(key: str, prefix: str, stream: str) -> str:
    """The cell-level name of a layer-level key of one layer-direction ('weight_ih_l0' → 'W_ih',
    'cell_l0.peep_i' → 'peep_i'), as the step table's column label."""
    name = key.removeprefix(prefix).removeprefix(f"cell_{stream}.").removesuffix(f"_{stream}")
    return {"weight_ih": "W_ih", "weight_hh": "W_hh"}.get(name, name)


def _step_rows(
    problem: Problem,
    autograd: Run,
    handmade: Run,
    single: dict[str, list[tuple[str, float]]],
    tolerance: float,
) -> tuple[StepRow, ...]:
    """Per layer-direction and step: ‖dL/dh_t‖ by both paths, their error, manual's ‖dθ_t‖ per weight,
    and where the cells are modules the worst error of the step's backward against the step re-run
    alone."""
    prefix = "rnn." if problem.is_lm else ""
    rows = []
    for stream, m in handmade.step_dh.items():
        a = autograd.step_dh[stream]
        scale = max(float(np.max(np.abs(a))), float(np.max(np.abs(m))))
        parts = {_weight_label(key, prefix, stream): g for key, g in handmade.step_dparams[stream].items()}
        weights = {label: g for label, g in parts.items() if not label.startswith("bias")}
        for t in range(len(m)):
            err = float(np.max(np.abs(a[t] - m[t])))
            step_param, step_error = single[stream][t] if stream in single else (None, None)
            rows.append(
                StepRow(
                    stream,
                    t,
                    float(np.linalg.norm(a[t])),
                    float(np.linalg.norm(m[t])),
                    err / scale if scale > 0 else err,
                    tolerance,
                    tuple((label, float(np.linalg.norm(g[t]))) for label, g in weights.items()),
                    step_param,
                    step_error,
                )
            )
    return tuple(rows)


def _first_output_step(problem: Problem, a: np.ndarray, m: np.ndarray, tolerance: float) -> int | None:
    """The first time step whose forward output differs beyond the tolerance."""
    axis = 1 if problem.layer.batch_first and a.ndim == 3 else 0
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
        if s.dh_ok:
            return Divergence(s.step_param, s.stream, s.t, s.step_error)
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
        layer = f"{type(problem.layer).__name__}({problem.layer.extra_repr()})"
        text = f"compare: LanguageModel(vocab={vocab}, embedding={width}, {layer})"
        text += f" · tokens {problem.tokens.shape}"
    else:
        text = f"compare: {type(module).__name__}({module.extra_repr()}) · x {problem.x.shape}"
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
    finals = " + ".join(f"Σ {name}_n ⊙ G_{name}" for name in problem.state_names)
    return f"Σ output ⊙ G + {finals}, G ~ N(0, 1) from seed {seed}"
