"""Errors shared by the library's layers.

`ShapeError` is raised where PyTorch raises RuntimeError for a shape or size mismatch (an input of
the wrong width, an initial state of the wrong shape, a batch that does not match, a sequence with
no steps). It is both a ValueError (what a Python caller expects for a bad argument) and a
RuntimeError (what code written for PyTorch catches), as numpy's AxisError is both ValueError and
IndexError. `DTypeError` does the same for dtypes.
"""


class DTypeError(TypeError, ValueError, RuntimeError):
    """A tensor's dtype does not fit (a float64 input to float32 weights, an optimizer state left in
    float32 after `model.double()`): torch raises ValueError or RuntimeError there, Python code
    expects TypeError, and this is all three."""


class ShapeError(ValueError, RuntimeError):
    """A tensor's shape or size does not fit: the message names what was expected and what came."""
