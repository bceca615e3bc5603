"""The recorded step (replay.Program) compiled to generated Python: straight-line forward and backward
per step (codegen.py, lowering.py), run as a replayed step's node (step.py), kept across forward
passes while the layer's state holds (replayer.py), the steps left in a sequence run as one node
(sequence.py); `step_census` counts how a graph's steps ran."""

from .census import step_census
from .replayer import BOOKKEEPING, CompiledReplayer, StepCache, compiled

__all__ = ["BOOKKEEPING", "CompiledReplayer", "StepCache", "compiled", "step_census"]
