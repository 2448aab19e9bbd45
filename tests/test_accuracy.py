"""Quality from raw CSV: a real 3-node cluster, default options, against scikit-learn.

For each dataset of ``bench/train.py`` (scikit-learn's bundled sets, the
20,000-row two-class ``synthetic`` set, and the harder ``multiclass``,
``friedman1`` and ``friedman3`` sets): a 25 % test split (random_state=0,
stratified for classification), the unscaled training rows written to CSV
and read back with the CLI's reader, trained by ``Client.train`` with no
options, predicted by the cluster. The bound, with no tolerance on an
all-Python cluster (1 point on a mixed one, MIXED_TOLERANCE): our score on
the test rows (accuracy, or R² for regression) is at least that of
scikit-learn's ``StandardScaler + MLPClassifier(hidden_layer_sizes=(64,))``
(``MLPRegressor`` for regression; adam, 200 epochs) on the same split. The
protocol lives in ``bench/train.py`` (``python -m bench train`` uses the same
functions).

Both sides are deterministic, so each case is one comparison of two fixed
numbers. Ours depends on the number of chunks: the module's warm-up brings
all three trainers up, so every dataset here is trained in three chunks (the
failure message shows how many took part). The margins at the time of
writing (points): iris +2.63 (one test row is 2.6), wine +0.00 (both 1.0),
breast_cancer +1.40, digits +0.67, synthetic +0.14, multiclass +1.00,
friedman1 +0.03 (R², both near the noise's ceiling of about 0.96),
friedman3 +1.85.

The three harder sets add about 30 s to the module (25-30 s measured on a
busy 2-core machine), most of it scikit-learn's fits.
"""

from __future__ import annotations

import pytest

from bench.train import (
    BUNDLED,
    HARDER,
    SYNTHETIC,
    cluster_train,
    sklearn_reference,
    split,
    warm_up,
)
from harness.cluster import LocalCluster

pytestmark = [pytest.mark.conformance, pytest.mark.process]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = LocalCluster(tmp_path_factory.mktemp("accuracy"), n=3)
    c.start()
    try:
        c.leader(timeout=30)
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def client(cluster):
    c = cluster.client(timeout=30)
    # Every trainer up, so each dataset below is spread over all three.
    warm_up(c)
    return c


# A cluster that mixes implementations trains the same model up to float32
# rounding (docs/PROTOCOL.md §9), which moves a score by a few test rows
# (synthetic: 0.9774 mixed against scikit-learn's 0.9782). Issue 17
# asks a mixed or Go-led cluster to be within 1 point of the Python result,
# which is at least scikit-learn's: so 1 point below scikit-learn, mixed.
MIXED_TOLERANCE = 0.01


def _check(cluster, client, tmp_path, name: str) -> None:
    data = split(name)
    ours = cluster_train(client, data, tmp_path)
    theirs = sklearn_reference(data)
    tolerance = 0.0 if cluster.all_python else MIXED_TOLERANCE
    assert ours["score"] >= theirs["score"] - tolerance, (
        f"{name}: zmqnode {ours['score']:.4f} vs scikit-learn {theirs['score']:.4f} "
        f"(tolerance {tolerance}, nodes {sorted(cluster.impls.values())}) "
        f"on {len(data.y_test)} test rows ({ours})"
    )


@pytest.mark.parametrize("name", BUNDLED)
def test_default_options_match_sklearn_on_a_bundled_dataset(cluster, client, tmp_path, name):
    _check(cluster, client, tmp_path, name)


def test_default_options_match_sklearn_on_the_synthetic_20k_set(cluster, client, tmp_path):
    _check(cluster, client, tmp_path, SYNTHETIC)


@pytest.mark.parametrize("name", HARDER)
def test_default_options_match_sklearn_on_a_harder_generated_set(cluster, client, tmp_path, name):
    _check(cluster, client, tmp_path, name)
