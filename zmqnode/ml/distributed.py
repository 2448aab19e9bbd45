"""The trainer's entry point, in the shapes a SUB_TRAIN job arrives in.

A job carries the flat parameters, the chunk's encoded x and y (float32
arrays) and the plan's options as a JSON object (``plan.options.to_dict()``,
task resolved). ``run_chunk`` turns those back into ``train_chunk``'s
arguments, so a remote trainer computes exactly what ``train`` computes
locally for the same chunk and round.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import BadInput
from .options import TrainOptions
from .problem import Chunk
from .training import ChunkResult, train_chunk


def run_chunk(
    params: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    options: dict[str, Any],
    round_index: int,
    chunk_index: int,
) -> ChunkResult:
    """Train one chunk for one round. Raises BadInput/BadOptions/TrainingError."""
    opts = TrainOptions.from_dict(options)
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y, dtype=np.float32)
    if y.ndim == 1:
        y = y.reshape(-1, 1)
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise BadInput(
            f"chunk needs 2-D x and y with the same, non-zero rows; got {x.shape}, {y.shape}"
        )
    return train_chunk(params, Chunk(chunk_index, x, y), opts, round_index)
