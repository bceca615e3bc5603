"""Per-op overhead of the autograd (µs per call on small arrays) and a 10,000-step chain.

Prints tables; asserts nothing. Ratios against the bare numpy call show the engine's own cost.
"""

import time
from collections.abc import Callable

import numpy as np

import tinygrad_rnn as tg


def best_of(fn: Callable[[], object], repeat: int = 5, number: int = 2000) -> float:
    """Seconds per call: the best of `repeat` timings of `number` calls."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best


def op_table() -> None:
    rng = np.random.default_rng(0)
    a_np = rng.standard_normal((8, 8)).astype(np.float32)
    b_np = rng.standard_normal((8, 8)).astype(np.float32)
    a, b = tg.Tensor(a_np, requires_grad=True), tg.Tensor(b_np, requires_grad=True)
    cases = {
        "add": (lambda: a + b, lambda: a_np + b_np),
        "mul": (lambda: a * b, lambda: a_np * b_np),
        "matmul": (lambda: a @ b, lambda: a_np @ b_np),
        "tanh": (lambda: a.tanh(), lambda: np.tanh(a_np)),
        "sigmoid": (lambda: a.sigmoid(), lambda: 1 / (1 + np.exp(-a_np))),
        "sum": (lambda: a.sum(), lambda: a_np.sum()),
        "getitem": (lambda: a[2], lambda: a_np[2]),
        "chunk(4)": (lambda: a.chunk(4, 1), lambda: np.split(a_np, 4, 1)),
        "stack(8)": (lambda: tg.stack([a] * 8), lambda: np.stack([a_np] * 8)),
    }
    print(f"{'op (8x8 float32)':<18}{'numpy µs':>10}{'forward µs':>12}{'fwd+bwd µs':>12}{'fwd/numpy':>11}")
    for name, (op, reference) in cases.items():
        numpy_time = best_of(reference)
        forward_time = best_of(op)

        def forward_backward(op: Callable[[], object] = op) -> None:
            out = op()
            root = tg.stack(list(out)).sum() if isinstance(out, tuple) else out.sum()
            root.backward()

        both = best_of(forward_backward, number=500)
        print(
            f"{name:<18}{numpy_time * 1e6:>10.2f}{forward_time * 1e6:>12.2f}{both * 1e6:>12.2f}"
            f"{forward_time / numpy_time:>11.1f}"
        )
    with tg.no_grad():
        print(f"{'add under no_grad':<18}{'':>10}{best_of(lambda: a + b) * 1e6:>12.2f}")


def chain(steps: int = 10_000, hidden: int = 32) -> None:
    rng = np.random.default_rng(0)
    w_np = (rng.standard_normal((hidden, hidden)) * 0.2).astype(np.float32)
    w = tg.Tensor(w_np, requires_grad=True)
    start = time.perf_counter()
    h = tg.ones(1, hidden)
    for _ in range(steps):
        h = (h @ w).tanh()
    middle = time.perf_counter()
    h.sum().backward()
    end = time.perf_counter()
    start_np = time.perf_counter()
    hs = [np.ones((1, hidden), dtype=np.float32)]
    for _ in range(steps):
        hs.append(np.tanh(hs[-1] @ w_np))
    dh, dw = np.ones((1, hidden), dtype=np.float32), np.zeros_like(w_np)
    for t in range(steps, 0, -1):
        da = dh * (1 - hs[t] * hs[t])
        dw += hs[t - 1].T @ da
        dh = da @ w_np.T
    end_np = time.perf_counter()
    print(
        f"\nchain of {steps} (h @ W).tanh() steps, H={hidden}: forward {(middle - start) * 1e3:.1f} ms, "
        f"backward {(end - middle) * 1e3:.1f} ms; "
        f"hand-written numpy fwd+bwd {(end_np - start_np) * 1e3:.1f} ms "
        f"(ratio {(end - start) / (end_np - start_np):.2f})"
    )


if __name__ == "__main__":
    op_table()
    chain()
