"""Distributed training: the coordinator (the leader's side), a pure chunk
scheduler, the trainer process and the SUB_TRAIN job protocol
(docs/PROTOCOL.md §9). The maths (``TrainingPlan``) lives in ``zmqnode.ml``."""

from .coordinator import TrainingCoordinator

__all__ = ["TrainingCoordinator"]
