"""Plots: each returns its Axes or Figure, with the expected ellipses, lines, labels and legends."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Ellipse  # noqa: E402

import bayesgmm as bg  # noqa: E402
from bayesgmm import plot  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def faithful_fit():
    X = bg.datasets.load_faithful()
    return bg.GaussianMixture(2, random_state=0).fit(X), X


def ellipses(ax):
    return [p for p in ax.patches if isinstance(p, Ellipse)]


def test_criterion_plot_has_a_line_per_covariance_type_and_marks_the_best():
    table = pd.DataFrame({
        "covariance_type": ["full"] * 3 + ["diag"] * 3,
        "n_components": [1, 2, 3] * 2,
        "bic": [30.0, 12.0, 14.0, 40.0, np.inf, 11.0],
        "aic": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
    })
    ax = plot.criterion(table)
    assert isinstance(ax, Axes)
    lines = ax.get_lines()
    assert len(lines) == 3  # full, diag, chosen marker
    assert np.isnan(lines[1].get_ydata()[1])  # a failed fit is a gap, not a point
    assert ax.get_xlabel() == "number of components K"
    assert ax.get_ylabel() == "BIC (lower is better)"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["full", "diag", "chosen: diag, K = 3"]
    assert plot.criterion(table, "aic").get_ylabel() == "AIC (lower is better)"
    with pytest.raises(ValueError, match="'icl' column"):
        plot.criterion(table, "icl")


def test_criterion_plot_crosses_collapsed_fits_and_never_circles_them():
    table = pd.DataFrame({"covariance_type": ["diag"] * 3, "n_components": [1, 2, 3],
                          "bic": [30.0, 12.0, 5.0], "degenerate": [False, False, True]})
    ax = plot.criterion(table)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["diag", "collapsed component (never chosen)", "chosen: diag, K = 2"]
    crosses = ax.get_lines()[1]
    assert crosses.get_marker() == "x" and crosses.get_xdata().tolist() == [3]


def test_criterion_plot_of_a_selection_result(faithful_fit):
    gm, X = faithful_fit
    table = pd.DataFrame({"covariance_type": ["full", "full"], "n_components": [1, 2],
                          "bic": [2.0, 1.0], "aic": [2.0, 1.0]})
    result = bg.SelectionResult(table=table, best_=gm, criterion="aic")
    assert plot.criterion(result).get_ylabel() == "AIC (lower is better)"


def test_clusters_two_features_one_ellipse_per_component(faithful_fit):
    gm, X = faithful_fit
    ax = plot.clusters(gm, X)
    assert isinstance(ax, Axes)
    assert len(ellipses(ax)) == 2
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("eruptions (min)", "waiting (min)")
    counts = np.bincount(gm.predict(X), minlength=2)
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == [f"component {k} (weight {gm.weights_[k]:.2f}, n = {counts[k]})" for k in range(2)]
    # each ellipse is centred on its component mean
    centres = sorted(e.get_center() for e in ellipses(ax))
    np.testing.assert_allclose(centres, sorted(map(tuple, gm.means_)))


def test_ellipse_holds_the_requested_mass():
    cov = np.array([[4.0, 1.0], [1.0, 2.0]])
    e = plot.covariance_ellipse([0.0, 0.0], cov, level=0.9)
    rng = np.random.default_rng(0)
    pts = rng.multivariate_normal([0, 0], cov, size=20000)
    maha = np.einsum("ni,ij,nj->n", pts, np.linalg.inv(cov), pts)
    assert abs(np.mean(maha <= plot.ellipse_radius(0.9) ** 2) - 0.9) < 0.01
    w, h = sorted([e.width, e.height])
    np.testing.assert_allclose([w, h], 2 * plot.ellipse_radius(0.9) * np.sqrt(np.linalg.eigvalsh(cov)))


def test_pairwise_grid_for_three_features():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(np.concatenate([rng.normal(0, 1, (60, 3)), rng.normal(5, 1, (60, 3))]), columns=["a", "b", "c"])
    gm = bg.GaussianMixture(2, covariance_type="diag", random_state=0).fit(X)
    fig = plot.clusters(gm, X)
    assert isinstance(fig, Figure)
    panels = [a for a in fig.axes if a.get_visible()]
    assert len(panels) == 3  # (a, b), (a, c), (b, c)
    assert all(len(ellipses(a)) == 2 for a in panels)
    assert sorted(a.get_xlabel() for a in panels if a.get_xlabel()) == ["a", "b"]
    ax = plot.clusters(gm, X, features=["a", "c"])
    assert isinstance(ax, Axes) and ax.get_ylabel() == "c"
    fig = plot.uncertainty(gm, X)
    assert isinstance(fig, Figure)
    with pytest.raises(ValueError, match="pass features=\\[i, j\\]"):
        plot.clusters(gm, X, ax=plt.gca())
    with pytest.raises(ValueError, match="unknown feature 'z'"):
        plot.clusters(gm, X, features=["a", "z"])


def test_uncertainty_colours_are_one_minus_max_probability(faithful_fit):
    gm, X = faithful_fit
    ax = plot.uncertainty(gm, X)
    assert isinstance(ax, Axes)
    expected = 1 - gm.predict_proba(X).max(axis=1)
    colours = ax.collections[0].get_array()
    np.testing.assert_allclose(np.sort(colours), np.sort(expected))
    colorbar_axes = [a for a in ax.figure.axes if a is not ax]
    assert colorbar_axes[0].get_ylabel() == "uncertainty  1 − max p(k | x)"
    assert len(ellipses(ax)) == 2


def test_unfitted_model_is_refused():
    with pytest.raises(ValueError, match="not fitted"):
        plot.clusters(bg.GaussianMixture(2), np.zeros((5, 2)))


def test_one_feature_shows_component_densities(faithful_fit):
    _, X = faithful_fit
    one = X[["waiting"]]
    gm = bg.GaussianMixture(2, random_state=0).fit(one)
    ax = plot.clusters(gm, one)
    assert ax.get_xlabel() == "waiting (min)" and ax.get_ylabel() == "density"
    assert len(ax.get_lines()) == 2 + 2  # two components, the mixture, the rug
    assert len(ax.get_legend().get_texts()) == 2
    ax = plot.uncertainty(gm, one)
    assert ax.get_ylabel() == "uncertainty"


def test_coclustering_from_a_matrix():
    P = np.array([[1.0, 0.1, 0.9], [0.1, 1.0, 0.2], [0.9, 0.2, 1.0]])
    ax = plot.coclustering(None, matrix=P, labels=[0, 1, 0])
    image = ax.images[0].get_array()
    np.testing.assert_allclose(image, P[np.ix_([0, 2, 1], [0, 2, 1])])  # ordered by cluster
    assert ax.figure.axes[1].get_ylabel() == "P(same cluster | data)"
    with pytest.raises(ValueError, match="square"):
        plot.coclustering(None, matrix=np.zeros((2, 3)))


@pytest.mark.slow
def test_posterior_plots(faithful_posterior):
    model, X = faithful_posterior
    ax = plot.coclustering(model, X)
    assert ax.images[0].get_array().shape == (len(X), len(X))
    ax = plot.posterior_ellipses(model, X, n_draws=10)
    assert len(ellipses(ax)) == 10 * 2 + 2
    assert ax.get_xlabel() == "eruptions (min)"
    assert ax.get_legend().get_texts()[-1].get_text() == "10 posterior draws (thin)"
    with pytest.raises(ValueError, match="needs a fitted BayesianGaussianMixture"):
        plot.posterior_ellipses(model.em_)
