"""The network math: parameter layout, gradients, Adam, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from zmqnode.ml.mlp import (
    Architecture,
    evaluate,
    fit,
    init_params,
    loss_and_grad,
    params_from_bytes,
    params_to_bytes,
)


def _numeric_grad(arch, flat, x, y, l2, eps=1e-6):
    """Central differences of (data loss + L2 penalty) in float64."""
    grad = np.zeros_like(flat)
    scratch_w, scratch_b = arch.unflatten(np.zeros_like(flat))

    def total(p):
        w, b = arch.unflatten(p)
        loss = loss_and_grad(arch, w, b, scratch_w, scratch_b, x, y, 0.0)
        return loss + l2 / (2 * x.shape[0]) * sum(float((wi**2).sum()) for wi in w)

    for i in range(flat.size):
        p = flat.copy()
        p[i] += eps
        up = total(p)
        p[i] -= 2 * eps
        grad[i] = (up - total(p)) / (2 * eps)
    return grad


@pytest.mark.parametrize(
    "activation,output,n_out",
    [
        ("relu", "sigmoid", 1),
        ("tanh", "softmax", 3),
        ("tanh", "linear", 2),
        ("relu", "linear", 1),
        ("sigmoid", "softmax", 2),
    ],
)
def test_backprop_matches_numerical_gradient(activation, output, n_out):
    rng = np.random.default_rng(1)
    arch = Architecture((3, 5, 4, n_out), activation, output)
    flat = init_params(arch, rng).astype(np.float64)
    flat += rng.normal(scale=0.1, size=flat.size)  # non-zero biases too
    x = rng.normal(size=(7, 3))
    if output == "sigmoid":
        y = rng.integers(0, 2, size=(7, 1)).astype(np.float64)
    elif output == "softmax":
        y = np.eye(n_out)[rng.integers(0, n_out, size=7)]
    else:
        y = rng.normal(size=(7, n_out))
    grads = np.zeros_like(flat)
    w, b = arch.unflatten(flat)
    gw, gb = arch.unflatten(grads)
    loss_and_grad(arch, w, b, gw, gb, x, y, 0.01)
    np.testing.assert_allclose(grads, _numeric_grad(arch, flat, x, y, 0.01), rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("output,n_out", [("sigmoid", 1), ("softmax", 3), ("linear", 1)])
def test_skipping_the_loss_leaves_the_gradient_unchanged(output, n_out):
    # fit computes the loss in its last epoch only; the steps must not depend on it.
    rng = np.random.default_rng(2)
    arch = Architecture((3, 8, n_out), "relu", output)
    flat = init_params(arch, rng)
    x = rng.normal(size=(9, 3)).astype(np.float32)
    y = np.eye(max(2, n_out), dtype=np.float32)[rng.integers(0, n_out, size=9)][:, :n_out]
    w, b = arch.unflatten(flat)
    with_loss, without = np.zeros_like(flat), np.zeros_like(flat)
    loss = loss_and_grad(arch, w, b, *arch.unflatten(with_loss), x, y, 0.01)
    skipped = loss_and_grad(arch, w, b, *arch.unflatten(without), x, y, 0.01, with_loss=False)
    assert np.isfinite(loss) and np.isnan(skipped)
    np.testing.assert_array_equal(with_loss, without)


def test_unflatten_gives_views_in_layer_order():
    arch = Architecture((2, 3, 1), "relu", "sigmoid")
    flat = np.arange(arch.n_params, dtype=np.float32)
    (w0, w1), (b0, b1) = arch.unflatten(flat)
    assert arch.n_params == 2 * 3 + 3 + 3 * 1 + 1
    assert w0.shape == (2, 3) and b0.tolist() == [6, 7, 8] and w1.shape == (3, 1) and b1[0] == 12
    w0[0, 0] = -1
    assert flat[0] == -1  # writes go through to the flat array


def test_unflatten_rejects_wrong_size():
    arch = Architecture((2, 3, 1), "relu", "sigmoid")
    with pytest.raises(ValueError, match="needs 13"):
        arch.unflatten(np.zeros(12, np.float32))


def test_init_is_a_function_of_the_generator_only():
    arch = Architecture((4, 16, 3), "relu", "softmax")
    a = init_params(arch, np.random.default_rng(7))
    b = init_params(arch, np.random.default_rng(7))
    c = init_params(arch, np.random.default_rng(8))
    assert a.dtype == np.float32
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    w, bias = arch.unflatten(a)
    assert all((bi == 0).all() for bi in bias)
    assert np.abs(w[0]).max() <= np.sqrt(6 / 4) and np.abs(w[1]).max() <= np.sqrt(6 / 19)


def test_params_bytes_round_trip_and_size_check():
    arch = Architecture((3, 4, 2), "tanh", "linear")
    flat = init_params(arch, np.random.default_rng(0))
    data = params_to_bytes(flat)
    assert len(data) == 4 * arch.n_params
    assert np.array_equal(params_from_bytes(data, arch), flat)
    with pytest.raises(ValueError, match="multiple of 4"):
        params_from_bytes(data[:-1])
    with pytest.raises(ValueError, match="needs"):
        params_from_bytes(data[:-4], arch)


def test_fit_lowers_the_loss_and_leaves_its_input_alone():
    rng = np.random.default_rng(0)
    arch = Architecture((2, 16, 1), "relu", "linear")
    x = rng.normal(size=(200, 2)).astype(np.float32)
    y = (x[:, :1] * 2 - x[:, 1:]).astype(np.float32)
    start = init_params(arch, rng)
    before = evaluate(arch, start, x, y)["loss"]
    copy = start.copy()
    new, loss = fit(
        arch,
        start,
        x,
        y,
        epochs=30,
        batch_size=32,
        learning_rate=0.01,
        l2=0.0,
        rng=np.random.default_rng(1),
    )
    assert np.array_equal(start, copy)
    assert new.dtype == np.float32
    assert loss < before / 20 and evaluate(arch, new, x, y)["r2"] > 0.95


def test_fit_is_deterministic_given_the_generator():
    rng = np.random.default_rng(0)
    arch = Architecture((3, 8, 3), "tanh", "softmax")
    x = rng.normal(size=(50, 3)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 50)]
    p = init_params(arch, rng)
    runs = [
        fit(
            arch,
            p,
            x,
            y,
            epochs=3,
            batch_size=8,
            learning_rate=0.01,
            l2=1e-4,
            rng=np.random.default_rng(5),
        )
        for _ in range(2)
    ]
    assert np.array_equal(runs[0][0], runs[1][0]) and runs[0][1] == runs[1][1]
