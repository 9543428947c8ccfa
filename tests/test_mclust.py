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


#: Restarts per cell (mclust's hierarchical start + k-means). select's default is 10; on faithful 3
#: already reach mclust in every cell, so CI uses 3 there. On iris and diabetes mclust's own VVE
#: M-step (which does not maximise its objective) walks to optima (iris K = 5, diabetes K = 8) that 3
#: starts of the exact M-step can miss by 1.6-3.2 and 10 find.
RESTARTS = {"faithful": 3, "iris": 10, "diabetes": 10, "faithful_waiting": 3}


@pytest.mark.slow
@pytest.mark.parametrize("dataset", list(DATASETS))
def test_the_whole_family_reproduces_mclust(dataset):
    """select over mclust's whole family, K = 1..9, as Mclust(X, G = 1:9) does: every cell that mclust
    estimates reaches its log-likelihood (less 0.01) with no degenerate component, the parameter counts
    are mclust's, and BIC picks mclust's model and K with mclust's decomposition. (One test per data
    set, so that the parallel test workers each fit their own.)"""
    ref = fixture(dataset)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sel = bg.select(DATASETS[dataset](), n_components=range(1, 10), covariance_types="all", random_state=0,
                        n_init=RESTARTS[dataset])
    table = sel.table.set_index(["covariance_type", "n_components"])
    compared, short = 0, []
    for name in ref["models"]:
        for k, loglik in zip(ref["G"], ref["loglik"][name]):
            if loglik is None:
                continue
            row = table.loc[(name, k)]
            # mclust's loglik is that of the E-step before its last M-step (tolerance 1e-5 relative)
            if row.degenerate or row.log_likelihood < loglik - 1e-2:
                short.append((name, k, round(row.log_likelihood - loglik, 3), bool(row.degenerate)))
            assert row.n_parameters == ref["npar"][name][k - 1]
            compared += 1
    assert not short, short
    assert compared >= 120 if ref["d"] > 1 else compared == 18

    chosen = ref["chosen"]
    assert (sel.best_.covariance_type, sel.best_.n_components) == (chosen["modelName"], chosen["G"])
    wide = sel.table_mclust()
    assert list(wide.columns) == ref["models"] and list(wide.index) == list(range(1, 10))
    np.testing.assert_allclose(wide.loc[chosen["G"], chosen["modelName"]], chosen["bic"], atol=0.05)
    ref_sigma = np.asarray(chosen["sigma"])
    ref_volumes = np.exp(np.linalg.slogdet(ref_sigma)[1] / ref_sigma.shape[-1])
    np.testing.assert_allclose(np.sort(sel.best_.volumes_), np.sort(ref_volumes), rtol=5e-3)
    order, ref_order = np.argsort(sel.best_.means_[:, 0]), np.argsort(np.asarray(chosen["mean"])[:, 0])
    np.testing.assert_allclose(sel.best_.means_[order], np.asarray(chosen["mean"])[ref_order], rtol=5e-3, atol=1e-3)
    if dataset == "faithful":  # mclust's sign and values in its layout; higher where restarts find better
        ref_eee = np.asarray(ref["bic"]["EEE"], float)
        np.testing.assert_allclose(wide["EEE"].to_numpy()[:4], ref_eee[:4], atol=0.15)
        assert np.all(wide["EEE"].to_numpy() >= ref_eee - 0.05)


def test_hierarchical_start_reproduces_mclusts_fit(faithful):
    """From mclust's own starting partition, EM lands on mclust's EEE fit of Old Faithful."""
    ref = fixture("faithful")["chosen"]
    gm = bg.GaussianMixture(3, covariance_type="EEE", init_params="hc", tol=1e-9, max_iter=2000, reg_covar=0.0)
    gm.fit(faithful)
    order, ref_order = np.argsort(gm.means_[:, 0]), np.argsort(np.asarray(ref["mean"])[:, 0])
    # mclust stops at a relative change of 1e-5, a little short of the optimum we iterate to
    np.testing.assert_allclose(gm.means_[order], np.asarray(ref["mean"])[ref_order], rtol=2e-3)
    np.testing.assert_allclose(gm.covariances_, np.asarray(ref["sigma"])[0], rtol=3e-2)
    np.testing.assert_allclose(gm.weights_[order], np.asarray(ref["pro"])[ref_order], rtol=3e-2)
    assert gm.score(faithful) * len(faithful) >= ref["loglik_at_params"] - 1e-6


def test_parsimonious_fit_saves_and_loads(tmp_path, faithful):
    gm = bg.GaussianMixture(2, covariance_type="EEV", random_state=0, prior="conjugate").fit(faithful)
    assert gm.covariances_.shape == (2, 2, 2) and gm.volumes_.shape == (2,) and gm.orientations_.shape == (2, 2, 2)
    np.testing.assert_allclose(gm.volumes_[0], gm.volumes_[1])  # E: equal volumes
    np.testing.assert_allclose(gm.shapes_[0], gm.shapes_[1])  # E: equal shapes
    path = tmp_path / "eev.bgmm"
    gm.save(path)
    back = bg.load(path)
    assert back.covariance_type == "EEV" and back.prior == "conjugate"
    np.testing.assert_array_equal(back.predict_proba(faithful), gm.predict_proba(faithful))
