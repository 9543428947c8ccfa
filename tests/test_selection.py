"""Model selection: the grid, the criteria, and the optimum careful tools reach on Old Faithful."""

import math

import numpy as np
import pytest

import bayesgmm as bg
from bayesgmm import selection


@pytest.fixture(scope="module")
def faithful_selection(faithful):
    return bg.select(faithful, n_components=range(1, 10), random_state=0)


def test_faithful_reaches_mclust_optimum(faithful_selection, faithful):
    """mclust (Scrucca et al. 2016, 'A quick tour of mclust'): EEE, 3 components, logL -1126.326, BIC -2314.316."""
    table, best = faithful_selection.table, faithful_selection.best_
    assert (best.covariance_type, best.n_components) == ("tied", 3)
    row = table[(table.covariance_type == "tied") & (table.n_components == 3)].iloc[0]
    assert row.log_likelihood >= -1126.326 - 1e-3
    assert row.n_parameters == 11
    np.testing.assert_allclose(-row.bic, -2314.316, atol=0.05)  # mclust's sign: 2 logL - p log n
    # VVV with 2 components (scikit-learn "full"), mclust: BIC -2322.192
    full2 = table[(table.covariance_type == "full") & (table.n_components == 2)].iloc[0]
    np.testing.assert_allclose(-full2.bic, -2322.192, atol=0.05)
    assert table.converged.all()


def test_table_is_consistent_with_the_estimator(faithful_selection, faithful):
    table, best = faithful_selection.table, faithful_selection.best_
    assert len(table) == 36
    assert set(table.columns) >= {"covariance_type", "n_components", "log_likelihood", "n_parameters", "aic", "bic",
                                  "icl", "converged", "degenerate"}
    row = table.loc[table.bic.idxmin()]
    assert not row.degenerate and table.degenerate.sum() <= 2  # diag K=9 sits on a repeated waiting time
    np.testing.assert_allclose(best.bic(faithful), row.bic, rtol=1e-9)
    np.testing.assert_allclose(best.aic(faithful), row.aic, rtol=1e-9)
    np.testing.assert_allclose(best.score(faithful) * len(faithful), row.log_likelihood, rtol=1e-9)
    np.testing.assert_allclose(table.bic, -2 * table.log_likelihood + table.n_parameters * math.log(272))
    assert np.all(table.icl >= table.bic - 1e-9)
    assert best.weights_.shape == (3,) and np.isclose(best.weights_.sum(), 1.0)
    assert best.covariances_.dtype == np.float64
    np.testing.assert_allclose(best.covariances_ @ best.precisions_, np.eye(2), atol=1e-10)
    # the likelihood grows with K within a type (nested models, each fit at its optimum)
    for _, group in table.groupby("covariance_type"):
        assert np.all(np.diff(group.sort_values("n_components").log_likelihood) > -1.0)


def test_padded_grid_point_equals_a_plain_fit(faithful):
    """A K=2 fit padded to K=4 with masked components is the same model as an unpadded K=2 fit."""
    sel = bg.select(faithful, n_components=[2, 4], covariance_types=["full"], random_state=0)
    row = sel.table[sel.table.n_components == 2].iloc[0]
    gm = bg.GaussianMixture(2, n_init=10, tol=1e-6, max_iter=1000, random_state=0).fit(faithful)
    np.testing.assert_allclose(row.log_likelihood, gm.score(faithful) * 272, rtol=1e-7)


def test_other_criteria_and_weights(faithful):
    sel = bg.select(faithful, n_components=range(1, 5), covariance_types=["full", "tied"], criterion="aic",
                    random_state=0)
    best_row = sel.table.loc[sel.table.aic.idxmin()]
    assert (sel.best_.covariance_type, sel.best_.n_components) == (best_row.covariance_type, best_row.n_components)
    weighted = bg.select(faithful, n_components=[2], covariance_types=["full"],
                         sample_weight=np.full(272, 2.0), random_state=0)
    doubled = bg.select(np.repeat(faithful, 2, axis=0), n_components=[2], covariance_types=["full"], random_state=0)
    np.testing.assert_allclose(weighted.table.bic, doubled.table.bic, rtol=1e-6)


def test_selection_bad_arguments(faithful):
    with pytest.raises(ValueError, match="covariance_types must be a non-empty subset"):
        bg.select(faithful, covariance_types=["banana"])
    with pytest.raises(ValueError, match="criterion must be"):
        bg.select(faithful, criterion="xyz")
    with pytest.raises(ValueError, match="n_components must be an integer >= 1 or a non-empty collection"):
        bg.select(faithful, n_components=[0, 1])
    with pytest.raises(ValueError, match="Input X contains NaN"):
        bg.select(np.full((5, 2), np.nan))


def test_one_compile_per_covariance_type(faithful):
    bg.select(faithful[:100], n_components=range(1, 4), covariance_types=["diag"], random_state=0)
    before = selection._fit_grid._cache_size()
    bg.select(faithful[:100], n_components=range(1, 4), covariance_types=["diag"], tol=1e-4, reg_covar=1e-4,
              random_state=1)
    assert selection._fit_grid._cache_size() == before


def test_a_collapsed_component_is_flagged_and_never_chosen():
    """12 rows share one y value (rounded data): a diagonal component can sit on them with variance
    reg_covar and an unbounded-looking likelihood. mclust gives such fits no BIC; select flags them."""
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 1, (150, 2)), rng.normal(6, 1, (150, 2)),
                   np.column_stack([rng.normal(3, 1, 12), np.full(12, 3.0)])])
    with pytest.warns(UserWarning, match="diag with 3 components has the lowest BIC .* collapsed component"):
        sel = bg.select(X, n_components=[2, 3], covariance_types=["diag"], random_state=0)
    table = sel.table.set_index("n_components")
    assert table.degenerate.tolist() == [False, True]
    assert table.bic[3] < table.bic[2]  # the spike wins on BIC ...
    assert sel.best_.n_components == 2  # ... and is not chosen
    spike = bg.GaussianMixture(3, covariance_type="diag", n_init=10, random_state=0).fit(X)
    assert spike.covariances_.min() < 1e-5  # the collapsed variance is reg_covar, not the data's


def test_smallest_variance_ratio_matches_numpy():
    rng = np.random.default_rng(1)
    A = rng.normal(size=(3, 2, 2))
    covariances = A @ A.transpose(0, 2, 1) + 0.1 * np.eye(2)
    data_var = np.array([4.0, 0.25])
    params = bg.GMMParams(np.full(3, 1 / 3), np.zeros((3, 2)),
                          np.linalg.cholesky(np.linalg.inv(covariances)), "full")
    scale = np.diag(1 / np.sqrt(data_var))
    expected = min(np.linalg.eigvalsh(scale @ c @ scale).min() for c in covariances[:2])
    np.testing.assert_allclose(selection.smallest_variance_ratio(params, 2, data_var), expected, rtol=1e-10)
    for ct, chol, var in [("diag", np.array([[1.0, 2.0], [0.5, 4.0]]), [2.0, 1 / 16]),
                          ("spherical", np.array([2.0, 0.5]), [1.0, 0.25])]:
        diag_params = bg.GMMParams(np.full(2, 0.5), np.zeros((2, 2)), chol, ct)
        # variances 1/chol**2 in units of var: the smallest is 1 / max(chol**2 * var)
        expected = 1 / np.max(np.broadcast_to(chol.reshape(2, -1) ** 2, (2, 2)) * np.asarray(var))
        np.testing.assert_allclose(selection.smallest_variance_ratio(diag_params, 2, np.asarray(var)), expected)
