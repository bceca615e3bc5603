"""The pieces of `tinygrad_rnn.compare`: manual BPTT against the autograd (and finite differences).

problem.py             the inputs both paths share: arrays, upstream gradients G, options
autograd_side.py       the run through nn modules and the Tensor's backward
manual_side.py         the same run through `tinygrad_rnn.manual`
finite_differences.py  central differences of the manual forward, in float64
measures.py            errors (absolute, relative), tolerances, gate blocks
report.py              the `Report` and its table
"""
