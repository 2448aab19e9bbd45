"""Distributed training (docs/PROTOCOL.md §5.1 and §9).

- ``coordinator``: the leader's side of a TRAIN job (``TrainingCoordinator``),
  given only ``TrainingLinks`` to its node;
- ``scheduler``: the pure decisions (chunks, placement, deadlines, moves);
- ``process``: this node's trainer process, started and restarted;
- ``trainer``: that process (``python -m zmqnode.training.trainer``);
- ``protocol``: the SUB_TRAIN job and result frames.

The maths (``TrainingPlan``, averaging) lives in ``zmqnode.ml``.
"""

from .coordinator import TrainingCoordinator, TrainingLinks

__all__ = ["TrainingCoordinator", "TrainingLinks"]
