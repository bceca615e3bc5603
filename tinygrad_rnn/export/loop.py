"""The PyTorch text of what surrounds the cells: the generic layer loop (nn.Recurrent's), the built-in
layers (torch's own nn.RNN/LSTM/GRU, the same weights under the same names) and the language model.

`RECURRENT` is copied into every file that exports a cell: it is layer.py's loop written for torch,
with the same meaning of hx, lengths (a padded step leaves the state alone and outputs zeros),
dropout between layers, `batch_first`, unbatched inputs and packed sequences.
"""

from __future__ import annotations

RECURRENT = '''
class Recurrent(nn.Module):
    """tinygrad_rnn's nn.Recurrent loop: forward(input, hx=None, lengths=None) -> (output, h_n).

    input (T, N, D) ((N, T, D) with batch_first, (T, D) unbatched, or a PackedSequence); hx and h_n
    in the cell's state structure, each part (layers * directions, N, H). With lengths, a sequence's
    padded steps leave its state alone and output zeros; h_n is its last valid state.
    """

    def __init__(self, cells, num_layers, bidirectional, batch_first, dropout):
        super().__init__()
        for name, cell in cells.items():
            self.add_module(name, cell)
        self.num_layers, self.num_directions = num_layers, 2 if bidirectional else 1
        self.batch_first, self.dropout = batch_first, dropout

    def forward(self, input, hx=None, lengths=None):
        if isinstance(input, PackedSequence):
            padded, lengths = pad_packed_sequence(input, batch_first=self.batch_first)
            output, h_n = self.forward(padded, hx, lengths)
            packed = pack_padded_sequence(output, lengths, batch_first=self.batch_first, enforce_sorted=False)
            return packed, h_n
        batched = input.dim() == 3
        x = input if batched else input.unsqueeze(1)
        if batched and self.batch_first:
            x = x.transpose(0, 1)
        steps = x.shape[0]
        masks = [None] * steps
        if lengths is not None:
            lengths = torch.as_tensor(lengths, device=x.device)
            shortest = int(lengths.min())
            masks = [None if t < shortest else (lengths > t)[:, None] for t in range(steps)]
        states = [None] * (self.num_layers * self.num_directions)
        if isinstance(hx, tuple | list):
            parts = [p if batched else p.unsqueeze(1) for p in hx]
            states = [tuple(p[r] for p in parts) for r in range(len(states))]
        elif hx is not None:
            states = list((hx if batched else hx.unsqueeze(1)).unbind(0))
        finals = []
        for layer in range(self.num_layers):
            outputs = []
            for reverse in (False, True)[: self.num_directions]:
                cell = getattr(self, f"cell_l{layer}" + ("_reverse" if reverse else ""))
                state, out = states[len(finals)], [None] * steps
                # without hx each sequence begins from what the cell makes of None, once, also the
                # shorter ones of the reverse direction, whose first step comes after the padding
                waiting = None
                if state is None:
                    waiting = torch.ones(x.shape[1], 1, dtype=torch.bool, device=x.device)
                for t in reversed(range(steps)) if reverse else range(steps):
                    valid = masks[t]
                    begin = None
                    if waiting is not None and state is not None:
                        begin = waiting if valid is None else waiting & valid
                        begin = begin if bool(begin.any()) else None
                    if begin is not None:
                        new = _keep(begin, cell(x[t], None), cell(x[t], state))
                    else:
                        new = cell(x[t], state)
                    h = new[0] if isinstance(new, tuple) else new
                    if valid is None:
                        out[t], state = h, new
                    else:  # finished sequences keep their state
                        out[t] = torch.where(valid, h, 0.0)
                        state = new if state is None else _keep(valid, new, state)
                    if waiting is not None:
                        waiting = None if valid is None else waiting & ~valid
                        waiting = waiting if waiting is not None and bool(waiting.any()) else None
                outputs.append(torch.stack(out))
                finals.append(state)
            x = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=2)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, training=True)
        if isinstance(finals[0], tuple):
            h_n = tuple(torch.stack(parts) for parts in zip(*finals))
        else:
            h_n = torch.stack(finals)
        if not batched:
            h_n = tuple(h.squeeze(1) for h in h_n) if isinstance(h_n, tuple) else h_n.squeeze(1)
            return x.squeeze(1), h_n
        return (x.transpose(0, 1) if self.batch_first else x), h_n


def _keep(mask, new, old):
    """Rows where mask holds take the new state, the others keep the old one."""
    if isinstance(new, tuple):
        return tuple(torch.where(mask, n, o) for n, o in zip(new, old))
    return torch.where(mask, new, old)
'''

BUILT_IN = '''
class {name}(torch.nn.{torch_class}):
    """{description}: torch.nn.{torch_class}, forward(input, hx=None, lengths=None) as tinygrad_rnn's."""

    def __init__(self):
        super().__init__({arguments})

    def forward(self, input, hx=None, lengths=None):
        if lengths is None:
            return super().forward(input, hx)
        lengths = torch.as_tensor(lengths).cpu()
        packed = pack_padded_sequence(input, lengths, batch_first=self.batch_first, enforce_sorted=False)
        output, h_n = super().forward(packed, hx)
        steps = input.shape[1 if self.batch_first else 0]
        output, _ = pad_packed_sequence(output, batch_first=self.batch_first, total_length=steps)
        return output, h_n
'''

GENERIC = '''
class {name}(Recurrent):
    """{description}."""

    def __init__(self):
        cells = {{
{cells}
        }}
        super().__init__(cells, {num_layers}, {bidirectional}, {batch_first}, {dropout})
'''

LANGUAGE_MODEL = '''
class Model(nn.Module):
    """{description}: forward(tokens (T, N), hx=None, lengths=None) -> (logits (T, N, {vocab}), state)."""

    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding({vocab}, {embedding}, padding_idx={padding_idx}, dtype={dtype})
        self.rnn = Layer()
        self.decoder = nn.Linear({hidden}, {vocab}, bias={bias}, dtype={dtype})

    def forward(self, tokens, hx=None, lengths=None):
        output, state = self.rnn(self.embedding(tokens), hx, lengths=lengths)
        return self.decoder(output), state
'''

HEADER = '''"""{description}, exported by tinygrad_rnn as PyTorch.

Generated from the steps tinygrad_rnn recorded, one line per op; the comments give the line of the
cell's source behind each group of ops. The parameters have tinygrad_rnn's names: load the weights
written beside this file with

    from safetensors.torch import load_file
    model = Model()
    model.load_state_dict(load_file("{weights}"))
"""

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence
'''
