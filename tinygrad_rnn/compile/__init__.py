"""The recorded step (replay.Program) compiled to generated Python: straight-line forward and backward
per step (codegen.py, lowering.py), run as a replayed step's node (step.py), kept across forward
passes while the layer's state holds (replayer.py)."""

from .replayer import BOOKKEEPING, CompiledReplayer, StepCache, compiled

__all__ = ["BOOKKEEPING", "CompiledReplayer", "StepCache", "compiled"]
