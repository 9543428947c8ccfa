"""mclust's 14 parsimonious models against R's mclust 6 (fixtures recorded by
tests/fixtures/mclust/record_mclust.R) and against naive numpy twins written from the papers."""

import json
import math
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayesgmm as bg
from bayesgmm import em
from bayesgmm.covariance import MCLUST_MODELS, SKLEARN_ALIASES, get_model
from naive_msteps import decompose, naive_covariances, q_objective, satisfies

FIXTURES = Path(__file__).parent / "fixtures" / "mclust"
DATASETS = {
    "faithful": lambda: bg.datasets.load_faithful().to_numpy(),
    "iris": lambda: bg.datasets.load_iris().drop(columns="species").to_numpy(),
    "diabetes": lambda: bg.datasets.load_diabetes().drop(columns="class").to_numpy(),
    "faithful_waiting": lambda: bg.datasets.load_faithful()[["waiting"]].to_numpy(),
}


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def test_parameter_counts_equal_mclusts_nvarparams():
    table = fixture("nvarparams")
    for name in MCLUST_MODELS + ("E", "V"):
        for d in table["d"]:
            if (d == 1) != (name in ("E", "V")):
                continue
            for k in table["G"]:
                model = get_model(name)
                assert model.n_covariance_parameters(k, d) == table["nvarparams"][name][d - 1][k - 1], (name, d, k)
                assert model.n_parameters(k, d) == table["nmclustparams"][name][d - 1][k - 1], (name, d, k)


def test_sklearn_names_are_aliases_with_sklearns_parameter_counts():
    from sklearn.mixture import GaussianMixture as SkGM

    X = np.random.default_rng(0).normal(size=(40, 3))
    for sk_name, mclust_name in SKLEARN_ALIASES.items():
        sk = SkGM(3, covariance_type=sk_name, max_iter=5).fit(X)
        assert get_model(sk_name).n_parameters(3, 3) == get_model(mclust_name).n_parameters(3, 3) == sk._n_parameters()


def _random_statistics(seed: int, k: int, d: int):
    rng = np.random.default_rng(seed)
    nk = rng.uniform(5, 50, size=k)
    A = rng.normal(size=(k, d, d + 3))
    W = np.einsum("kij,klj->kil", A, A) * nk[:, None, None] / (d + 3)
    return nk, W


@pytest.mark.parametrize("name", MCLUST_MODELS)
def test_m_step_equals_the_naive_twin(name):
    model = get_model(name)
    for seed, (k, d) in enumerate([(1, 2), (3, 2), (2, 3), (4, 4)]):
        nk, W = _random_statistics(seed, k, d)
        expected = naive_covariances(name, nk, W)
        with jax.enable_x64(True):
            scatter = W if model.form.matrix else np.diagonal(W, axis1=-2, axis2=-1)
            ours = model.covariances_from_scatter(jnp.asarray(nk), jnp.asarray(scatter), 0.0, jnp.ones(k, bool))
            ours = np.asarray(model.form.full(ours, k, d))
        assert satisfies(name, ours), (name, k, d)
        q_ours, q_twin = q_objective(ours, nk, W), q_objective(expected, nk, W)
        if name in ("EVE", "VVE"):
            # Q has local maxima over the common orientation: the twin keeps the best of several starts,
            # ours starts from the pooled scatter's eigenvectors (in EM: from the last iterate's)
            assert q_ours >= q_twin - 1e-3 * abs(q_twin), (name, k, d, q_ours, q_twin)
            continue
        assert q_ours >= q_twin - 1e-7 * abs(q_twin)
        np.testing.assert_allclose(ours, expected, rtol=2e-5, atol=1e-8, err_msg=f"{name} k={k} d={d}")


def test_padded_components_take_no_part_in_pooled_estimates():
    nk, W = _random_statistics(7, 3, 2)
    mask = np.array([True, True, False])
    for name in MCLUST_MODELS:
        model = get_model(name)
        with jax.enable_x64(True):
            scatter = W if model.form.matrix else np.diagonal(W, axis1=-2, axis2=-1)
            padded = model.covariances_from_scatter(jnp.asarray(nk), jnp.asarray(scatter * 1e3), 0.0,
                                                    jnp.asarray(mask))
            alone = model.covariances_from_scatter(jnp.asarray(nk[:2]), jnp.asarray(scatter[:2]) * 1e3, 0.0,
                                                   jnp.ones(2, bool))
            padded, alone = (np.asarray(model.form.full(c, n, 2)) for c, n in ((padded, 3), (alone, 2)))
        np.testing.assert_allclose(padded[:2], alone, rtol=1e-6, err_msg=name)


def test_lower_bound_never_decreases_and_constraints_hold_for_every_model(faithful):
    """One compiled program for all 14 models (a traced model index), k-means start, no regularisation."""
    X = (faithful - faithful.mean(0)) / faithful.std(0)
    with jax.enable_x64(True):
        Xc, wc = jnp.asarray(X)[None], jnp.ones((1, X.shape[0]))
        no_init = {"weights": None, "means": None, "precisions_cholesky": None}
        for index, name in enumerate(MCLUST_MODELS):
            best, _ = em.fit_jit(jax.random.key(index), Xc, wc, jnp.ones(4, bool), 0.0, 0.0, 200, -jnp.inf, no_init,
                                 covariance_type=MCLUST_MODELS, init_method="kmeans", n_init=1, trace_len=256,
                                 model_index=index)
            bounds = np.asarray(best.lower_bounds)[: int(best.n_iter)]
            assert np.all(np.diff(bounds) >= -1e-10), (name, np.diff(bounds).min())
            covariances = np.asarray(bg.covariance.FULL.covariances(best.params.precisions_cholesky))
            assert satisfies(name, covariances), name


@pytest.fixture(scope="module")
def selections():
    """select over mclust's whole family, K = 1..9, for each data set (as Mclust(X, G = 1:9) does)."""
    out = {}
    for name, load in DATASETS.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out[name] = bg.select(load(), n_components=range(1, 10), covariance_types="all", random_state=0)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("dataset", list(DATASETS))
def test_every_cell_reaches_mclusts_log_likelihood(selections, dataset):
    ref = fixture(dataset)
    table = selections[dataset].table.set_index(["covariance_type", "n_components"])
    compared = 0
    for name in ref["models"]:
        for k, loglik in zip(ref["G"], ref["loglik"][name]):
            if loglik is None:
                continue
            row = table.loc[(name, k)]
            assert not row.degenerate, (dataset, name, k)
            # mclust's loglik is that of the E-step before its last M-step (tolerance 1e-5 relative)
            assert row.log_likelihood >= loglik - 1e-2, (dataset, name, k, row.log_likelihood, loglik)
            assert row.n_parameters == ref["npar"][name][k - 1]
            compared += 1
    assert compared >= 120 if ref["d"] > 1 else compared == 18


@pytest.mark.slow
@pytest.mark.parametrize("dataset", list(DATASETS))
def test_bic_picks_mclusts_model_and_k(selections, dataset):
    ref = fixture(dataset)["chosen"]
    sel = selections[dataset]
    assert (sel.best_.covariance_type, sel.best_.n_components) == (ref["modelName"], ref["G"])
    np.testing.assert_allclose(sel.table_mclust().loc[ref["G"], ref["modelName"]], ref["bic"], atol=0.05)
    # the chosen fit's decomposition in mclust's terms
    volumes = np.sort(sel.best_.volumes_)
    ref_sigma = np.asarray(ref["sigma"])
    ref_volumes = np.sort(np.exp(np.linalg.slogdet(ref_sigma)[1] / ref_sigma.shape[-1]))
    np.testing.assert_allclose(volumes, ref_volumes, rtol=5e-3)
    order = np.argsort(sel.best_.means_[:, 0])
    ref_order = np.argsort(np.asarray(ref["mean"])[:, 0])
    np.testing.assert_allclose(sel.best_.means_[order], np.asarray(ref["mean"])[ref_order], rtol=5e-3, atol=1e-3)


def test_table_in_mclusts_layout(selections):
    wide = selections["faithful"].table_mclust()
    assert list(wide.columns) == list(MCLUST_MODELS) and list(wide.index) == list(range(1, 10))
    ref = fixture("faithful")["bic"]
    np.testing.assert_allclose(wide["EEE"].to_numpy(), np.asarray(ref["EEE"], float), atol=0.05)
