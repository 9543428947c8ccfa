"""Plots of fitted mixtures, in the spirit of mclust's ``plot.Mclust``.

* :func:`criterion`: BIC (or AIC, ICL) against the number of components, one line per covariance type;
* :func:`clusters`: the data coloured by hard assignment, with each component's covariance ellipse;
* :func:`uncertainty`: the assignment uncertainty ``1 - max_k p(k | x)`` of every point;
* :func:`coclustering`: the posterior probability that two points share a component;
* :func:`posterior_ellipses`: component ellipses of posterior draws, showing parameter uncertainty.

With more than two features, :func:`clusters` and :func:`uncertainty` draw a grid of pairwise
panels (the projection of each Gaussian onto a pair of features is exact: the marginal of a
Gaussian); with one feature they draw densities and uncertainties along it. Axis labels carry the feature names and, when the data frame declares them in
``X.attrs["units"]`` (as :func:`bayesgmm.datasets.load_faithful` does), their units. Traces, rank
plots and other MCMC diagnostics are ArviZ's own (``arviz.plot_trace(model.idata_)``).

Every function returns the matplotlib ``Axes`` it drew on, or the ``Figure`` for pairwise grids.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import Colormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Ellipse
from scipy.stats import chi2
from sklearn.utils._param_validation import Interval, validate_parameter_constraints

from bayesgmm.selection import chosen_row

#: Largest number of features drawn as a full grid of pairwise panels without ``features=``.
MAX_PAIRWISE_FEATURES = 6


# ------------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------------


def _pyplot():
    import matplotlib.pyplot as plt

    return plt


def component_colors(n_components: int) -> list[Any]:
    """One distinct colour per component (``tab10``, then ``tab20`` beyond ten components)."""
    cmap: Colormap = _pyplot().get_cmap("tab10" if n_components <= 10 else "tab20")
    return [cmap(k % cmap.N) for k in range(n_components)]


def full_covariances(covariances: Any, covariance_type: str, n_components: int, n_features: int) -> np.ndarray:
    """Covariances of any type as full matrices: shape (..., n_components, n_features, n_features).

    Parameters
    ----------
    covariances : array
        scikit-learn shapes, after any leading axes: full (..., K, D, D), tied (..., D, D),
        diag (..., K, D), spherical (..., K).
    covariance_type : str
        Any model name (see :func:`bayesgmm.covariance.get_model`).
    n_components, n_features : int

    Examples
    --------
    >>> full_covariances(np.array([[1.0, 4.0]]), "diag", 1, 2)
    array([[[1., 0.],
            [0., 4.]]])
    """
    from bayesgmm.covariance import get_model

    c = np.asarray(covariances, dtype=np.float64)
    return np.array(get_model(covariance_type).form.full(c, n_components, n_features))


def _data(model: Any, X: Any) -> tuple[np.ndarray, list[str], list[str]]:
    """X as a float array, with feature names and axis labels (name and unit where known)."""
    if isinstance(X, pd.DataFrame):
        names = [str(c) for c in X.columns]
        units = X.attrs.get("units", {})
    else:
        names = [str(c) for c in getattr(model, "feature_names_in_", [])]
        units = {}
    values = np.asarray(X, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {values.shape}")
    if len(names) != values.shape[1]:
        names = [f"feature {j}" for j in range(values.shape[1])]
    labels = [f"{n} ({units[n]})" if n in units else n for n in names]
    return values, names, labels


def _feature_indices(features: Sequence[int | str] | None, names: list[str], n_features: int) -> list[int]:
    if features is None:
        if n_features > MAX_PAIRWISE_FEATURES:
            raise ValueError(f"{n_features} features: choose at most {MAX_PAIRWISE_FEATURES} with features=[...]")
        return list(range(n_features))
    chosen = []
    for f in features:
        if isinstance(f, str):
            if f not in names:
                raise ValueError(f"unknown feature {f!r}; the features are {names}")
            chosen.append(names.index(f))
        elif not 0 <= int(f) < n_features:
            raise ValueError(f"feature index {f} out of range for {n_features} features")
        else:
            chosen.append(int(f))
    if len(chosen) < 1:
        raise ValueError("features must name at least one feature")
    return chosen


def ellipse_radius(level: float) -> float:
    """Mahalanobis radius of the ellipse that holds ``level`` of a 2-D Gaussian's mass.

    Examples
    --------
    >>> round(ellipse_radius(0.95), 4)
    2.4477
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    return float(math.sqrt(chi2.ppf(level, df=2)))


def covariance_ellipse(mean: Any, cov: Any, level: float = 0.95, **kwargs: Any) -> Ellipse:
    """The ellipse holding ``level`` of the mass of a 2-D Gaussian ``N(mean, cov)`` (a matplotlib patch)."""
    values, vectors = np.linalg.eigh(np.asarray(cov, dtype=np.float64))
    values = np.clip(values, 0.0, None)
    angle = math.degrees(math.atan2(vectors[1, 1], vectors[0, 1]))
    r = ellipse_radius(level)
    width, height = 2 * r * math.sqrt(values[1]), 2 * r * math.sqrt(values[0])
    return Ellipse(tuple(np.asarray(mean, dtype=np.float64)), width, height, angle=angle, **kwargs)


def _axes(ax: Axes | None, figsize: tuple[float, float] = (6.0, 4.5)) -> Axes:
    if ax is not None:
        return ax
    _, ax = _pyplot().subplots(figsize=figsize, layout="constrained")
    return ax


def _mixture(model: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weights (K,), means (K, D) and full covariances (K, D, D) of a fitted model."""
    for name in ("weights_", "means_", "covariances_"):
        if not hasattr(model, name):
            raise ValueError(f"the model is not fitted (it has no {name}); call fit first")
    k, d = np.shape(model.means_)
    covs = full_covariances(model.covariances_, model.covariance_type, k, d)
    return np.asarray(model.weights_, dtype=np.float64), np.asarray(model.means_, dtype=np.float64), covs


def _pair_grid(n: int, panel: float = 3.0) -> tuple[Figure, np.ndarray]:
    """A lower-triangular grid of (n - 1) x (n - 1) panels; the upper triangle is hidden."""
    fig, axes = _pyplot().subplots(n - 1, n - 1, figsize=(panel * (n - 1) + 1.5, panel * (n - 1)),
                                   layout="constrained", squeeze=False)
    for row in range(n - 1):
        for col in range(n - 1):
            if col > row:
                axes[row, col].set_visible(False)
    return fig, axes


def _draw_pairs(idx: list[int], labels: list[str], ax: Axes | None, draw_panel, title: str,
                legend_handles: list[Any] | None = None, draw_single=None, single_ylabel: str = "") -> Axes | Figure:
    """Run ``draw_panel(ax, i, j)`` on one panel (two features) or on a pairwise grid (more);
    with one feature, ``draw_single(ax, i)``."""
    if len(idx) == 1:
        ax = _axes(ax)
        draw_single(ax, idx[0])
        ax.set_xlabel(labels[idx[0]])
        ax.set_ylabel(single_ylabel)
        ax.set_title(title)
        if legend_handles:
            ax.legend(handles=legend_handles, fontsize="small", loc="best", framealpha=0.85)
        return ax
    if len(idx) == 2:
        ax = _axes(ax)
        draw_panel(ax, idx[0], idx[1])
        ax.set_xlabel(labels[idx[0]])
        ax.set_ylabel(labels[idx[1]])
        ax.set_title(title)
        if legend_handles:
            ax.legend(handles=legend_handles, fontsize="small", loc="best", framealpha=0.85)
        return ax
    if ax is not None:
        raise ValueError(f"{len(idx)} features make a grid of panels; pass features=[i, j] to draw on one Axes")
    fig, axes = _pair_grid(len(idx))
    for row in range(len(idx) - 1):
        for col in range(row + 1):
            panel = axes[row, col]
            i, j = idx[col], idx[row + 1]
            draw_panel(panel, i, j)
            if row == len(idx) - 2:
                panel.set_xlabel(labels[i])
            if col == 0:
                panel.set_ylabel(labels[j])
    fig.suptitle(title)
    if legend_handles:
        fig.legend(handles=legend_handles, loc="upper right", fontsize="small")
    return fig


def _component_handles(weights: np.ndarray, colors: list[Any], counts: np.ndarray | None = None) -> list[Line2D]:
    handles = []
    for k, w in enumerate(weights):
        text = f"component {k} (weight {w:.2f}" + (f", n = {counts[k]})" if counts is not None else ")")
        handles.append(Line2D([], [], color=colors[k], marker="o", linestyle="-", label=text))
    return handles


# ------------------------------------------------------------------------------------------------
# Plots
# ------------------------------------------------------------------------------------------------


def criterion(selection: Any, criterion: str | None = None, *, ax: Axes | None = None) -> Axes:
    """Information criterion against the number of components, one line per covariance type.

    Parameters
    ----------
    selection : SelectionResult or pandas.DataFrame
        What :func:`bayesgmm.select` returns, or its ``table``.
    criterion : {"bic", "aic", "icl"}, optional
        Default: the criterion the selection used ("bic" for a bare table).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
        One line per covariance type; the chosen model is circled and fits with a collapsed
        component (the table's ``degenerate`` column) are crossed.

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"covariance_type": ["full"] * 3, "n_components": [1, 2, 3],
    ...                       "bic": [30.0, 10.0, 20.0]})
    >>> ax = criterion(table)
    >>> len(ax.get_lines()), ax.get_ylabel()
    (2, 'BIC (lower is better)')
    """
    table = getattr(selection, "table", selection)
    if criterion is None:
        criterion = getattr(selection, "criterion", "bic")
    if not isinstance(table, pd.DataFrame) or criterion not in table:
        raise ValueError(f"expected a SelectionResult or a table with a {criterion!r} column")
    ax = _axes(ax)
    types = list(dict.fromkeys(table["covariance_type"]))
    colors = component_colors(len(types))
    markers = "osD^v<>p"
    for t, ct in enumerate(types):
        rows = table[table["covariance_type"] == ct].sort_values("n_components")
        values = rows[criterion].to_numpy(dtype=np.float64)
        values = np.where(np.isfinite(values), values, np.nan)
        ax.plot(rows["n_components"], values, marker=markers[t % len(markers)], color=colors[t], label=ct)
    if "degenerate" in table:
        collapsed = table[table["degenerate"].astype(bool) & np.isfinite(table[criterion].astype(float))]
        if not collapsed.empty:
            ax.plot(collapsed["n_components"], collapsed[criterion], marker="x", markersize=10, color="black",
                    linestyle="none", label="collapsed component (never chosen)")
    best = chosen_row(table, criterion)
    if best is not None:
        ax.plot([best["n_components"]], [best[criterion]], marker="o", markersize=16, markerfacecolor="none",
                markeredgecolor="black", linestyle="none",
                label=f"chosen: {best['covariance_type']}, K = {int(best['n_components'])}")
    ax.set_xlabel("number of components K")
    ax.set_ylabel(f"{criterion.upper()} (lower is better)")
    ax.set_xticks(sorted(set(int(k) for k in table["n_components"])))
    ax.set_title(f"Model selection by {criterion.upper()}")
    ax.legend(title="covariance type", fontsize="small")
    ax.grid(alpha=0.3)
    return ax


def clusters(model: Any, X: Any, *, level: float = 0.95, features: Sequence[int | str] | None = None,
             ax: Axes | None = None) -> Axes | Figure:
    """The data coloured by hard assignment, with each component's covariance ellipse and mean.

    Parameters
    ----------
    model : GaussianMixture or BayesianGaussianMixture
        Fitted; its ``predict``, ``weights_``, ``means_`` and ``covariances_`` are used.
    X : array-like or DataFrame of shape (n_samples, n_features)
    level : float, default=0.95
        Each ellipse holds this fraction of its component's mass (in the 2-D projection).
    features : sequence of int or str, optional
        Which features to show (default all). Two features give one panel, more a pairwise grid;
        one feature gives a histogram with the weighted component densities.
    ax : matplotlib Axes, optional
        Only for a single panel.

    Returns
    -------
    matplotlib.axes.Axes or matplotlib.figure.Figure
        An Axes with one ellipse patch per component (two features), else the pairwise Figure.
    """
    values, names, labels = _data(model, X)
    idx = _feature_indices(features, names, values.shape[1])
    weights, means, covs = _mixture(model)
    hard = np.asarray(model.predict(X))
    colors = component_colors(len(weights))
    noise = hard < 0  # a noise component's points (label -1), drawn in grey
    counts = np.bincount(hard[~noise], minlength=len(weights))

    def panel(ax: Axes, i: int, j: int) -> None:
        ax.scatter(values[:, i], values[:, j], c=[colors[k] if k >= 0 else "0.6" for k in hard], s=14, alpha=0.75,
                   linewidths=0)
        for k in range(len(weights)):
            sub = covs[k][np.ix_([i, j], [i, j])]
            ax.add_patch(covariance_ellipse(means[k, [i, j]], sub, level, fill=False, edgecolor=colors[k],
                                            linewidth=2))
            ax.plot(means[k, i], means[k, j], marker="X", color="black", markersize=8, linestyle="none")

    def single(ax: Axes, i: int) -> None:  # one feature: histogram and weighted component densities
        x = values[:, i]
        x = x[~np.isnan(x)]  # missing values (missing="marginalize")
        grid = np.linspace(x.min() - 0.1 * np.ptp(x), x.max() + 0.1 * np.ptp(x), 400)
        ax.hist(x, bins="auto", density=True, color="0.85", edgecolor="0.6")
        total = np.zeros_like(grid)
        for k in range(len(weights)):
            sd = math.sqrt(covs[k][i, i])
            density = weights[k] * np.exp(-0.5 * ((grid - means[k, i]) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))
            total += density
            ax.plot(grid, density, color=colors[k], linewidth=2)
        ax.plot(grid, total, color="black", linewidth=1, linestyle="--")
        ax.plot(x, np.zeros_like(x), "|", color="0.3", markersize=8, alpha=0.5)

    title = f"Clusters with {level:.0%} component ellipses" if len(idx) > 1 else "Clusters: weighted component densities"
    handles = _component_handles(weights, colors, counts)
    if noise.any():
        handles.append(Line2D([], [], color="0.6", marker="o", linestyle="none", label=f"noise (n = {noise.sum()})"))
    return _draw_pairs(idx, labels, ax, panel, title, handles, draw_single=single, single_ylabel="density")


def uncertainty(model: Any, X: Any, *, features: Sequence[int | str] | None = None, level: float = 0.95,
                ax: Axes | None = None) -> Axes | Figure:
    """Each point coloured and sized by its assignment uncertainty ``1 - max_k p(k | x)``.

    Points near a boundary between components have uncertainty near ``1 - 1/K``; points deep in one
    component near 0. Component ellipses are drawn in grey for orientation.

    Parameters
    ----------
    model : GaussianMixture or BayesianGaussianMixture
    X : array-like or DataFrame of shape (n_samples, n_features)
    features : sequence of int or str, optional
    level : float, default=0.95
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes or matplotlib.figure.Figure
        With a colour bar labelled with the uncertainty.
    """
    values, names, labels = _data(model, X)
    idx = _feature_indices(features, names, values.shape[1])
    weights, means, covs = _mixture(model)
    u = 1.0 - np.max(np.asarray(model.predict_proba(X)), axis=1)
    vmax = 1.0 - 1.0 / max(2, len(weights))
    order = np.argsort(u)  # the uncertain points on top
    sizes = 8 + 120 * (u / vmax)
    mappables = []

    def panel(ax: Axes, i: int, j: int) -> None:
        mappables.append(ax.scatter(values[order, i], values[order, j], c=u[order], s=sizes[order], cmap="viridis",
                                    vmin=0.0, vmax=vmax, edgecolors="none", alpha=0.9))
        for k in range(len(weights)):
            sub = covs[k][np.ix_([i, j], [i, j])]
            ax.add_patch(covariance_ellipse(means[k, [i, j]], sub, level, fill=False, edgecolor="0.4",
                                            linestyle="--", linewidth=1))

    def single(ax: Axes, i: int) -> None:
        mappables.append(ax.scatter(values[order, i], u[order], c=u[order], s=sizes[order], cmap="viridis",
                                    vmin=0.0, vmax=vmax, edgecolors="none", alpha=0.9))
        ax.set_ylim(-0.03, vmax + 0.03)

    result = _draw_pairs(idx, labels, ax, panel,
                         f"Assignment uncertainty (mean {u.mean():.3f}, {np.sum(u > 0.1)} points above 0.1)",
                         draw_single=single, single_ylabel="uncertainty")
    fig = result.figure if isinstance(result, Axes) else result
    target = result if isinstance(result, Axes) else [a for a in fig.axes if a.get_visible()]
    fig.colorbar(mappables[0], ax=target, label="uncertainty  1 − max p(k | x)")
    return result


def coclustering(model: Any, X: Any = None, *, matrix: Any = None, labels: Any = None,
                 ax: Axes | None = None) -> Axes:
    """The posterior co-clustering matrix ``P(z_i = z_j | data)`` as a heat map.

    Rows and columns are ordered by hard assignment, then by decreasing certainty, so clusters show
    as blocks; thin lines separate the clusters.

    Parameters
    ----------
    model : BayesianGaussianMixture or None
        Its ``coclustering(X)`` and ``predict(X)`` are used unless ``matrix`` and ``labels`` are given.
    X : array-like of shape (n_samples, n_features), optional
        Default: the training data.
    matrix : array of shape (n_samples, n_samples), optional
        A precomputed co-clustering matrix.
    labels : array of shape (n_samples,), optional
        Hard assignments used to order the rows; default ``model.predict(X)``.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
        With an image and a colour bar.

    Examples
    --------
    >>> P = np.array([[1.0, 0.9, 0.1], [0.9, 1.0, 0.2], [0.1, 0.2, 1.0]])
    >>> ax = coclustering(None, matrix=P, labels=[0, 0, 1])
    >>> ax.images[0].get_array().shape
    (3, 3)
    """
    if matrix is None:
        if model is None or not hasattr(model, "coclustering"):
            raise ValueError("pass a fitted BayesianGaussianMixture or a precomputed matrix=")
        if X is None:
            X = model.idata_["observed_data"]["obs"].values
            if hasattr(model, "feature_names_in_"):
                X = pd.DataFrame(X, columns=model.feature_names_in_)
        matrix = model.coclustering(X)
    P = np.asarray(matrix, dtype=np.float64)
    if P.ndim != 2 or P.shape[0] != P.shape[1]:
        raise ValueError(f"the co-clustering matrix must be square, got shape {P.shape}")
    if labels is None:
        labels = model.predict(X) if model is not None else np.zeros(P.shape[0], int)
    labels = np.asarray(labels)
    if labels.shape != (P.shape[0],):
        raise ValueError(f"labels must have shape ({P.shape[0]},), got {labels.shape}")
    certainty = np.array([P[n, labels == labels[n]].mean() for n in range(P.shape[0])])
    order = np.lexsort((-certainty, labels))
    ax = _axes(ax, figsize=(6.0, 5.0))
    image = ax.imshow(P[np.ix_(order, order)], cmap="magma", vmin=0.0, vmax=1.0, interpolation="nearest")
    bounds = np.flatnonzero(np.diff(labels[order])) + 0.5
    for b in bounds:
        ax.axhline(b, color="white", linewidth=0.8)
        ax.axvline(b, color="white", linewidth=0.8)
    ax.set_xlabel("observation (ordered by cluster)")
    ax.set_ylabel("observation (ordered by cluster)")
    ax.set_title("Posterior co-clustering")
    ax.figure.colorbar(image, ax=ax, label="P(same cluster | data)")
    return ax


def posterior_ellipses(model: Any, X: Any = None, *, n_draws: int = 40, level: float = 0.95,
                       features: Sequence[int | str] | None = None, random_state: int = 0,
                       ax: Axes | None = None) -> Axes:
    """Component ellipses of posterior draws over the data: the spread shows parameter uncertainty.

    Thin ellipses are ``n_draws`` random posterior draws (relabelled, so colours match components
    across draws); thick ones are the posterior-mean components.

    Parameters
    ----------
    model : BayesianGaussianMixture
        Fitted, with ``idata_``.
    X : array-like or DataFrame, optional
        Data drawn in grey; default the training data.
    n_draws : int >= 0, default=40
        At most this many draws (all of them when there are fewer).
    level : float in (0, 1), default=0.95
    features : pair of int or str, optional
        The two features to show (default the first two).
    random_state : int, default=0
        Which draws are shown.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
        With ``n_draws * n_components`` thin and ``n_components`` thick ellipse patches.
    """
    validate_parameter_constraints(
        {"n_draws": [Interval(Integral, 0, None, closed="left")], "level": [Interval(Real, 0, 1, closed="neither")]},
        {"n_draws": n_draws, "level": level}, caller_name="posterior_ellipses")
    if not hasattr(model, "idata_"):
        raise ValueError("posterior_ellipses needs a fitted BayesianGaussianMixture (with idata_)")
    post = model.idata_["posterior"]
    if X is None:
        X = model.idata_["observed_data"]["obs"].values
        if hasattr(model, "feature_names_in_"):
            X = pd.DataFrame(X, columns=model.feature_names_in_)
    values, names, labels = _data(model, X)
    idx = _feature_indices(features if features is not None else [0, 1], names, values.shape[1])
    if len(idx) != 2:
        raise ValueError("posterior_ellipses shows two features: pass features=[i, j]")
    i, j = idx
    weights, means, covs = _mixture(model)
    k, d = means.shape
    draw_means = np.asarray(post["means"].values, dtype=np.float64).reshape(-1, k, d)
    draw_covs = np.asarray(post["covariances"].values, dtype=np.float64)
    draw_covs = full_covariances(draw_covs.reshape((draw_means.shape[0],) + draw_covs.shape[2:]),
                                       model.covariance_type, k, d)
    rng = np.random.default_rng(random_state)
    chosen = rng.choice(draw_means.shape[0], size=min(n_draws, draw_means.shape[0]), replace=False)
    colors = component_colors(k)
    ax = _axes(ax)
    ax.scatter(values[:, i], values[:, j], s=10, color="0.6", alpha=0.6, linewidths=0)
    for s in chosen:
        for c in range(k):
            sub = draw_covs[s, c][np.ix_([i, j], [i, j])]
            ax.add_patch(covariance_ellipse(draw_means[s, c, [i, j]], sub, level, fill=False,
                                            edgecolor=colors[c], linewidth=0.6, alpha=0.35))
    for c in range(k):
        sub = covs[c][np.ix_([i, j], [i, j])]
        ax.add_patch(covariance_ellipse(means[c, [i, j]], sub, level, fill=False, edgecolor=colors[c],
                                        linewidth=2.5))
    handles = _component_handles(weights, colors)
    handles.append(Line2D([], [], color="0.3", linewidth=0.6, label=f"{len(chosen)} posterior draws (thin)"))
    ax.legend(handles=handles, fontsize="small", framealpha=0.85)
    for set_lim, v in ((ax.set_xlim, values[:, i]), (ax.set_ylim, values[:, j])):
        lo, hi = np.nanmin(v), np.nanmax(v)  # NaN: a missing value (missing="marginalize")
        pad = 0.15 * (hi - lo or 1.0)  # the data fix the view: prior-like draws of empty components
        set_lim(lo - pad, hi + pad)    # would otherwise zoom out far beyond them
    ax.set_xlabel(labels[i])
    ax.set_ylabel(labels[j])
    ax.set_title(f"Posterior draws of the {level:.0%} component ellipses")
    return ax


__all__ = ["clusters", "coclustering", "component_colors", "covariance_ellipse", "criterion", "ellipse_radius",
           "full_covariances", "posterior_ellipses", "uncertainty"]
