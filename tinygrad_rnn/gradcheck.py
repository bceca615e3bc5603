"""gradcheck: autograd gradients against central finite differences, in float64."""

from collections.abc import Callable, Sequence

import numpy as np

from .context import no_grad
from .numeric import numerical_gradient
from .tensor import Tensor


class GradcheckError(AssertionError):
    """Raised by `gradcheck` when an analytic gradient disagrees with the numeric one."""


def _as_scalar_loss(out: Tensor, projection: np.ndarray | None) -> Tensor:
    """A scalar from fn's output: itself, or Σ out ⊙ G with a fixed random G.

    A random G (not all ones) makes permuted or transposed gradients show up.
    """
    return out if projection is None else (out * Tensor(projection, dtype=out.dtype)).sum()


def gradcheck(
    fn: Callable[..., Tensor],
    inputs: Sequence[Tensor],
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    seed: int = 0,
) -> bool:
    """Check d fn(*inputs) / d input for every input that requires grad; True, or GradcheckError.

    fn returns a Tensor; a non-scalar output is reduced to Σ out ⊙ G with a random G drawn from
    `seed`. Each element passes when |analytic − numeric| ≤ atol + rtol·|numeric|; the error names
    the worst element: the input (position and name), the index, both values.
    """
    inputs = list(inputs)
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad, nothing to check")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise TypeError(
                f"gradcheck: input {i} has dtype {inputs[i].dtype}; finite differences need float64 "
                "(pass .double() tensors)"
            )
    out = fn(*inputs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    projection = None if out.size == 1 else np.random.default_rng(seed).standard_normal(out.shape)
    saved_grads = [inputs[i].grad for i in checked]
    for i in checked:
        inputs[i].grad = None
    _as_scalar_loss(out, projection).backward()
    analytic = {
        i: inputs[i].grad.data if inputs[i].grad is not None else np.zeros(inputs[i].shape) for i in checked
    }
    for i, grad in zip(checked, saved_grads, strict=True):
        inputs[i].grad = grad

    def loss() -> float:
        with no_grad():
            return _as_scalar_loss(fn(*inputs), projection).item()

    for i in checked:
        data = inputs[i].data
        if not data.flags.c_contiguous or not data.flags.writeable:
            inputs[i].data = data = np.ascontiguousarray(data).copy()
        numeric = numerical_gradient(loss, data, eps)
        error = np.abs(analytic[i] - numeric) - (atol + rtol * np.abs(numeric))
        if (error > 0).any():
            index = np.unravel_index(int(np.argmax(error)), numeric.shape)
            name = f" ({inputs[i].name!r})" if inputs[i].name else ""
            raise GradcheckError(
                f"gradcheck: input {i}{name} of shape {numeric.shape}: at index {tuple(map(int, index))} "
                f"numeric {numeric[index]:.10g} vs analytic {analytic[i][index]:.10g} "
                f"({int((error > 0).sum())} of {numeric.size} elements outside atol={atol}, rtol={rtol})"
            )
    return True
