"""A model built here, written as a plain PyTorch file: `export.torch(model, "model_torch.py")`.

The file defines `Model()` (no arguments) with the parameters under the same names, so the weights
written beside it (`model_torch.safetensors`) load with `load_state_dict`, and PyTorch's
DistributedDataParallel trains it on many machines. It needs torch only where it is run: this
package never imports it.

What is written: a cell's steps from what the engine recorded (cell.py), the layer loop around the
cells and the language model around the layer (loop.py); nn.RNN/LSTM/GRU become torch's own layers.
"""

from __future__ import annotations

from pathlib import Path

from ..nn.language_model import LanguageModel
from ..nn.module import Module
from ..nn.recurrent import Recurrent, RecurrentBase
from ..nn.recurrent.rnn import RNNBase
from ..serialization import save, write_atomically
from . import loop
from .cell import cell_source
from .recording import ExportError
from .torch_ops import dtype_text

__all__ = ["ExportError", "torch", "torch_source"]

RESERVED = {"Recurrent", "Layer", "Model", "F", "nn", "torch"}  # the file's own names
TORCH_LAYERS = {"RNN_TANH": "RNN", "RNN_RELU": "RNN", "LSTM": "LSTM", "GRU": "GRU"}


def torch(module: Module, path: str | Path, *, batch_size: int | None = None) -> Path:
    """Write `module` (nn.LanguageModel, nn.Recurrent with any cell, nn.RNN/LSTM/GRU) as the PyTorch
    file `path` defining `Model()`, and its weights beside it (`path` with `.safetensors`). Returns
    the weights' path. `batch_size`: make the file for that batch only (a cell whose constants
    depend on the batch size needs it)."""
    path = Path(path)
    if path.suffix != ".py":
        raise ValueError(f"export.torch: expected a path ending in .py, got {str(path)!r}")
    weights = path.with_suffix(".safetensors")
    text = torch_source(module, batch_size=batch_size, weights=weights.name)
    write_atomically(path, lambda f: f.write(text.encode("utf-8")))
    save(module.state_dict(), weights)
    return weights


def torch_source(
    module: Module, *, batch_size: int | None = None, weights: str = "model_torch.safetensors"
) -> str:
    """The PyTorch source `torch()` writes (see there)."""
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"export.torch: batch_size must be a positive int or None, got {batch_size!r}")
    if isinstance(module, LanguageModel):
        layer, name, description = module.rnn, "Layer", _language_model_name(module)
    elif isinstance(module, RecurrentBase):
        layer, name, description = module, "Model", _name(module)
    else:
        raise TypeError(
            "export.torch: expected an nn.LanguageModel, nn.Recurrent, nn.RNN, nn.LSTM or nn.GRU, got "
            f"{type(module).__name__}"
        )
    text = loop.HEADER.format(description=description, weights=weights)
    text += _layer_source(layer, name, batch_size)
    if isinstance(module, LanguageModel):
        text += _language_model(module, description)
    return text


def _layer_source(layer: RecurrentBase, name: str, batch_size: int | None) -> str:
    if isinstance(layer, RNNBase):
        return _built_in(layer, name)
    if not isinstance(layer, Recurrent):
        raise TypeError(f"export.torch: expected nn.Recurrent or nn.RNN/LSTM/GRU, got {type(layer).__name__}")
    batch = batch_size or _batch_for(layer)
    classes: dict[str, str] = {}  # source (with a placeholder name) -> class name
    cells = []
    for attribute, cell in layer.named_children():
        if not attribute.startswith("cell_l"):
            continue
        layer_index = int(attribute.removeprefix("cell_l").removesuffix("_reverse"))
        width = layer._layer_input_size(layer_index)
        source = cell_source(cell, "__CELL__", width, batch, batch_size is not None)
        if source not in classes:
            base = type(cell).__name__ + ("Cell" if type(cell).__name__ in RESERVED else "")
            classes[source] = base if not classes else f"{base}{len(classes)}"
        cells.append(f'            "{attribute}": {classes[source]}(),')
    text = "".join("\n\n" + source.replace("__CELL__", class_name) for source, class_name in classes.items())
    text += "\n" + loop.RECURRENT
    text += "\n" + loop.GENERIC.format(
        name=name,
        description=_name(layer),
        cells="\n".join(cells),
        num_layers=layer.num_layers,
        bidirectional=layer.bidirectional,
        batch_first=layer.batch_first,
        dropout=layer.dropout,
    )
    return text


def _built_in(layer: RNNBase, name: str) -> str:
    if layer.mode == "GRU" and not layer.reset_after:
        raise ExportError(
            "export.torch: GRU(reset_after=False) (the reset gate applied to h before W_hn) has no "
            "PyTorch counterpart; torch.nn.GRU applies it after, as GRU(reset_after=True)"
        )
    arguments = [
        str(layer.input_size),
        str(layer.hidden_size),
        f"num_layers={layer.num_layers}",
        f"bias={layer.bias}",
        f"batch_first={layer.batch_first}",
        f"dropout={layer.dropout}",
        f"bidirectional={layer.bidirectional}",
        f"dtype={dtype_text(layer.dtype)}",
    ]
    if layer.mode.startswith("RNN"):
        arguments.insert(2, f"nonlinearity={'tanh' if layer.mode == 'RNN_TANH' else 'relu'!r}")
    if layer.proj_size:
        arguments.append(f"proj_size={layer.proj_size}")
    return "\n" + loop.BUILT_IN.format(
        name=name,
        torch_class=TORCH_LAYERS[layer.mode],
        description=_name(layer),
        arguments=", ".join(arguments),
    )


def _language_model(model: LanguageModel, description: str) -> str:
    embedding, decoder = model.embedding, model.decoder
    return "\n" + loop.LANGUAGE_MODEL.format(
        description=description,
        vocab=embedding.num_embeddings,
        embedding=embedding.embedding_dim,
        padding_idx=embedding.padding_idx,
        hidden=decoder.in_features,
        bias=decoder.bias is not None,
        dtype=dtype_text(embedding.weight.dtype),
    )


def _batch_for(layer: Recurrent) -> int:
    """A batch size to record at that is no other size of the layer and divides none (cell.py)."""
    sizes = {d for p in layer.parameters() for d in p.shape} | {layer.input_size, layer.hidden_size}
    prime = 7
    while any(d % prime == 0 for d in sizes if d):
        prime = next(p for p in range(prime + 2, 2 * prime + 2, 2) if all(p % q for q in range(3, p, 2)))
    return prime


def _language_model_name(model: LanguageModel) -> str:
    cell = model.cell if isinstance(model.cell, str) else model.cell.__name__
    return (
        f"LanguageModel(V={model.embedding.num_embeddings}, E={model.embedding.embedding_dim}, "
        f"H={model.rnn.hidden_size}, cell={cell}, L={model.rnn.num_layers})"
    )


def _name(module: Module) -> str:
    return f"{type(module).__name__}({module.extra_repr()})"
