"""The typed errors of the ML package.

Each is a ``ValueError`` (except ``TrainingError``) so callers that only know
"the request was bad" can catch one base class; the node maps them to the
wire's ``BAD_INPUT`` / ``TRAINING_FAILED`` codes. Messages are written for the
person who sent the request, not for us.
"""

from __future__ import annotations


class BadInput(ValueError):
    """Training data or prediction input the model cannot use (shape, NaN, width...)."""


class BadOptions(ValueError):
    """A training option with a wrong name, type or value."""


class ModelFormatError(ValueError):
    """Bytes that are not a valid zmqnode model file (or a Model built inconsistently)."""


class TrainingError(RuntimeError):
    """Training itself failed (diverged to NaN/inf, or inconsistent round results)."""
