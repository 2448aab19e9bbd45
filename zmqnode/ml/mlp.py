"""The multilayer perceptron: layout of its parameters, forward, backward, Adam.

Parameters live in ONE flat float32 array (layer 0 weight, layer 0 bias,
layer 1 weight, ...). Why: that array is what travels between the leader and
the trainers (one binary frame, no per-layer framing), what FedAvg averages
(one vectorized expression), and what Adam updates (one in-place expression
instead of a Python loop over layers). Per-layer weights are *views* into it.

A weight has shape ``(fan_in, fan_out)`` and a layer computes ``a @ W + b``.

Everything is float32, vectorized over the batch, and deterministic: the only
randomness is a ``numpy.random.Generator`` the caller passes in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import BadInput

HIDDEN_ACTIVATIONS = ("relu", "tanh", "sigmoid")
# The output activation is fixed by the task; each is paired with the loss
# whose gradient w.r.t. the pre-activation is simply (output - target).
OUTPUT_ACTIVATION = {"binary": "sigmoid", "multiclass": "softmax", "regression": "linear"}
TASKS = tuple(OUTPUT_ACTIVATION)

# Adam's constants, as in Kingma & Ba (2015) and every framework's default.
ADAM_BETA1 = 0.9
ADAM_BETA2 = 0.999
ADAM_EPSILON = 1e-8

# exp() of float32 overflows above ~88; sigmoid is exactly 0/1 in float32 long before.
_SIGMOID_CLIP = 40.0


@dataclass(frozen=True)
class Architecture:
    """Layer sizes (input, hidden..., output) and activations of a network."""

    layer_sizes: tuple[int, ...]
    hidden_activation: str
    output_activation: str

    def __post_init__(self) -> None:
        if len(self.layer_sizes) < 2 or any(s < 1 for s in self.layer_sizes):
            raise ValueError(f"layer sizes must be >= 2 positive ints, got {self.layer_sizes}")
        if self.hidden_activation not in HIDDEN_ACTIVATIONS:
            raise ValueError(f"unknown hidden activation {self.hidden_activation!r}")
        if self.output_activation not in OUTPUT_ACTIVATION.values():
            raise ValueError(f"unknown output activation {self.output_activation!r}")

    @classmethod
    def for_task(
        cls, n_inputs: int, hidden: tuple[int, ...], n_outputs: int, activation: str, task: str
    ) -> Architecture:
        return cls((n_inputs, *hidden, n_outputs), activation, OUTPUT_ACTIVATION[task])

    @property
    def n_layers(self) -> int:
        return len(self.layer_sizes) - 1

    @property
    def n_params(self) -> int:
        sizes = self.layer_sizes
        return sum((sizes[i] + 1) * sizes[i + 1] for i in range(self.n_layers))

    def describe(self) -> str:
        return "-".join(str(s) for s in self.layer_sizes)

    def unflatten(self, flat: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per-layer (weights, biases) as views of ``flat`` (writes go through)."""
        if flat.ndim != 1 or flat.size != self.n_params:
            raise ValueError(
                f"parameters have {flat.size} values; a {self.describe()} network needs "
                f"{self.n_params}"
            )
        weights, biases, at = [], [], 0
        for fan_in, fan_out in zip(self.layer_sizes[:-1], self.layer_sizes[1:], strict=True):
            weights.append(flat[at : at + fan_in * fan_out].reshape(fan_in, fan_out))
            at += fan_in * fan_out
            biases.append(flat[at : at + fan_out])
            at += fan_out
        return weights, biases


def flatten(weights: list[np.ndarray], biases: list[np.ndarray]) -> np.ndarray:
    """The flat float32 parameter array of per-layer weights and biases."""
    parts: list[np.ndarray] = []
    for w, b in zip(weights, biases, strict=True):
        parts += [np.asarray(w, np.float32).ravel(), np.asarray(b, np.float32).ravel()]
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def init_params(arch: Architecture, rng: np.random.Generator) -> np.ndarray:
    """Fresh parameters: Glorot-uniform weights in every layer, zero biases.

    Each weight is drawn from U(-l, l) with l = sqrt(6 / (fan_in + fan_out))
    (Glorot & Bengio 2010; scikit-learn's MLP uses the same bound). Not
    He-uniform (sqrt(6 / fan_in)) before ReLU: for our shallow nets on tabular
    data the smaller start generalizes better. On the 20,000-row
    make_classification benchmark (bench/train.py), one model trained as
    scikit-learn does (200 epochs of Adam at 1e-3, no penalty) reaches 0.977
    test accuracy from Glorot and 0.972 from He (scikit-learn: 0.978); with
    our defaults, where the L2 penalty does most of the regularizing, the gap
    shrinks to noise (seeds 0 and 1: 0.979/0.978 vs 0.979/0.976).
    """
    flat = np.zeros(arch.n_params, np.float32)
    weights, _ = arch.unflatten(flat)
    for w in weights:
        fan_in, fan_out = w.shape
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        w[...] = rng.uniform(-limit, limit, size=w.shape)
    return flat


def params_to_bytes(params: np.ndarray) -> bytes:
    """Raw little-endian float32 bytes of a flat parameter array (for a binary frame)."""
    return np.ascontiguousarray(params, dtype="<f4").tobytes()


def params_from_bytes(data: bytes, arch: Architecture | None = None) -> np.ndarray:
    """The flat float32 array back from ``params_to_bytes``; checks its size against ``arch``."""
    if len(data) % 4:
        raise ValueError(f"parameter bytes must be a multiple of 4, got {len(data)}")
    flat = np.frombuffer(data, dtype="<f4").astype(np.float32)
    if arch is not None and flat.size != arch.n_params:
        raise ValueError(
            f"parameters have {flat.size} values; a {arch.describe()} network needs {arch.n_params}"
        )
    return flat


# -- forward -------------------------------------------------------------------


def _activate(z: np.ndarray, activation: str) -> np.ndarray:
    """Apply a hidden activation in place (z is a fresh temporary)."""
    if activation == "relu":
        return np.maximum(z, 0, out=z)
    if activation == "tanh":
        return np.tanh(z, out=z)
    np.clip(z, -_SIGMOID_CLIP, _SIGMOID_CLIP, out=z)
    np.negative(z, out=z)
    np.exp(z, out=z)
    z += 1.0
    return np.reciprocal(z, out=z)


def forward_hidden(
    weights: list[np.ndarray], biases: list[np.ndarray], activation: str, x: np.ndarray
) -> list[np.ndarray]:
    """The input and every hidden layer's activations (kept for backprop)."""
    acts = [x]
    for w, b in zip(weights[:-1], biases[:-1], strict=True):
        z = acts[-1] @ w
        z += b
        acts.append(_activate(z, activation))
    return acts


def output_logits(
    weights: list[np.ndarray], biases: list[np.ndarray], activation: str, x: np.ndarray
) -> np.ndarray:
    """The last layer's pre-activation for a whole batch, in one pass."""
    a = forward_hidden(weights, biases, activation, x)[-1]
    z = a @ weights[-1]
    z += biases[-1]
    return z


def sigmoid(z: np.ndarray) -> np.ndarray:
    z = np.clip(z, -_SIGMOID_CLIP, _SIGMOID_CLIP)
    return 1.0 / (1.0 + np.exp(-z))


def log_softmax(z: np.ndarray) -> np.ndarray:
    zs = z - z.max(axis=1, keepdims=True)
    return zs - np.log(np.exp(zs).sum(axis=1, keepdims=True))


def apply_output(z: np.ndarray, output_activation: str) -> np.ndarray:
    """Probabilities (sigmoid/softmax) or values (linear) from the last pre-activation."""
    if output_activation == "sigmoid":
        return sigmoid(z)
    if output_activation == "softmax":
        return np.exp(log_softmax(z))
    return z


# -- loss and backward -----------------------------------------------------------


def output_loss(
    z: np.ndarray, y: np.ndarray, output_activation: str, with_loss: bool = True
) -> tuple[float, np.ndarray]:
    """Mean loss over rows and its gradient w.r.t. ``z`` (already divided by the row count).

    Losses: binary cross-entropy (sigmoid), categorical cross-entropy (softmax,
    ``y`` one-hot), half squared error summed over columns (linear). Each is
    computed from the logits, which is stable and makes the gradient ``p - y``.
    With ``with_loss=False`` only the gradient is computed and the loss is NaN
    (``fit`` needs the loss of the last epoch only).
    """
    n = z.shape[0]
    loss = math.nan
    if output_activation == "sigmoid":
        if with_loss:
            loss = float((np.logaddexp(0, z) - y * z).sum()) / n
        delta = sigmoid(z) - y
    elif output_activation == "softmax":
        logp = log_softmax(z)
        if with_loss:
            loss = -float((y * logp).sum()) / n
        delta = np.exp(logp, out=logp)
        delta -= y
    else:
        delta = z - y
        if with_loss:
            loss = 0.5 * float((delta * delta).sum()) / n
    delta /= n
    return loss, delta


def loss_and_grad(
    arch: Architecture,
    weights: list[np.ndarray],
    biases: list[np.ndarray],
    grad_w: list[np.ndarray],
    grad_b: list[np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    l2: float,
    with_loss: bool = True,
) -> float:
    """Backpropagation: writes the gradients into ``grad_w``/``grad_b``, returns the data loss.

    The L2 penalty (``l2 / 2n * sum(W**2)`` for ``n`` rows, biases excluded, as
    scikit-learn's ``alpha``; ``fit`` passes its own ``l2`` times ``n``) is in
    the gradient but not in the returned loss, so the loss stays comparable to
    the validation loss. ``with_loss=False`` skips the loss (returns NaN).
    """
    acts = forward_hidden(weights, biases, arch.hidden_activation, x)
    z = acts[-1] @ weights[-1]
    z += biases[-1]
    loss, delta = output_loss(z, y, arch.output_activation, with_loss)
    n = x.shape[0]
    # ``np.dot(delta, W.T)``, not ``delta @ W.T``: with one output column
    # (binary, regression) matmul takes a slow outer-product loop, 20 us
    # instead of 4 for 196 rows x 64 (numpy 2, OpenBLAS); a step costs about
    # 100 us in all. Same products, so the same float32 results.
    for i in range(arch.n_layers - 1, -1, -1):
        np.matmul(acts[i].T, delta, out=grad_w[i])
        if l2:
            grad_w[i] += (l2 / n) * weights[i]
        np.add.reduce(delta, axis=0, out=grad_b[i])  # np.sum without its wrapper
        if i:
            delta = np.dot(delta, weights[i].T)
            a = acts[i]
            if arch.hidden_activation == "relu":
                delta *= a > 0
            elif arch.hidden_activation == "tanh":
                delta *= 1.0 - a * a
            else:
                delta *= a * (1.0 - a)
    return loss


class Adam:
    """Adam's moment estimates for one flat parameter array; updates it in place."""

    def __init__(self, size: int, learning_rate: float) -> None:
        self.learning_rate = learning_rate
        self.m = np.zeros(size, np.float32)
        self.v = np.zeros(size, np.float32)
        self.t = 0
        self._tmp = np.zeros(size, np.float32)

    def step(self, params: np.ndarray, grads: np.ndarray) -> None:
        self.t += 1
        m, v, tmp = self.m, self.v, self._tmp
        m *= ADAM_BETA1
        np.multiply(grads, 1.0 - ADAM_BETA1, out=tmp)
        m += tmp
        v *= ADAM_BETA2
        np.multiply(grads, grads, out=tmp)
        tmp *= 1.0 - ADAM_BETA2
        v += tmp
        # Bias correction folded into the step size (Kingma & Ba, section 2).
        step = self.learning_rate * math.sqrt(1.0 - ADAM_BETA2**self.t) / (1.0 - ADAM_BETA1**self.t)
        np.sqrt(v, out=tmp)
        tmp += ADAM_EPSILON
        np.divide(m, tmp, out=tmp)
        tmp *= step
        params -= tmp


def fit(
    arch: Architecture,
    params: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    l2: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, float]:
    """Minibatch Adam for ``epochs`` passes over (x, y), from a fresh optimizer state.

    Returns new parameters (the input array is not modified) and the mean data
    loss over the last epoch. Rows are reshuffled every epoch with ``rng`` and
    cut into ``ceil(n / batch_size)`` batches of equal size (give or take a
    row), so no epoch ends with a one-row batch whose noisy step Adam would
    take at full size.

    ``l2`` is the coefficient of ``l2 / 2 * sum(W**2)`` added to every batch's
    MEAN loss (PyTorch's Adam ``weight_decay``): the same strength whatever
    the batch or chunk size. (scikit-learn's ``alpha`` divides by the batch
    rows instead: ``alpha = l2 * batch_size``; with that convention a penalty
    strong enough to help 15,000 rows pins a 4-row XOR at 0.5.)
    """
    n = x.shape[0]
    if n == 0:
        raise BadInput("cannot train on zero rows")
    params = np.array(params, dtype=np.float32, copy=True)
    grads = np.zeros_like(params)
    weights, biases = arch.unflatten(params)
    grad_w, grad_b = arch.unflatten(grads)
    adam = Adam(params.size, learning_rate)
    n_batches = -(-n // max(1, min(batch_size, n)))
    bounds = [(i * n) // n_batches for i in range(n_batches + 1)]
    total = 0.0
    for epoch in range(epochs):
        order = rng.permutation(n)
        xs, ys = x[order], y[order]
        # Only the last epoch's loss is returned: the others skip computing it
        # (a step is mostly per-call overhead; this is 2-4 calls of about 30).
        last = epoch == epochs - 1
        for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
            rows = stop - start
            loss = loss_and_grad(
                arch,
                weights,
                biases,
                grad_w,
                grad_b,
                xs[start:stop],
                ys[start:stop],
                l2 * rows,
                with_loss=last,
            )
            if last:
                total += rows * loss
            adam.step(params, grads)
    return params, total / n


def evaluate(
    arch: Architecture, params: np.ndarray, x: np.ndarray, y: np.ndarray
) -> dict[str, float]:
    """Loss and a readable score on encoded targets: accuracy, or R^2 for regression."""
    weights, biases = arch.unflatten(params)
    z = output_logits(weights, biases, arch.hidden_activation, x)
    loss, _ = output_loss(z, y, arch.output_activation)
    if arch.output_activation == "sigmoid":
        return {"loss": loss, "accuracy": float(((z[:, 0] > 0) == (y[:, 0] > 0.5)).mean())}
    if arch.output_activation == "softmax":
        return {"loss": loss, "accuracy": float((z.argmax(axis=1) == y.argmax(axis=1)).mean())}
    total = float(((y - y.mean(axis=0)) ** 2).sum())
    r2 = 1.0 - float(((z - y) ** 2).sum()) / total if total > 0 else 0.0
    return {"loss": loss, "r2": r2}
