"""The report that ``bayesgmm fit`` and ``bayesgmm demo`` write: select, fit, summarise, save, plot.

:func:`run_pipeline` runs the whole report on a DataFrame; :func:`assignments` is the per-row table
that ``assignments.csv`` and ``bayesgmm predict`` write; :func:`ordered_table` orders the selection
table for ``selection.csv`` and the printed summary (the chosen fit first, fits that are not chosen
for being ``degenerate`` or ``overparameterised`` after the sound ones, marked). The command line
itself is :mod:`bayesgmm.cli`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: The files a report folder holds; a new report replaces them (and only them).
REPORT_FILES = ("selection.csv", "assignments.csv", "posterior_summary.csv", "model.bgmm", "criterion.png",
                "clusters.png", "uncertainty.png", "coclustering.png", "posterior_ellipses.png")


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def has_noise(model: Any) -> bool:
    """Whether ``model`` has a fitted noise component (``noise_weight_``)."""
    return getattr(model, "noise_weight_", None) is not None


def assignments(model: Any, X: Any, *, prefix: str = "") -> pd.DataFrame:
    """Per-row label, uncertainty (1 - max probability), log density and probabilities.

    With a noise component (``model.noise_weight_``) the label of a row the noise claims is -1, a
    ``noise`` column flags those rows (1) and ``p_noise`` is its probability (the last column of
    ``predict_proba``).

    Parameters
    ----------
    model : fitted mixture
    X : array-like of shape (n_samples, n_features)
    prefix : str
        Put before every column name (to keep clear of the data's own column names).

    Returns
    -------
    pandas.DataFrame of shape (n_samples, 3 + n_components (+ 2 with noise))
        ``label``, [``noise``], ``uncertainty``, ``log_density``, ``p0``, ..., [``p_noise``].
    """
    proba = np.asarray(model.predict_proba(X))
    k = int(model.n_components)
    label = proba.argmax(axis=1)
    noise = has_noise(model) and proba.shape[1] == k + 1
    columns: dict[str, Any] = {}
    if noise:
        label = np.where(label == k, -1, label)
        columns["label"] = label
        columns["noise"] = (label == -1).astype(int)
    else:
        columns["label"] = label
    columns["uncertainty"] = 1.0 - proba.max(axis=1)
    columns["log_density"] = np.asarray(model.score_samples(X))
    for j in range(k):
        columns[f"p{j}"] = proba[:, j]
    if noise:
        columns["p_noise"] = proba[:, k]
    index = X.index if isinstance(X, pd.DataFrame) else None
    return pd.DataFrame({f"{prefix}{name}": value for name, value in columns.items()}, index=index)


def ordered_table(table: pd.DataFrame, criterion: str) -> pd.DataFrame:
    """The selection table, best first: finite fits without a flag by ``criterion``, then the flagged
    ones (``degenerate``, ``overparameterised``), then the failed (non-finite) ones. Its first row is
    the fit :func:`bayesgmm.select` chooses."""
    from bayesgmm.selection import rejected

    value = table[criterion].astype(float).to_numpy()
    key = pd.DataFrame({"failed": ~np.isfinite(value), "flagged": rejected(table).to_numpy(), "value": value})
    order = key.sort_values(["failed", "flagged", "value"], kind="stable").index
    return table.iloc[order].reset_index(drop=True)


def flag_words(row: pd.Series) -> str:
    """``"degenerate"``, ``"overparameterised"``, both or ``""`` for one table row."""
    from bayesgmm.selection import REJECTED_FLAGS

    return ",".join(name for name in REJECTED_FLAGS if bool(row.get(name, False)))


def clear_report(out: Path) -> None:
    """Create ``out`` and remove the report files a previous run left there (and nothing else)."""
    out.mkdir(parents=True, exist_ok=True)
    for name in REPORT_FILES:
        (out / name).unlink(missing_ok=True)


def _save_figure(result: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig = getattr(result, "figure", result)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_pipeline(X: pd.DataFrame, *, name: str, out: Path, components: list[int], covariance: list[str],
                 criterion: str, method: str, chains: int, warmup: int, draws: int, seed: int,
                 subsample: int | None = None, vi_steps: int = 5000, noise: bool = False, blank: int = 0,
                 first_blank_line: int | None = None) -> int:
    """Select, fit, summarise and write the report folder. Returns the exit status.

    Parameters
    ----------
    X : pandas.DataFrame of shape (n_samples, n_features)
        NaN for blank cells (``blank`` of them): then the fits marginalise them (``missing="marginalize"``).
    method : {"em", "nuts", "vi"}
    chains, warmup, draws : int
        NUTS: chains x (warm-up + draws); VI: ``draws`` from the fitted guide after ``vi_steps`` steps.
    noise : bool
        Add a uniform noise component (``select(..., noise=True)``).
    """
    import matplotlib

    matplotlib.use("Agg")
    import bayesgmm as bg
    from bayesgmm import plot

    n_steps = 3 if method == "em" else 4
    if X.shape[0] < max(components):
        raise ValueError(f"{name}: {X.shape[0]} rows are too few for {max(components)} components; lower --components")
    extra: dict[str, Any] = {}
    holes = ""
    if blank:
        extra["missing"] = "marginalize"
        holes = f"; {blank} blank cell(s) (first on line {first_blank_line}) marginalised"
    if noise:
        extra["noise"] = True
    bayes = None
    if method != "em":
        from bayesgmm.bayes.estimator import BayesianGaussianMixture

        bayes = BayesianGaussianMixture
        if blank and "missing" not in bayes().get_params():
            raise ValueError(f"{name}: {blank} blank cell(s), first on line {first_blank_line}: --method {method} "
                             "cannot marginalise missing values; use --method em, or fill them")
    start = time.perf_counter()
    _progress(f"[1/{n_steps}] {name}: {X.shape[0]} rows x {X.shape[1]} columns ({', '.join(map(str, X.columns))})"
              f"{holes}; selecting K in {_ranges(components)} x covariance {','.join(covariance)}"
              f"{' with a noise component' if noise else ''} by {criterion.upper()} ...")
    sel = bg.select(X, n_components=components, covariance_types=covariance, criterion=criterion,
                    random_state=seed, **extra)
    best = sel.best_
    _progress(f"      done in {time.perf_counter() - start:.1f} s: {best.covariance_type}, "
              f"{_components(best.n_components)}")
    model = best
    if bayes is not None:
        step = time.perf_counter()
        what = (f"NUTS: {chains} chain(s) x ({warmup} warm-up + {draws} draws)" if method == "nuts"
                else f"VI{f' on {subsample} rows per step' if subsample else ''}: {vi_steps} steps, {draws} draws "
                     f"from the fitted guide")
        _progress(f"[2/{n_steps}] sampling the posterior of the chosen model with {what} ...")
        options = {"missing": "marginalize"} if blank else {}
        model = bayes(best.n_components, covariance_type=best.covariance_type, inference=method, num_chains=chains,
                      num_warmup=warmup, num_samples=draws, vi_steps=vi_steps, init=best, vi_subsample_size=subsample,
                      random_state=seed, progress_bar=sys.stderr.isatty(), **options)
        model.fit(X)
        _progress(f"      done in {time.perf_counter() - step:.1f} s")

    _progress(f"[{n_steps - 1}/{n_steps}] computing assignments and writing tables to {out}/ ...")
    table = ordered_table(sel.table, criterion)
    rows = assignments(model, X)
    clash = sorted(set(rows.columns) & set(map(str, X.columns)))
    if clash:
        rows = rows.add_prefix("bgmm_")
        _progress(f"bayesgmm: note: the data has column(s) named {', '.join(clash)}: assignments.csv calls the "
                  f"report's columns bgmm_label, bgmm_uncertainty, ...")
    clear_report(out)
    table.to_csv(out / "selection.csv", index=False)
    pd.concat([X, rows], axis=1).to_csv(out / "assignments.csv", index=False)
    summary = None
    if bayes is not None:
        summary = model.summary()
        summary.to_csv(out / "posterior_summary.csv")
    model_path = bg.save(model, out / "model.bgmm")

    _progress(f"[{n_steps}/{n_steps}] drawing the plots ...")
    pngs = _plots(plot, sel, model, X, out, criterion)

    # ---- the summary on stdout
    labels = rows.iloc[:, 0].to_numpy()
    sizes = np.bincount(labels[labels >= 0], minlength=model.n_components)
    print(f"\nChosen model ({criterion.upper()}, lower is better): covariance {best.covariance_type}, "
          f"{_components(best.n_components)}{' and a noise component' if has_noise(model) else ''}")
    print(f"\nBest rows of the {criterion.upper()} table:")
    shown = table.head(5)[["covariance_type", "n_components", "log_likelihood", "n_parameters", criterion]].copy()
    flags = table.head(5).apply(flag_words, axis=1) if len(table) else pd.Series(dtype=str)
    if flags.astype(bool).any():
        shown["not chosen: flagged"] = flags.to_numpy()
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    counts = {flag: int(table[flag].astype(bool).sum()) for flag in ("degenerate", "overparameterised")
              if flag in table}
    if any(counts.values()):
        print("not chosen (marked in selection.csv): " + ", ".join(f"{n} {flag}" for flag, n in counts.items() if n)
              + " fit(s)" + ("; overparameterised: more parameters than rows, or a component with fewer than D + 1 "
                             "effective points" if counts.get("overparameterised") else ""))
    print(f"\n{'Posterior mean' if bayes is not None else 'EM'} weights: {np.round(model.weights_, 3).tolist()}"
          + (f"; noise weight {float(model.noise_weight_):.3f}" if has_noise(model) else ""))
    print("means:\n" + pd.DataFrame(model.means_, columns=X.columns).round(3).to_string())
    uncertainty = rows.iloc[:, 2 if has_noise(model) else 1].to_numpy()
    print(f"cluster sizes (hard assignment): {sizes.tolist()}"
          + (f", {int(np.sum(labels == -1))} noise" if has_noise(model) else "")
          + f"; {int(np.sum(uncertainty > 0.1))} rows with uncertainty > 0.1")
    if summary is not None:
        if method == "nuts":
            rhat = summary["r_hat"].astype(float)
            ess = summary["ess_bulk"].astype(float)
            print(f"NUTS diagnostics: worst R-hat {rhat.max():.3f} ({rhat.idxmax()}), smallest bulk ESS "
                  f"{ess.min():.0f}, {model.n_divergences_} divergent transitions")
        else:
            print(f"VI: final ELBO {model.elbo_:.2f}")
    written = ["selection.csv", "assignments.csv"] + (["posterior_summary.csv"] if summary is not None else [])
    print(f"\nReport in {out}/: {', '.join(written + pngs)}, {model_path.name}")
    print(f"total time {time.perf_counter() - start:.1f} s")
    return 0


def _components(k: int) -> str:
    return f"{k} component{'' if k == 1 else 's'}"


def _ranges(values: list[int]) -> str:
    return f"{values[0]}..{values[-1]}" if values == list(range(values[0], values[-1] + 1)) else str(values)


def _plots(plot: Any, sel: Any, model: Any, X: pd.DataFrame, out: Path, criterion: str) -> list[str]:
    """Write the report's PNG files; returns their names."""
    features = list(X.columns[: plot.MAX_PAIRWISE_FEATURES])
    figures = {"criterion.png": lambda: plot.criterion(sel, criterion)}
    figures["clusters.png"] = lambda: plot.clusters(model, X, features=features)
    figures["uncertainty.png"] = lambda: plot.uncertainty(model, X, features=features)
    if hasattr(model, "idata_"):
        figures["coclustering.png"] = lambda: plot.coclustering(model, X)
        if X.shape[1] >= 2:
            figures["posterior_ellipses.png"] = lambda: plot.posterior_ellipses(model, X)
    for filename, draw in figures.items():
        _save_figure(draw(), out / filename)
    return list(figures)


__all__ = ["REPORT_FILES", "assignments", "clear_report", "ordered_table", "run_pipeline"]
