"""Parameters and configuration read from a module, so the manual functions reproduce it.

Duck-typed: a module is anything with `named_parameters()` yielding (name, p) where `np.asarray(p.data)`
is the value — this library's modules and torch.nn modules alike.  Nothing here imports a Tensor.
"""

from typing import Any

import numpy as np

from .cell import Params

MODES = {
    "RNN_TANH": {"mode": "rnn", "nonlinearity": "tanh"},
    "RNN_RELU": {"mode": "rnn", "nonlinearity": "relu"},
    "LSTM": {"mode": "lstm"},
    "GRU": {"mode": "gru"},
}


def recurrent_config(module: Any) -> dict[str, Any]:
    """Keyword arguments of `recurrent_forward` from a recurrent module's attributes.

    Reads `mode` ('RNN_TANH', 'RNN_RELU', 'LSTM', 'GRU' as in PyTorch), `num_layers`, `bidirectional`,
    `batch_first`, and for GRU `reset_after` (True when absent, as PyTorch's GRU has no such flag).
    """
    mode = getattr(module, "mode", None)
    if mode not in MODES:
        raise ValueError(f"from_module: expected a module whose mode is one of {sorted(MODES)}, got {mode!r}")
    config = dict(MODES[mode])
    config.update(
        num_layers=int(module.num_layers),
        bidirectional=bool(module.bidirectional),
        batch_first=bool(module.batch_first),
    )
    if mode == "GRU":
        config["reset_after"] = bool(getattr(module, "reset_after", True))
    return config


def from_module(module: Any) -> tuple[Params, dict[str, Any]]:
    """(params, config): copies of the module's parameters under its own names, and keyword arguments.

    A recurrent module (nn.RNN / nn.LSTM / nn.GRU-like) gives params with layer-level keys and a config
    for `recurrent_forward(x=x, params=params, **config)` (config holds `mode`).  A language model —
    a module with submodules `embedding`, `rnn` and `decoder` — gives params with the keys
    'embedding.weight', 'rnn.weight_ih_l0', ..., 'decoder.weight', 'decoder.bias' and the config of
    its `rnn`, for `lm_forward(tokens, targets, params, **config)`.
    """
    is_lm = all(hasattr(module, name) for name in ("embedding", "rnn", "decoder"))
    config = recurrent_config(module.rnn if is_lm else module)
    params = {name: np.asarray(p.data).copy() for name, p in module.named_parameters()}
    return params, config
