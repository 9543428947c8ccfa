"""Old Faithful, K=2, full covariances: NUTS, VI and EM side by side (the acceptance tests of the Bayesian path).

One NUTS fit (4 chains, 1000 warm-up + 1000 draws) and one VI fit serve every check. The checks are
plain functions called from one test, so that ``pytest -n 2`` (which spreads the tests of a module
over workers) does not sample the same posterior twice; on 2 CPU cores it runs in 1 to 2 minutes,
most of it compilation.
"""

import matplotlib

matplotlib.use("Agg")

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from arviz_base import from_dict  # noqa: E402
from arviz_stats import loo, rhat  # noqa: E402
from arviz_stats import summary as az_summary  # noqa: E402

from bayesgmm.bayes import infer  # noqa: E402
from bayesgmm.bayes.estimator import BayesianGaussianMixture  # noqa: E402
from bayesgmm.bayes.relabel import permute_components, relabel  # noqa: E402
from bayesgmm.compare import compare  # noqa: E402
from bayesgmm.datasets import load_faithful  # noqa: E402
from bayesgmm.estimators import GaussianMixture  # noqa: E402

pytestmark = pytest.mark.slow
PARAMETERS = ["weights", "means", "covariances"]


def test_old_faithful_em_nuts_vi():
    X = load_faithful()
    em = GaussianMixture(2, covariance_type="full", n_init=3, random_state=0).fit(X)
    nuts = BayesianGaussianMixture(2, covariance_type="full", inference="nuts", num_chains=4, num_warmup=1000,
                                   num_samples=1000, init=em, random_state=0).fit(X)
    check_nuts_converges_after_relabelling(nuts)
    check_posterior_means_are_close_to_em(nuts, em)
    check_permuted_chains_fail_rhat_and_relabelling_recovers(nuts, em)
    check_datatree_layout_and_arviz_functions(nuts, X)
    check_arviz_plots_trace_and_rank(nuts)
    check_posterior_predictive_outputs(nuts, em, X)
    check_refit_with_other_priors_does_not_recompile(nuts, em, X)
    vi = BayesianGaussianMixture(2, covariance_type="full", inference="vi", num_samples=1000, init=em,
                                 random_state=0).fit(X)
    check_vi_agrees_with_nuts_at_a_fraction_of_the_cost(vi, nuts)
    check_compare_table(em, nuts, vi, X)
    check_sample_weight_equals_duplicated_rows(X, em)


def posterior_sd(fit, name: str) -> np.ndarray:
    return fit.idata_["posterior"][name].std(("chain", "draw")).values


def check_nuts_converges_after_relabelling(nuts):
    diagnostics = nuts.summary(var_names=PARAMETERS)
    assert len(diagnostics) == 2 + 4 + 8
    assert diagnostics["r_hat"].max() <= 1.01
    assert diagnostics["ess_bulk"].min() >= 400
    assert nuts.n_divergences_ == 0
    assert int(nuts.idata_["sample_stats"]["diverging"].sum()) == 0
    # Label-invariant diagnostics are reported too.
    invariant = nuts.summary(var_names=["log_lik", "weights_sorted"])
    assert invariant["r_hat"].max() <= 1.01
    np.testing.assert_allclose(nuts.n_occupied_posterior_, [0, 0, 1])


def check_posterior_means_are_close_to_em(nuts, em):
    for name in PARAMETERS:
        em_value = getattr(em, name + "_")
        bayes_value = getattr(nuts, name + "_")
        # Within two posterior standard deviations and 5% of each other.
        assert np.all(np.abs(bayes_value - em_value) <= 2 * posterior_sd(nuts, name)), name
        np.testing.assert_allclose(bayes_value, em_value, rtol=0.05, atol=0.01 * np.abs(em_value).max())


def check_permuted_chains_fail_rhat_and_relabelling_recovers(nuts, em):
    """The failure relabelling fixes: swap the labels of chains 1 and 3 and R-hat jumps far above 1.01."""
    draws = nuts.draws_
    n_chains, n_draws = 4, nuts.num_samples
    swap = np.tile(np.arange(2), (n_chains, n_draws, 1))
    swap[[1, 3]] = [1, 0]
    switched = permute_components(draws, swap.reshape(-1, 2), "full")

    def worst(d) -> float:
        tree = from_dict({"posterior": {name: np.asarray(getattr(d, name)).reshape((n_chains, n_draws) + getattr(
            d, name).shape[1:]) for name in PARAMETERS}})
        values = rhat(tree)
        return max(float(values[name].max()) for name in PARAMETERS)

    assert worst(switched) > 1.5
    cov = jnp.asarray(em.covariances_, jnp.float32)
    reference = type(draws)(jnp.asarray(em.weights_, jnp.float32), jnp.asarray(em.means_, jnp.float32), cov,
                            jnp.linalg.cholesky(cov))
    relabelled, perms, _ = relabel(switched, reference, "full")
    assert worst(relabelled) <= 1.01
    np.testing.assert_array_equal(perms.reshape(swap.shape), swap)  # a swap is its own inverse


def check_datatree_layout_and_arviz_functions(nuts, X):
    tree = nuts.idata_
    for group in ("posterior", "sample_stats", "log_likelihood", "observed_data", "label_invariant"):
        assert group in tree.children, group
    posterior = tree["posterior"]
    assert posterior["means"].dims == ("chain", "draw", "component", "feature")
    assert posterior["covariances"].dims == ("chain", "draw", "component", "feature", "feature_bis")
    assert list(posterior["feature"].values) == list(X.columns)
    assert {"diverging", "energy", "step_size"} <= set(tree["sample_stats"].data_vars)
    assert tree["log_likelihood"]["obs"].shape == (4, 1000, len(X))
    np.testing.assert_array_equal(tree["observed_data"]["obs"].values, X.to_numpy())
    # arviz works on it unchanged.
    table = az_summary(tree, var_names=PARAMETERS, round_to="none")
    assert table["r_hat"].max() <= 1.01
    result = loo(tree, pointwise=True)
    assert np.isfinite(result.elpd) and float(result.pareto_k.max()) < 0.7
    assert 6 < result.p < 16  # 11 parameters
    # The raw draws are kept; the EM start means the chains never switched here.
    assert "posterior" in nuts.idata_raw_.children
    assert nuts.relabel_permutations_.shape == (4, 1000, 2)


def check_arviz_plots_trace_and_rank(nuts):
    import arviz_plots as azp
    import matplotlib.pyplot as plt

    for plot in (azp.plot_trace, azp.plot_rank):
        plot(nuts.idata_, var_names=["weights", "means"], backend="matplotlib")
        plt.close("all")


def check_posterior_predictive_outputs(nuts, em, X):
    proba = nuts.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)
    assert np.mean(nuts.predict(X) == em.predict(X)) >= 0.98
    # With 272 points the posterior predictive density is close to the plug-in EM density, with fatter
    # tails: parameter uncertainty raises the density of the outlying points.
    predictive, plug_in = nuts.score_samples(X), em.score_samples(X)
    assert np.median(np.abs(predictive - plug_in)) < 0.05
    assert np.all((predictive - plug_in)[np.argsort(plug_in)[:5]] > 0)
    assert abs(nuts.score(X) - em.score(X)) < 0.02
    together = nuts.coclustering(X)
    np.testing.assert_allclose(together, together.T, atol=1e-6)
    np.testing.assert_array_equal(np.diag(together), 1.0)
    assert together.min() >= 0.0 and together.max() <= 1.0
    same = em.predict(X)[:, None] == em.predict(X)[None, :]
    assert together[same].mean() > 0.97 and together[~same].mean() < 0.03
    np.testing.assert_allclose(nuts.coclustering(), together, atol=1e-6)  # default: the training data


def check_refit_with_other_priors_does_not_recompile(nuts, em, X):
    """Priors and data values are traced: a second fit with new priors reuses the compiled sampler."""
    before = infer._sample_chains._cache_size()
    other = BayesianGaussianMixture(2, num_chains=4, num_warmup=1000, num_samples=1000, init=em, random_state=1,
                                    weight_concentration_prior=2.0, mean_prior_scale=50.0).fit(X)
    assert infer._sample_chains._cache_size() == before
    assert other.summary(var_names=PARAMETERS)["r_hat"].max() <= 1.01


def check_vi_agrees_with_nuts_at_a_fraction_of_the_cost(vi, nuts):
    for name in PARAMETERS:
        gap = np.abs(getattr(vi, name + "_") - getattr(nuts, name + "_"))
        assert np.all(gap <= 3 * posterior_sd(nuts, name)), name
    # Cost in gradient evaluations (hardware independent): NUTS counts leapfrog steps incl. warm-up.
    assert vi.n_grad_evals_ <= 0.25 * nuts.n_grad_evals_
    print(f"\nfit time: VI {vi.fit_time_:.1f}s, NUTS {nuts.fit_time_:.1f}s (compilation included); "
          f"gradients: VI {vi.n_grad_evals_}, NUTS {nuts.n_grad_evals_}")
    trace = vi.elbo_trace_
    assert trace.shape == (vi.vi_steps,) and np.all(np.isfinite(trace))
    assert trace[-500:].mean() > trace[:50].mean()
    assert abs(vi.elbo_ - trace[-500:].mean()) < 5.0
    # Same layout as NUTS: one chain of independent draws, with p and q densities for LOO.
    assert vi.idata_["posterior"]["means"].dims == nuts.idata_["posterior"]["means"].dims
    assert vi.idata_["posterior"].sizes["chain"] == 1
    assert {"lp", "log_q"} <= set(vi.idata_["sample_stats"].data_vars)


def check_compare_table(em, nuts, vi, X):
    table = compare({"em": em, "nuts": nuts, "vi": vi}, X)
    assert list(table.index) == ["em", "nuts", "vi"]
    assert list(table["inference"]) == ["em", "nuts", "vi"]
    np.testing.assert_allclose(table.loc["em", "bic"], em.bic(X), rtol=1e-6)
    np.testing.assert_allclose(table.loc["em", "aic"], em.aic(X), rtol=1e-6)
    assert (table["n_parameters"] == 11).all()
    # The point estimates are all close to the maximum likelihood.
    assert (table["log_likelihood"] <= table.loc["em", "log_likelihood"] + 0.05).all()
    assert (table.loc[["nuts", "vi"], "log_likelihood"] >= table.loc["em", "log_likelihood"] - 2.0).all()
    assert np.isnan(table.loc["em", ["elpd_loo", "p_loo", "elbo", "r_hat_max", "n_divergences"]].astype(float)).all()
    assert table.loc["nuts", "r_hat_max"] <= 1.01 and table.loc["nuts", "ess_bulk_min"] >= 400
    assert table.loc["nuts", "n_divergences"] == 0
    assert np.isnan(table.loc["nuts", "elbo"]) and np.isfinite(table.loc["vi", "elbo"])
    # Both posteriors predict equally well; VI's LOO is importance-corrected by p / q.
    assert abs(table.loc["nuts", "elpd_loo"] - table.loc["vi", "elpd_loo"]) < table.loc["nuts", "elpd_loo_se"]
    assert (table.loc[["nuts", "vi"], "fit_time"] > 0).all()
    with pytest.warns(UserWarning, match="not the data the posterior was fitted to"):
        other = compare({"nuts": nuts}, X.iloc[:100])
    assert np.isnan(other.loc["nuts", "elpd_loo"])


def check_sample_weight_equals_duplicated_rows(X, em):
    """Integer weights give the same posterior as repeating rows (VI: deterministic given the target).

    Both data sets have Old Faithful's 272 rows, so they reuse the compiled VI program: the first 222
    rows plus copies of the first 50, against all 272 rows with weight 2 on the first 50 and 0 on the
    last 50.
    """
    X = X.to_numpy()
    repeated_rows = np.concatenate([X[:222], X[:50]])
    weights = np.ones(len(X))
    weights[:50] = 2.0
    weights[222:] = 0.0
    fit = dict(inference="vi", num_samples=1000, init=em, random_state=0)
    repeated = BayesianGaussianMixture(2, **fit).fit(repeated_rows)
    weighted = BayesianGaussianMixture(2, **fit).fit(X, sample_weight=weights)
    for name in PARAMETERS:
        np.testing.assert_allclose(getattr(weighted, name + "_"), getattr(repeated, name + "_"), rtol=2e-3,
                                   atol=1e-4)
    np.testing.assert_allclose(weighted.elbo_, repeated.elbo_, rtol=1e-3)
    # The pointwise log-likelihood is weighted: zero for the removed rows, doubled for the repeated ones.
    log_lik = weighted.idata_["log_likelihood"]["obs"].values
    assert np.all(log_lik[..., 222:] == 0)
    np.testing.assert_allclose(log_lik[..., :50].mean((0, 1)),
                               2 * repeated.idata_["log_likelihood"]["obs"].values[..., :50].mean((0, 1)), rtol=1e-2)
    assert "sample_weight" in weighted.idata_["constant_data"]
