"""The exported language model, with a user's cell, trained by PyTorch's DistributedDataParallel.

Two processes on this machine (torch.distributed, gloo, 127.0.0.1 only) each take half of a batch
and train the exported model for a few SGD steps; DDP averages their gradients, so the parameters
after every step must equal those of one process training on the whole batch (to float64 rounding).
The weights then come back here through safetensors and give our model the same logits. Bounded:
3 steps, a 60 s rendezvous timeout and a 120 s limit on the processes.

Run as a script, this file is one of the two processes (`worker`).
"""

from __future__ import annotations

import datetime
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

STEPS, WORLD, LR = 3, 2, 0.5
V, E, H, T, N = 11, 4, 5, 6, 4  # N: the whole batch, N / WORLD per process


def train_steps(model, tokens, targets, steps: int, step_done) -> None:
    """SGD on the mean cross-entropy of the batch given; `step_done(k)` after each step."""
    import torch

    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    for k in range(steps):
        logits, _ = model(tokens)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), targets.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        step_done(k)


def worker(rank: int, port: int, folder: Path) -> None:
    """One process: its half of the batch, the model under DDP; rank 0 saves the parameters per step."""
    import importlib.util

    import torch
    import torch.distributed as dist
    from safetensors.torch import load_file
    from torch.nn.parallel import DistributedDataParallel

    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=WORLD,
        timeout=datetime.timedelta(seconds=60),
    )
    spec = importlib.util.spec_from_file_location("model_torch", folder / "model_torch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.Model()
    model.load_state_dict(load_file(str(folder / "model_torch.safetensors")))
    ddp = DistributedDataParallel(model)
    data = np.load(folder / "data.npz")
    mine = slice(rank * N // WORLD, (rank + 1) * N // WORLD)
    tokens = torch.from_numpy(data["tokens"][:, mine])
    targets = torch.from_numpy(data["targets"][:, mine])
    saved = {}

    def step_done(k: int) -> None:
        saved.update({f"{k}/{name}": p.detach().numpy().copy() for name, p in ddp.module.named_parameters()})

    train_steps(ddp, tokens, targets, STEPS, step_done)
    if rank == 0:
        np.savez(folder / "ddp.npz", **saved)
        from safetensors.torch import save_file

        save_file(
            {k: v.contiguous() for k, v in ddp.module.state_dict().items()}, str(folder / "back.safetensors")
        )
    dist.destroy_process_group()
    print(f"rank {rank}: {STEPS} steps on {tokens.shape[1]} of {N} sequences")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_on_two_processes_trains_the_exported_model_as_one_process_on_the_whole_batch(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("safetensors.torch")
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("this torch has no torch.distributed with the gloo backend")
    import tinygrad_rnn as tg
    from tinygrad_rnn import export, nn
    from tinygrad_rnn.nn.examples import PeepholeLSTMCell

    ours = nn.LanguageModel(V, E, H, PeepholeLSTMCell, num_layers=2, dtype="float64", rng=0)
    export.torch(ours, tmp_path / "model_torch.py")
    rng = np.random.default_rng(0)
    tokens, targets = rng.integers(0, V, (T, N)), rng.integers(0, V, (T, N))
    np.savez(tmp_path / "data.npz", tokens=tokens, targets=targets)

    port = free_port()
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}
    processes = [
        subprocess.Popen(
            [sys.executable, __file__, str(rank), str(port), str(tmp_path)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in range(WORLD)
    ]
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=120)[0])
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    for rank, (process, output) in enumerate(zip(processes, outputs, strict=True)):
        assert process.returncode == 0, f"rank {rank} failed:\n{output}"
        print(output.strip())

    import importlib.util

    from safetensors.torch import load_file

    spec = importlib.util.spec_from_file_location("model_torch_single", tmp_path / "model_torch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    single = module.Model()
    single.load_state_dict(load_file(str(tmp_path / "model_torch.safetensors")))
    distributed = np.load(tmp_path / "ddp.npz")
    worst = []

    def compare(k: int) -> None:
        for name, p in single.named_parameters():
            theirs, alone = distributed[f"{k}/{name}"], p.detach().numpy()
            np.testing.assert_allclose(
                theirs, alone, rtol=1e-12, atol=1e-13, err_msg=f"{name} after step {k}"
            )
        worst.append(
            max(
                np.abs(distributed[f"{k}/{n}"] - p.detach().numpy()).max()
                for n, p in single.named_parameters()
            )
        )

    train_steps(single, torch.from_numpy(tokens), torch.from_numpy(targets), STEPS, compare)
    moved = max(np.abs(distributed[f"{STEPS - 1}/{n}"] - a).max() for n, a in ours.state_dict().items())
    print(
        f"after each of {STEPS} steps, DDP vs one process: max |difference| "
        f"{', '.join(f'{w:.1e}' for w in worst)}; "
        f"the parameters moved by up to {moved:.2f}"
    )
    assert moved > 1e-3  # the steps changed the model

    ours.load_state_dict(tg.load(tmp_path / "back.safetensors"))  # the weights come back
    logits, _ = ours(tokens)
    np.testing.assert_allclose(
        logits.data, single(torch.from_numpy(tokens))[0].detach().numpy(), rtol=1e-10, atol=1e-12
    )


if __name__ == "__main__":
    worker(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))
