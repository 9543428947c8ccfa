"""The ``bayesgmm`` command.

``bayesgmm demo [--out DIR]``
    On the bundled Old Faithful data: select K and the covariance type by BIC, sample the chosen
    model's posterior with NUTS, print a summary and write a report folder.
``bayesgmm fit DATA.csv [--columns A,B] [--components 1-9] [--covariance full,tied,diag,spherical]
[--method em|nuts|vi] [--subsample M] [--out DIR]``
    The same on a CSV file with a header row.
``bayesgmm predict MODEL DATA.csv [--out FILE]``
    Apply a saved model; writes one CSV row per input row (label, uncertainty, log density,
    probabilities) to stdout or FILE.

The report folder holds ``criterion.png``, ``clusters.png``, ``uncertainty.png`` (and, for a
posterior, ``coclustering.png`` and ``posterior_ellipses.png``), ``selection.csv`` (the criterion
table), ``assignments.csv`` (the input rows with label, uncertainty, log density and one
probability column per component), ``posterior_summary.csv`` (posterior only) and ``model.bgmm``
(read it back with :func:`bayesgmm.load`).

Progress goes to stderr and results to stdout. Errors are one line on stderr, ``bayesgmm: error:
...``; the exit status is 0 on success, 1 when the data or a file is at fault and 2 for a bad
command line. Set ``BAYESGMM_DEBUG=1`` to see the traceback of a library error.

Compiled programs are kept in a persistent cache (``$XDG_CACHE_HOME/bayesgmm/jax``, by default
``~/.cache/bayesgmm/jax``; set ``BAYESGMM_CACHE_DIR`` to move it, or to an empty string to turn
it off), so a second run on data of the same size class skips the compilation. ``fit --method em``
on 32,768 rows or more gives JAX one CPU device per core and shards the EM passes across them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pandas as pd

from bayesgmm._cache import compilation_cache_dir  # noqa: F401 (documented here)

PROG = "bayesgmm"
COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
#: Accepted by --covariance (no JAX import needed to check them): scikit-learn's names, mclust's and "all".
COVARIANCE_NAMES = COVARIANCE_TYPES + ("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "VEE", "EVE", "VVE", "EEV",
                                       "VEV", "EVV", "VVV", "E", "V", "all")
#: The models with a NumPyro posterior (--method nuts or vi).
BAYESIAN_TYPES = COVARIANCE_TYPES


class CommandError(Exception):
    """A problem with the user's data or files: reported as one line, exit status 1."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``bayesgmm fit: error: ... (see --help)``) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# ------------------------------------------------------------------------------------------------
# Arguments
# ------------------------------------------------------------------------------------------------


def parse_components(text: str) -> list[int]:
    """``"1-9"``, ``"3"``, ``"2,4,6"`` or ``"1-3,8"`` -> sorted distinct integers >= 1.

    Examples
    --------
    >>> parse_components("1-3,8")
    [1, 2, 3, 8]
    """
    values: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        lo, sep, hi = part.partition("-")
        try:
            first, last = int(lo), int(hi) if sep else int(lo)
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad component range {text!r}: expected e.g. 1-9, 3 or 2,4,6") from None
        if first < 1 or last < first:
            raise argparse.ArgumentTypeError(
                f"bad component range {text!r}: numbers must be >= 1 and ranges increasing (e.g. 1-9)")
        values.update(range(first, last + 1))
    return sorted(values)


def parse_covariance(text: str) -> list[str]:
    """``"full,tied"`` -> ``["full", "tied"]``; each must be a covariance model name or ``all``."""
    types = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in types if t not in COVARIANCE_NAMES]
    if bad or not types:
        raise argparse.ArgumentTypeError(f"unknown covariance type(s) {', '.join(bad) or repr(text)}: "
                                         f"choose from {','.join(COVARIANCE_NAMES)}")
    return list(dict.fromkeys(types))


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Gaussian mixture models on JAX: EM, model selection and posteriors.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")

    def sampler_options(p: argparse.ArgumentParser, chains: int, warmup: int, draws: int) -> None:
        p.add_argument("--chains", type=positive_int, default=chains, help=f"NUTS chains (default {chains})")
        p.add_argument("--warmup", type=positive_int, default=warmup, help=f"NUTS warm-up steps (default {warmup})")
        p.add_argument("--draws", type=positive_int, default=draws,
                       help=f"posterior draws per chain (default {draws})")
        p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")

    demo = commands.add_parser("demo", help="model selection and a NUTS posterior on the bundled Old Faithful data",
                               description="Select K and the covariance type by BIC on Old Faithful, sample the "
                                           "chosen model's posterior with NUTS and write a report folder.")
    demo.add_argument("--out", type=Path, default=Path("bayesgmm-report"),
                      help="report folder (default bayesgmm-report)")
    sampler_options(demo, chains=2, warmup=500, draws=500)

    fit = commands.add_parser("fit", help="fit a mixture to a CSV file and write a report",
                              description="Select K and the covariance type on a CSV file (header row), fit the "
                                          "chosen model by EM or sample its posterior, and write a report folder.")
    fit.add_argument("data", type=Path, metavar="DATA.csv", help="CSV file with a header row")
    fit.add_argument("--columns", help="comma-separated column names to use (default: all columns)")
    fit.add_argument("--components", type=parse_components, default=list(range(1, 10)), metavar="RANGE",
                     help="numbers of components to try, e.g. 1-9 (default), 3 or 2,4,6")
    fit.add_argument("--covariance", type=parse_covariance, default=list(COVARIANCE_TYPES), metavar="TYPES",
                     help="covariance models to try: scikit-learn's full,tied,diag,spherical (default), "
                          "mclust's EII,...,VVV, or all (mclust's 14)")
    fit.add_argument("--criterion", choices=("bic", "aic", "icl"), default="bic", help="selection criterion")
    fit.add_argument("--method", choices=("em", "nuts", "vi"), default="em",
                     help="em: point estimate (default); nuts or vi: posterior of the chosen model")
    fit.add_argument("--subsample", type=positive_int, metavar="M",
                     help="with --method vi: rows per optimisation step, for large data (default: all rows)")
    fit.add_argument("--out", type=Path, default=Path("bayesgmm-report"), help="report folder")
    sampler_options(fit, chains=4, warmup=1000, draws=1000)

    predict = commands.add_parser("predict", help="apply a saved model to a CSV file",
                                  description="Apply a saved model to a CSV file: one output row per input row "
                                              "with label, uncertainty, log density and probabilities.")
    predict.add_argument("model", type=Path, metavar="MODEL", help="a model file written by fit or demo")
    predict.add_argument("data", type=Path, metavar="DATA.csv", help="CSV file with a header row")
    predict.add_argument("--columns", help="comma-separated columns (default: the model's feature names)")
    predict.add_argument("--out", type=Path, help="output CSV (default: stdout)")
    return parser


# ------------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------------


def read_data(path: Path, columns: str | list[str] | None) -> pd.DataFrame:
    """Read a CSV file with a header row and check that the chosen columns are numeric and complete.

    Raises
    ------
    CommandError
        One line naming the file, the column and the first offending line.
    """
    if not path.exists():
        raise CommandError(f"{path}: no such file")
    if path.is_dir():
        raise CommandError(f"{path}: is a directory, expected a CSV file")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise CommandError(f"{path}: not a readable CSV file ({str(err).splitlines()[0]})") from None
    except pd.errors.EmptyDataError:
        raise CommandError(f"{path}: the file is empty") from None
    if isinstance(columns, str):
        columns = [c.strip() for c in columns.split(",") if c.strip()]
    if columns:
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise CommandError(f"{path}: no column {missing[0]!r} (columns: {', '.join(map(str, frame.columns))})")
        frame = frame[list(dict.fromkeys(columns))]
    if frame.shape[0] == 0:
        raise CommandError(f"{path}: no data rows below the header")
    data = {}
    for name in frame.columns:
        text = frame[name].str.strip()
        empty = text == ""
        if empty.any():
            line = int(np.flatnonzero(empty.to_numpy())[0]) + 2
            raise CommandError(f"{path}: column {name!r} has {int(empty.sum())} empty value(s), first on line {line}")
        values = pd.to_numeric(text, errors="coerce")
        bad = values.isna() | ~np.isfinite(values.to_numpy(dtype=np.float64, na_value=np.nan))
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            hint = "" if columns else "; choose numeric columns with --columns"
            raise CommandError(f"{path}: column {name!r} is not numeric (line {row + 2}: {text.iloc[row]!r}){hint}")
        data[name] = values.astype(np.float64)
    return pd.DataFrame(data)


def assignments(model: Any, X: pd.DataFrame) -> pd.DataFrame:
    """Per-row label, uncertainty (1 - max probability), log density and probabilities."""
    proba = np.asarray(model.predict_proba(X))
    result = pd.DataFrame({"label": proba.argmax(axis=1), "uncertainty": 1.0 - proba.max(axis=1),
                           "log_density": np.asarray(model.score_samples(X))}, index=X.index)
    for k in range(proba.shape[1]):
        result[f"p{k}"] = proba[:, k]
    return result


# ------------------------------------------------------------------------------------------------
# The pipeline shared by demo and fit
# ------------------------------------------------------------------------------------------------


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _save_figure(result: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig = getattr(result, "figure", result)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_pipeline(X: pd.DataFrame, *, name: str, out: Path, components: list[int], covariance: list[str],
                 criterion: str, method: str, chains: int, warmup: int, draws: int, seed: int,
                 subsample: int | None = None) -> int:
    """Select, fit, summarise and write the report folder. Returns the exit status."""
    import matplotlib

    matplotlib.use("Agg")
    import bayesgmm as bg
    from bayesgmm import plot

    n_steps = 3 if method == "em" else 4
    if X.shape[0] < max(components):
        raise CommandError(f"{name}: {X.shape[0]} rows are too few for {max(components)} components; "
                           f"lower --components")
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    _progress(f"[1/{n_steps}] {name}: {X.shape[0]} rows x {X.shape[1]} columns ({', '.join(map(str, X.columns))}); "
              f"selecting K in {_ranges(components)} x covariance {','.join(covariance)} by {criterion.upper()} ...")
    sel = bg.select(X, n_components=components, covariance_types=covariance, criterion=criterion,
                    random_state=seed)
    best = sel.best_
    _progress(f"      done in {time.perf_counter() - start:.1f} s: {best.covariance_type}, "
              f"{best.n_components} components")
    model = best
    if method != "em":
        from bayesgmm.bayes.estimator import BayesianGaussianMixture

        step = time.perf_counter()
        what = (f"NUTS: {chains} chain(s) x ({warmup} warm-up + {draws} draws)" if method == "nuts"
                else f"VI{f' on {subsample} rows per step' if subsample else ''}: {draws * chains} draws "
                     f"from the fitted guide")
        _progress(f"[2/{n_steps}] sampling the posterior of the chosen model with {what} ...")
        model = BayesianGaussianMixture(best.n_components, covariance_type=best.covariance_type, inference=method,
                                        num_chains=chains, num_warmup=warmup, num_samples=draws * (
                                            1 if method == "nuts" else chains),
                                        init=best, vi_subsample_size=subsample, random_state=seed,
                                        progress_bar=sys.stderr.isatty())
        model.fit(X)
        _progress(f"      done in {time.perf_counter() - step:.1f} s")

    _progress(f"[{n_steps - 1}/{n_steps}] computing assignments and writing tables to {out}/ ...")
    table = sel.table.sort_values(criterion).reset_index(drop=True)
    table.to_csv(out / "selection.csv", index=False)
    rows = assignments(model, X)
    pd.concat([X, rows], axis=1).to_csv(out / "assignments.csv", index=False)
    summary = None
    if method != "em":
        summary = model.summary()
        summary.to_csv(out / "posterior_summary.csv")
    model_path = bg.save(model, out / "model.bgmm")

    _progress(f"[{n_steps}/{n_steps}] drawing the plots ...")
    pngs = _plots(plot, sel, model, X, out, criterion)

    # ---- the summary on stdout
    sizes = np.bincount(rows["label"], minlength=model.n_components)
    print(f"\nChosen model ({criterion.upper()}, lower is better): covariance {best.covariance_type}, "
          f"{best.n_components} components")
    print(f"\nBest rows of the {criterion.upper()} table:")
    shown = table.head(5)[["covariance_type", "n_components", "log_likelihood", "n_parameters", criterion]]
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print(f"\n{'Posterior mean' if method != 'em' else 'EM'} weights: {np.round(model.weights_, 3).tolist()}")
    print("means:\n" + pd.DataFrame(model.means_, columns=X.columns).round(3).to_string())
    print(f"cluster sizes (hard assignment): {sizes.tolist()}; "
          f"{int(np.sum(rows['uncertainty'] > 0.1))} rows with uncertainty > 0.1")
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


# ------------------------------------------------------------------------------------------------
# Commands
# ------------------------------------------------------------------------------------------------


def _demo(args: argparse.Namespace) -> int:
    import bayesgmm as bg

    X = bg.datasets.load_faithful()
    return run_pipeline(X, name="Old Faithful", out=args.out, components=list(range(1, 10)),
                        covariance=list(COVARIANCE_TYPES), criterion="bic", method="nuts", chains=args.chains,
                        warmup=args.warmup, draws=args.draws, seed=args.seed)


def _fit(args: argparse.Namespace) -> int:
    X = read_data(args.data, args.columns)
    _use_all_cores_for(len(X), args.method)
    return run_pipeline(X, name=str(args.data), out=args.out, components=args.components,
                        covariance=args.covariance, criterion=args.criterion, method=args.method,
                        chains=args.chains, warmup=args.warmup, draws=args.draws, seed=args.seed,
                        subsample=args.subsample)


def _predict(args: argparse.Namespace) -> int:
    import bayesgmm as bg

    model = bg.load(args.model)
    names = getattr(model, "feature_names_in_", None)
    columns = args.columns or (list(map(str, names)) if names is not None else None)
    X = read_data(args.data, columns)
    if X.shape[1] != model.n_features_in_:
        raise CommandError(f"{args.data}: {X.shape[1]} column(s) chosen but the model expects "
                           f"{model.n_features_in_}; choose them with --columns")
    if names is None:
        X = X.to_numpy()
    rows = assignments(model, X)
    if args.out is None:
        rows.to_csv(sys.stdout, index=False)
    else:
        rows.to_csv(args.out, index=False)
        _progress(f"wrote {len(rows)} rows to {args.out}")
    return 0


def _one_line_warnings() -> None:
    def show(message: Any, category: type, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        text = " ".join(str(message).split())
        print(f"{PROG}: warning: {text}", file=sys.stderr)

    warnings.showwarning = show


def _use_all_cores_for(n_rows: int, method: str) -> None:
    """One JAX CPU device per core for EM on data that EM shards (at least ``MESH_MIN_ROWS`` rows);
    otherwise one device, which measured faster on 2 cores: ``bayesgmm demo`` took 17.9 s warm on
    one device and 24.9 s on two (NUTS then runs a chain per device as a batched loop, 4.6 s -> 10.7 s)."""
    from bayesgmm._cache import use_all_cores
    from bayesgmm._chunks import MESH_MIN_ROWS

    if method == "em" and n_rows >= MESH_MIN_ROWS:
        try:
            use_all_cores()
        except RuntimeError:
            pass  # main() called in a process that has started JAX already (tests, notebooks)


def _start_jax() -> None:
    """The command owns its process: the persistent compilation cache (:mod:`bayesgmm._cache`)
    keeps every program, however quickly it compiled."""
    from bayesgmm._cache import use_compilation_cache

    if use_compilation_cache() is not None:
        import jax

        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def main(argv: list[str] | None = None) -> int:
    """Run the ``bayesgmm`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.command == "fit" and args.subsample is not None and args.method != "vi":
        print(f"{PROG} fit: error: --subsample needs --method vi (see {PROG} fit --help)", file=sys.stderr)
        return 2
    if args.command == "fit" and args.method != "em":
        other = [t for t in args.covariance if t not in BAYESIAN_TYPES]
        if other:
            print(f"{PROG} fit: error: --method {args.method} has posteriors for {','.join(COVARIANCE_TYPES)} only, "
                  f"not {','.join(other)} (see {PROG} fit --help)", file=sys.stderr)
            return 2
    _one_line_warnings()
    _start_jax()
    commands = {"demo": _demo, "fit": _fit, "predict": _predict}
    try:
        return commands[args.command](args)
    except CommandError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as err:  # the library's own messages: bad model file, degenerate data, ...
        if os.environ.get("BAYESGMM_DEBUG"):
            raise
        text = " ".join(str(err).split())
        print(f"{PROG}: error: {text}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["main", "parse_components", "read_data"]
