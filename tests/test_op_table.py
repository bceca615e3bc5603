"""The op table (op_table.py) is complete: every public op has a row, every op class is some row's,
each row records the op class it names, and the fuzzer draws every row. Forgetting one fails here."""

import inspect

import numpy as np
import pytest
from op_table import BY_NAME, KINDS, ROWS, Row, of_kind

import tinygrad_rnn as tg
from tinygrad_rnn import ops
from tinygrad_rnn.context import current_tape
from tinygrad_rnn.nn import functional as F  # noqa: N812
from tinygrad_rnn.replay import Tape
from tinygrad_rnn.viz.graph import build

# Tensor methods that make no new value in the graph (conversions, bookkeeping, gradient handling)
NOT_OPS = {
    "numpy", "item", "tolist", "detach", "requires_grad_", "retain_grad", "zero_grad", "backward", "numel",
    "dim", "data_changed", "__init__", "__repr__", "__len__", "__iter__", "__float__", "__int__",
    "__bool__", "__setitem__", "__hash__",
}  # fmt: skip
# other names of a row's op, and the operators
ALIASES = {
    "clamp": "clip", "view": "reshape", "float": "to", "double": "to", "__add__": "add", "__radd__": "add",
    "__sub__": "sub", "__rsub__": "sub", "__mul__": "mul", "__rmul__": "mul", "__truediv__": "div",
    "__rtruediv__": "reciprocal", "__neg__": "neg", "__pow__": "pow", "__rpow__": "pow_tensor",
    "__matmul__": "matmul", "__rmatmul__": "matmul", "__getitem__": "getitem", "__lt__": "lt",
    "__le__": "le", "__gt__": "gt", "__ge__": "ge", "__eq__": "eq", "__ne__": "ne",
}  # fmt: skip
# what tinygrad_rnn exports besides ops: classes, factories, contexts, tools and packages
NOT_OP_EXPORTS = {
    "Function", "GradcheckError", "Tensor", "arange", "compare", "enable_grad", "eye", "gradcheck",
    "is_grad_enabled", "keep_freed_memory", "load", "manual", "nn", "optim", "viz", "no_grad", "ones",
    "ones_like", "rand", "randn", "save", "scope", "zeros", "zeros_like", "export",
}  # fmt: skip
NOT_FUZZED = {
    "to": "a float32 value in a float64 program would break the 1e-10 agreement with torch",
    "dropout": "it draws from an rng, which torch draws from differently",
    **dict.fromkeys(
        ("lt", "le", "gt", "ge", "eq", "ne", "argmax"),
        "no gradient to compare; masks from comparisons run in the fuzzer's ThresholdCell and in "
        "test_pure_steps' generated cells",
    ),
}


def test_every_public_tensor_op_has_a_row() -> None:
    names = [n for n, v in vars(tg.Tensor).items() if callable(v) and (n.startswith("__") or n[0] != "_")]
    missing = [n for n in names if n not in NOT_OPS and ALIASES.get(n, n) not in BY_NAME]
    assert not missing, f"Tensor ops without a row in tests/op_table.py: {missing}"


def test_every_function_of_the_package_and_of_nn_functional_has_a_row() -> None:
    exported = [n for n in tg.__all__ if n not in NOT_OP_EXPORTS]
    functional = [n for n in F.__all__ if inspect.isfunction(getattr(F, n))]
    missing = [n for n in exported + functional if n not in BY_NAME]
    assert not missing, f"functions without a row in tests/op_table.py: {missing}"


def test_every_op_class_is_some_rows() -> None:
    classes = {c for c in vars(ops).values() if isinstance(c, type) and issubclass(c, tg.Function)}
    missing = sorted(c.__name__ for c in classes - {row.op for row in ROWS} - {tg.Function})
    assert not missing, f"op classes no row of tests/op_table.py records: {missing}"


@pytest.mark.parametrize("row", [r for r in ROWS if r.op is not None], ids=[r.name for r in ROWS if r.op])
def test_each_row_records_the_op_class_it_names(row: Row) -> None:
    rng = np.random.default_rng(0)
    tape = Tape()  # what a step being recorded for replay sees, ops without a gradient included
    token = current_tape.set(tape)
    try:
        row.tiny(*[tg.Tensor(make(rng), requires_grad=True) for make in row.inputs])
    finally:
        current_tape.reset(token)
    assert tape.calls[-1][0] is row.op
    assert row.kind in KINDS


@pytest.mark.parametrize("row", of_kind("comparison"), ids=lambda r: r.name)
def test_comparisons_give_torchs_values_and_no_gradient(row: Row) -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    arrays = [make(rng) for make in row.inputs]
    ours = row.tiny(*[tg.Tensor(a, requires_grad=True) for a in arrays])
    theirs = row.torch_call(*[torch.tensor(a, requires_grad=True) for a in arrays])
    assert not ours.requires_grad and ours.dtype == theirs.numpy().dtype
    np.testing.assert_array_equal(ours.data, theirs.numpy())


def test_the_fuzzer_draws_every_row() -> None:
    pytest.importorskip("torch")
    from fuzz_programs import OPS

    missing = [row.name for row in ROWS if row.name not in OPS and row.name not in NOT_FUZZED]
    assert not missing, f"rows the fuzzer (tests/fuzz_programs.py) never draws: {missing}"


@pytest.mark.parametrize("row", [r for r in ROWS if r.op and len(r.shapes) == 1], ids=lambda r: r.name)
def test_a_picture_draws_an_op_of_a_named_parameter_as_the_parameter_when_it_rearranges_or_slices(
    row: Row,
) -> None:
    rng = np.random.default_rng(0)
    weight = tg.Tensor(row.inputs[0](rng), requires_grad=True)
    out = row.tiny(weight)
    nodes, root = build(out[0] if isinstance(out, tuple) else out, {id(weight.node): "weight"})
    assert (nodes[root].name == "weight") == (
        row.op.rearranges or row.op.view
    )  # a named parameter's slice too
