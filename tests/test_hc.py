"""mclust's hierarchical starting partitions (bayesgmm.hc) against R's mclust 6.0.0.

Fixtures: tests/fixtures/mclust/record_hc.R (hc_<case>.csv: hclass(hc(X, modelName, use = "SVD"),
1:9); hc_<case>_merges.csv: the merge pairs; hc_<dataset>_data.csv: the data exactly as R used them).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from bayesgmm.hc import hierarchical_partitions, labels_to_responsibilities, quantile_partitions
from bayesgmm import hc as hcmod

FIXTURES = Path(__file__).parent / "fixtures" / "mclust"
META = json.loads((FIXTURES / "hc_meta.json").read_text())
G = list(range(1, 10))

#: Cases whose partitions into 1..9 groups must equal R's. Left out: waiting_V_dup (a partition
#: given to R's hc1v, which misreads the terms of groups that start with several rows).
PARTITION_CASES = ["faithful", "iris", "diabetes", "waiting_V", "waiting_E", "waiting_VVV", "iris_EII",
                   "faithful_dup", "iris_dup", "waiting_E_dup", "faithful_EII_dup"]
#: Cases whose whole merge sequence is R's, pair for pair.
MERGE_CASES = ["faithful", "diabetes", "waiting_V", "waiting_E", "waiting_VVV", "waiting_E_dup"]


def _data(name: str) -> np.ndarray:
    return pd.read_csv(FIXTURES / f"hc_{name}_data.csv").to_numpy(dtype=np.float64)


def _reference(case: str) -> np.ndarray:
    return pd.read_csv(FIXTURES / f"hc_{case}.csv").to_numpy() - 1


def test_fixture_metadata():
    assert META["mclust_version"] == "6.0.0"
    assert META["hcModelName"] == "VVV" and META["hcUse"] == "SVD" and META["subset"] == 2000
    for name in ("faithful", "iris", "diabetes"):
        assert META["cases"][name]["mclust_uses_this_hc"]
        assert META["cases"][name]["initial_groups"] == META["cases"][name]["n"]   # no dupPartition


@pytest.mark.parametrize("case", PARTITION_CASES)
def test_partitions_equal_mclust(case):
    info = META["cases"][case]
    X = _data(info["dataset"])
    ref = _reference(case)
    got = hierarchical_partitions(X, G, model=info["modelName"], merge_duplicates=info["merge_duplicates"])
    assert got.shape == (X.shape[0], len(G))
    for c, g in enumerate(G):
        assert adjusted_rand_score(ref[:, c], got[:, c]) == 1.0, f"G={g}"
        assert got[:, c].max() == g - 1
    np.testing.assert_array_equal(got, ref)          # the same group numbers too (first appearance)


@pytest.mark.parametrize("case", MERGE_CASES)
def test_merge_pairs_equal_mclust(case):
    info = META["cases"][case]
    X = _data(info["dataset"])
    part = hcmod._dup_partition(X) if info["merge_duplicates"] else np.arange(X.shape[0])
    _, merges = hcmod._hc_merges(hcmod._transform(X, "SVD"), info["modelName"], part=part)
    ref = pd.read_csv(FIXTURES / f"hc_{case}_merges.csv").to_numpy() - 1
    np.testing.assert_array_equal(merges, ref)


def test_svd_transform_matches_r():
    for name in ("faithful", "iris", "diabetes", "waiting"):
        Z = hcmod._transform(_data(name), "SVD")
        head = np.array([[float(v) for v in row] for row in META["cases"][name if name != "waiting" else "waiting_V"]["transformed_head"]])
        # singular vectors are defined up to sign
        sign = np.sign(np.sum(Z[: len(head)] * head, axis=0))
        np.testing.assert_allclose(Z[: len(head)] * sign, head, rtol=1e-12, atol=1e-14)
    # one feature: bit for bit (d as LAPACK's dgesdd computes it)
    Z = hcmod._transform(_data("waiting"), "SVD")
    head = np.array([[float(v) for v in row] for row in META["cases"]["waiting_V"]["transformed_head"]])
    np.testing.assert_array_equal(np.abs(Z[: len(head)]), np.abs(head))


def test_auto_is_what_mclust_does():
    faithful = _data("faithful")
    np.testing.assert_array_equal(hierarchical_partitions(faithful, G), _reference("faithful"))
    waiting = _data("waiting")
    # one feature: Mclust starts from quantile classes, numbered by increasing value
    np.testing.assert_array_equal(hierarchical_partitions(waiting, G), _reference("waiting_qclass"))
    np.testing.assert_array_equal(hierarchical_partitions(waiting[:, 0], G), _reference("waiting_qclass"))
    np.testing.assert_array_equal(quantile_partitions(waiting, G), _reference("waiting_qclass"))
    # a single int gives one column; the order of n_components is kept
    np.testing.assert_array_equal(hierarchical_partitions(faithful, 3)[:, 0], _reference("faithful")[:, 2])
    np.testing.assert_array_equal(hierarchical_partitions(faithful, [5, 2]), _reference("faithful")[:, [4, 1]])


def test_labels_number_groups_by_first_appearance():
    labels = hierarchical_partitions(_data("diabetes"), G)
    for c in range(labels.shape[1]):
        _, first = np.unique(labels[:, c], return_index=True)
        assert np.all(np.diff(first) > 0)
        assert labels[0, c] == 0


def test_duplicates():
    rng = np.random.default_rng(3)
    base = rng.normal(size=(25, 2))
    X = np.vstack([base, base[[0, 4, 4, 9]]])          # 29 rows, 25 distinct
    # default (as Mclust): every row starts alone, so G may go up to 29 and duplicates can split
    assert hierarchical_partitions(X, [29, 1]).max(axis=0).tolist() == [28, 0]
    # merge_duplicates: equal rows share their group at every level
    labels = hierarchical_partitions(X, list(range(1, 26)), merge_duplicates=True)
    for dup, orig in [(25, 0), (26, 4), (27, 4), (28, 9)]:
        np.testing.assert_array_equal(labels[dup], labels[orig])
    assert labels[:, -1].max() == 24
    with pytest.raises(ValueError, match="n_components"):
        hierarchical_partitions(X, 26, merge_duplicates=True)
    for model in ("VVV", "EII"):
        assert hierarchical_partitions(X, 3, model=model, merge_duplicates=True).max() == 2


def test_subsample():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(40, 2)), rng.normal(size=(40, 2)) + 5.0])
    a = hierarchical_partitions(X, [1, 2, 4], max_rows=30, random_state=7)
    b = hierarchical_partitions(X, [1, 2, 4], max_rows=30, random_state=7)
    np.testing.assert_array_equal(a, b)
    inside = a[:, 0] >= 0
    assert inside.sum() == 30
    assert np.all((a[~inside] == -1))
    assert np.all(a[inside].max(axis=0) == [0, 1, 3])
    # the subset rows get the partition of the subset on its own (transform included)
    np.testing.assert_array_equal(a[inside], hierarchical_partitions(X[inside], [1, 2, 4]))
    d = hierarchical_partitions(X, [2], max_rows=30, random_state=np.random.RandomState(7))
    assert (d[:, 0] >= 0).sum() == 30
    c = hierarchical_partitions(X, [2], max_rows=30, random_state=8)
    assert not np.array_equal(c[:, 0] >= 0, inside)
    # at or below max_rows every row takes part
    assert np.all(hierarchical_partitions(X, [2], max_rows=80) >= 0)
    assert np.all(hierarchical_partitions(X, [2], max_rows=None) >= 0)
    labels = quantile_partitions(X[:, 0], [3], max_rows=30, random_state=7)
    assert (labels[:, 0] >= 0).sum() == 30
    with pytest.raises(ValueError, match="n_components"):
        hierarchical_partitions(X, 31, max_rows=30, random_state=7)


def test_tiny_data():
    X = np.array([[0.0, 1.0], [2.0, 0.5], [1.0, 3.0]])
    labels = hierarchical_partitions(X, [1, 2, 3])
    np.testing.assert_array_equal(labels[:, 0], [0, 0, 0])
    np.testing.assert_array_equal(labels[:, 2], [0, 1, 2])
    assert sorted(np.bincount(labels[:, 1]).tolist()) == [1, 2]
    assert hierarchical_partitions(X[:2], 2).ravel().tolist() == [0, 1]
    assert hierarchical_partitions(X[:1], 1).ravel().tolist() == [0]
    # no more rows than features: Mclust (and "auto") agglomerates with EII
    wide = np.random.default_rng(1).normal(size=(4, 6))
    np.testing.assert_array_equal(hierarchical_partitions(wide, [1, 4])[:, 1], [0, 1, 2, 3])
    np.testing.assert_array_equal(hierarchical_partitions(wide, 2), hierarchical_partitions(wide, 2, model="EII"))
    np.testing.assert_array_equal(quantile_partitions(np.array([3.0, 1.0, 2.0]), 3)[:, 0], [2, 0, 1])


def test_bad_input():
    X = _data("faithful")[:20]
    cases = [
        (dict(X=np.array([[1.0, np.nan], [2.0, 3.0]]), n_components=1), "X"),
        (dict(X=np.empty((0, 2)), n_components=1), "X"),
        (dict(X=[["a", "b"]], n_components=1), "X"),
        (dict(X=np.ones((5, 2)), n_components=2), "X"),
        (dict(X=X, n_components=0), "n_components"),
        (dict(X=X, n_components=[2, 21]), "n_components"),
        (dict(X=X, n_components=2.5), "n_components"),
        (dict(X=X, n_components=[]), "n_components"),
        (dict(X=X, n_components=2, model="VVI"), "model"),
        (dict(X=X, n_components=2, model="V"), "model"),
        (dict(X=X, n_components=2, use="PCS"), "use"),
        (dict(X=X, n_components=2, max_rows=0), "max_rows"),
        (dict(X=X, n_components=2, max_rows=2.5), "max_rows"),
    ]
    for kwargs, name in cases:
        with pytest.raises(ValueError, match=name):
            hierarchical_partitions(**kwargs)
    with pytest.raises(ValueError, match="one feature"):
        quantile_partitions(X, 2)
    with pytest.raises(ValueError, match="distinct values"):
        quantile_partitions(np.array([1.0, 1.0, 2.0]), 3)


def test_uses():
    X = _data("iris")
    for use in ("VARS", "STD"):
        labels = hierarchical_partitions(X, [3], use=use)
        assert labels.max() == 2 and labels[0, 0] == 0


def test_labels_to_responsibilities():
    labels = hierarchical_partitions(_data("faithful"), [3])[:, 0]
    resp = labels_to_responsibilities(labels)
    assert resp.shape == (272, 3)
    np.testing.assert_array_equal(resp.sum(axis=1), 1.0)
    np.testing.assert_array_equal(resp.argmax(axis=1), labels)
    resp = labels_to_responsibilities(np.array([1, -1, 0]), n_components=4, dtype=np.float32)
    assert resp.dtype == np.float32
    np.testing.assert_array_equal(resp, [[0, 1, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0]])
    with pytest.raises(ValueError, match="n_components"):
        labels_to_responsibilities([0, 3], n_components=2)
    with pytest.raises(ValueError, match="labels"):
        labels_to_responsibilities([[0, 1]])
    with pytest.raises(ValueError, match="labels"):
        labels_to_responsibilities([0, -2])
