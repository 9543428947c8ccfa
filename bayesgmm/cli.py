"""The ``bayesgmm`` command.

``bayesgmm demo [--out DIR] [--force]``
    On the bundled Old Faithful data: select K and the covariance type by BIC, sample the chosen
    model's posterior with NUTS, print a summary and write a report folder.
``bayesgmm fit DATA.csv [--columns A,B] [--components 1-9] [--covariance full,tied,diag,spherical]
[--method em|nuts|vi] [--noise] [--subsample M] [--vi-steps N] [--out DIR] [--force]``
    The same on a CSV file; blank cells are marginalised (missing at random), ``--noise`` adds a
    uniform noise component for outliers.
``bayesgmm predict MODEL DATA.csv [--out FILE]``
    Apply a saved model; writes one CSV row per input row (label, uncertainty, log density,
    probabilities; a noise flag and probability when the model has a noise component) to stdout or
    FILE.

Reading CSV files: the separator (``,``, ``;``, tab or ``|``) and a decimal comma (with ``;`` or tab
separators) are recognised; a first line made of numbers only is read as data (columns ``x0``,
``x1``, ...; ``--header``/``--no-header`` decide it); an unnamed first column of distinct integers or
labels, as ``pandas.DataFrame.to_csv`` and R's ``write.csv`` write the row index, is dropped; lines
without any value are skipped; each of these is said on stderr (``bayesgmm: note: ...``).

The report folder holds :data:`bayesgmm.report.REPORT_FILES`: ``criterion.png``, ``clusters.png``,
``uncertainty.png`` (and, for a posterior, ``coclustering.png`` and ``posterior_ellipses.png``),
``selection.csv`` (the criterion table, the chosen fit first), ``assignments.csv`` (the input rows with
label, uncertainty, log density and one probability column per component), ``posterior_summary.csv``
(posterior only) and ``model.bgmm`` (read it back with :func:`bayesgmm.load`). A run replaces those
files and refuses a folder that holds anything else unless ``--force`` is given.

Progress goes to stderr and results to stdout. Errors are one line on stderr, ``bayesgmm: error:
...``; the exit status is 0 on success, 1 when the data or a file is at fault and 2 for a bad
command line. Set ``BAYESGMM_DEBUG=1`` to see the traceback of a library error. The command line is
parsed before JAX, NumPyro, ArviZ or scikit-learn are imported, so ``--help`` and usage errors come
back at once.

Compiled programs are kept in a persistent cache (``$XDG_CACHE_HOME/bayesgmm/jax``, by default
``~/.cache/bayesgmm/jax``; set ``BAYESGMM_CACHE_DIR`` to move it, or to an empty string to turn
it off), so a second run on data of the same size class skips the compilation. ``fit --method em``
on 32,768 rows or more gives JAX one CPU device per core and shards the EM passes across them.
"""

from __future__ import annotations

import argparse
import codecs
import csv
import dataclasses
import os
import re
import sys
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, NoReturn

from bayesgmm._cache import compilation_cache_dir  # noqa: F401 (documented here; imports no JAX)

PROG = "bayesgmm"
COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
#: Accepted by --covariance (no JAX import needed to check them): scikit-learn's names, mclust's and "all".
COVARIANCE_NAMES = COVARIANCE_TYPES + ("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "VEE", "EVE", "VVE", "EEV",
                                       "VEV", "EVV", "VVV", "E", "V", "all")
#: The models with a NumPyro posterior (--method nuts or vi).
BAYESIAN_TYPES = COVARIANCE_TYPES
#: The largest number of components --components takes (each K of the grid is fitted at once).
MAX_COMPONENTS = 1000
DEFAULT_OUT = Path("bayesgmm-report")
#: fit's sampler defaults: NUTS chains x (warm-up + draws), VI steps and draws from the fitted guide.
FIT_DEFAULTS = {"chains": 4, "warmup": 1000, "draws": 1000, "vi_steps": 5000}
DEMO_DEFAULTS = {"chains": 2, "warmup": 500, "draws": 500}
#: Separators recognised in CSV files, in order of preference on a tie.
SEPARATORS = (",", ";", "\t", "|")
_SEPARATOR_NAMES = {",": "','", ";": "';'", "\t": "tab", "|": "'|'"}
_COMMA_DECIMAL = re.compile(r"^[+-]?(\d+,\d*|,\d+)([eE][+-]?\d+)?$")
_UNNAMED = re.compile(r"^(Unnamed: \d+)?$")  # an empty header cell, or pandas' name for one
_SNIFF_BYTES = 1 << 16


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
    """``"1-9"``, ``"3"``, ``"2,4,6"`` or ``"1-3,8"`` -> sorted distinct integers in 1..MAX_COMPONENTS.

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
        if last > MAX_COMPONENTS:
            raise argparse.ArgumentTypeError(
                f"bad component range {text!r}: at most {MAX_COMPONENTS} components (and no more than the rows)")
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

    def report_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR",
                       help=f"report folder (default {DEFAULT_OUT}); its report files are replaced, and a folder "
                            "holding other files is refused without --force")
        p.add_argument("--force", action="store_true",
                       help="write into a folder that holds other files too (only the report's files are replaced)")

    def sampler_options(p: argparse.ArgumentParser, defaults: dict[str, int]) -> None:
        # None: not given (fit refuses the NUTS-only options with --method vi)
        p.add_argument("--chains", type=positive_int, metavar="N", help=f"NUTS chains (default {defaults['chains']})")
        p.add_argument("--warmup", type=positive_int, metavar="N",
                       help=f"NUTS warm-up steps (default {defaults['warmup']})")
        p.add_argument("--draws", type=positive_int, metavar="N",
                       help=f"posterior draws: per chain with NUTS, from the fitted guide with VI "
                            f"(default {defaults['draws']})")
        p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")

    def reading_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--header", action=argparse.BooleanOptionalAction, default=None,
                       help="the first line holds column names (--header) or data (--no-header); default: data "
                            "when every field of it is a number, names otherwise")

    demo = commands.add_parser("demo", help="model selection and a NUTS posterior on the bundled Old Faithful data",
                               description="Select K and the covariance type by BIC on Old Faithful, sample the "
                                           "chosen model's posterior with NUTS and write a report folder.")
    report_options(demo)
    sampler_options(demo, DEMO_DEFAULTS)

    fit = commands.add_parser("fit", help="fit a mixture to a CSV file and write a report",
                              description="Select K and the covariance type on a CSV file, fit the chosen model by "
                                          "EM or sample its posterior, and write a report folder. The separator "
                                          "(, ; tab |) and a decimal comma are recognised; blank cells are "
                                          "marginalised (missing at random).")
    fit.add_argument("data", type=Path, metavar="DATA.csv", help="CSV file, normally with a header row")
    fit.add_argument("--columns", help="comma-separated column names to use (default: all columns)")
    reading_options(fit)
    fit.add_argument("--components", type=parse_components, default=list(range(1, 10)), metavar="RANGE",
                     help=f"numbers of components to try, e.g. 1-9 (default), 3 or 2,4,6 (at most {MAX_COMPONENTS} "
                          "and the number of rows)")
    fit.add_argument("--covariance", type=parse_covariance, default=list(COVARIANCE_TYPES), metavar="TYPES",
                     help="covariance models to try: scikit-learn's full,tied,diag,spherical (default), "
                          "mclust's EII,...,VVV, or all (mclust's 14)")
    fit.add_argument("--criterion", choices=("bic", "aic", "icl"), default="bic",
                     help="selection criterion (default bic)")
    fit.add_argument("--method", choices=("em", "nuts", "vi"), default="em",
                     help="em: point estimate (default); nuts or vi: posterior of the chosen model")
    fit.add_argument("--noise", action="store_true",
                     help="add a uniform noise component over the data's bounding box (anomalies get label -1); "
                          "--method em only")
    fit.add_argument("--subsample", type=positive_int, metavar="M",
                     help="with --method vi: rows per optimisation step, for large data (default: all rows)")
    fit.add_argument("--vi-steps", type=positive_int, metavar="N",
                     help=f"with --method vi: optimisation steps (default {FIT_DEFAULTS['vi_steps']})")
    report_options(fit)
    sampler_options(fit, FIT_DEFAULTS)

    predict = commands.add_parser("predict", help="apply a saved model to a CSV file",
                                  description="Apply a saved model to a CSV file: one output row per input row "
                                              "with label, uncertainty, log density and probabilities (and a noise "
                                              "flag when the model has a noise component).")
    predict.add_argument("model", type=Path, metavar="MODEL", help="a model file written by fit or demo "
                                                                   "(DIR/model.bgmm)")
    predict.add_argument("data", type=Path, metavar="DATA.csv", help="CSV file, normally with a header row")
    predict.add_argument("--columns", help="comma-separated columns (default: the model's feature names)")
    reading_options(predict)
    predict.add_argument("--out", type=Path, metavar="FILE", help="output CSV (default: stdout)")
    return parser


def _option_problem(args: argparse.Namespace) -> str | None:
    """Combinations of options that are a usage error (exit status 2), found before anything is imported."""
    if args.command != "fit":
        return None
    if args.subsample is not None and args.method != "vi":
        return "--subsample needs --method vi"
    if args.vi_steps is not None and args.method != "vi":
        return "--vi-steps needs --method vi"
    if args.method == "vi":
        nuts_only = [f"--{name}" for name in ("chains", "warmup") if getattr(args, name) is not None]
        if nuts_only:
            return f"{' and '.join(nuts_only)} {'is a NUTS option' if len(nuts_only) == 1 else 'are NUTS options'}; " \
                   "with --method vi use --vi-steps and --draws"
    elif args.method == "em":
        given = [f"--{name}" for name in ("chains", "warmup", "draws") if getattr(args, name) is not None]
        if given:
            return f"{', '.join(given)} {'needs' if len(given) == 1 else 'need'} --method nuts or vi"
    if args.method != "em":
        other = [t for t in args.covariance if t not in BAYESIAN_TYPES]
        if other:
            return (f"--method {args.method} has posteriors for {','.join(COVARIANCE_TYPES)} only, "
                    f"not {','.join(other)}")
        if args.noise:
            return "--noise needs --method em"
    return None


# ------------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class CSVData:
    """What :func:`read_data` returns.

    Attributes
    ----------
    frame : pandas.DataFrame of shape (n_rows, n_columns)
        float64 values, NaN for blank cells.
    lines : ndarray of shape (n_rows,)
        The file's line number of each row (1 is the first line).
    blank : int
        Blank cells in the chosen columns.
    first_blank_line : int or None
    notes : list of str
        What was recognised about the file (separator, decimal comma, no header, a dropped index
        column), each one line for stderr.
    header : bool
        Whether the first line held column names.
    """

    frame: Any
    lines: Any
    blank: int = 0
    first_blank_line: int | None = None
    notes: list[str] = dataclasses.field(default_factory=list)
    header: bool = True


def _sniff(path: Path) -> tuple[str, str, str]:
    """The encoding, separator and decimal mark of a CSV file, from its first 64 KiB: UTF-8 (or
    Latin-1 when it is not UTF-8, as spreadsheets export); the separator that splits the most lines
    into the same number (>= 2) of fields; a decimal comma when the separator is not a comma and a
    number has a comma."""
    with open(path, "rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    encoding = "utf-8-sig"
    try:
        sample = codecs.getincrementaldecoder(encoding)().decode(head, final=len(head) < _SNIFF_BYTES)
    except UnicodeDecodeError:
        encoding = "latin-1"
        sample = head.decode(encoding)
    lines = sample.splitlines()
    if len(head) == _SNIFF_BYTES and len(lines) > 1:
        lines = lines[:-1]  # maybe cut short
    lines = [line for line in lines if line.strip()][:200]
    if not lines:
        raise CommandError(f"{path}: the file is empty")
    best, best_share = ",", 0.0
    for sep in SEPARATORS:
        counts = [len(row) for row in csv.reader(lines, delimiter=sep)]
        mode, hits = Counter(counts).most_common(1)[0]
        if mode >= 2 and hits / len(counts) > best_share:
            best, best_share = sep, hits / len(counts)
    decimal = "."
    if best != ",":
        cells = [cell.strip() for row in csv.reader(lines[1:], delimiter=best) for cell in row]
        if any(_COMMA_DECIMAL.match(c) for c in cells):
            decimal = ","  # then a number with a point is an error that says how the file was read
    return encoding, best, decimal


def _to_numbers(text: Any, decimal: str) -> tuple[Any, Any, Any]:
    """Stripped strings -> (float64 values with NaN where blank or bad, blank mask, bad mask)."""
    import numpy as np
    import pandas as pd

    blank = (text == "").to_numpy()
    if decimal == ",":
        pointed = text.str.contains(".", regex=False).to_numpy()
        text = text.str.replace(",", ".", regex=False)
    else:
        pointed = np.zeros(len(text), bool)
    values = pd.to_numeric(text.mask(blank), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~blank & (~np.isfinite(values) | pointed)
    values = np.where(bad, np.nan, values)
    return values, blank, bad


def _is_row_index(text: Any, decimal: str) -> str | None:
    """How an unnamed first column looks like a row index (distinct integers or distinct labels), or None."""
    import numpy as np

    values, blank, bad = _to_numbers(text, decimal)
    if blank.any() or not text.is_unique:
        return None
    if not bad.any():
        if not np.all(values == np.round(values)):
            return None
        lo, hi = int(values.min()), int(values.max())
        return f"the row numbers {lo}..{hi}" if hi - lo + 1 == len(values) else "distinct whole numbers"
    return "distinct labels" if bad.all() else None


def read_data(path: Path, columns: str | list[str] | None = None, *, header: bool | None = None) -> CSVData:
    """Read a CSV file and check that the chosen columns are numeric.

    Parameters
    ----------
    path : Path
    columns : str or list of str, optional
        Names (a comma-separated string or a list); default all columns, an unnamed leading row-index
        column excepted.
    header : bool, optional
        Whether the first line holds column names; None: names unless every field of it is a number.

    Returns
    -------
    CSVData
        Blank cells are NaN; a row whose chosen cells are all blank is an error.

    Raises
    ------
    CommandError
        One line naming the file, the column and the offending line (the file's own line number).
    """
    import numpy as np
    import pandas as pd

    if not path.exists():
        raise CommandError(f"{path}: no such file")
    if path.is_dir():
        raise CommandError(f"{path}: is a directory, expected a CSV file")
    encoding, sep, decimal = _sniff(path)
    reading = "" if sep == "," and decimal == "." else \
        f" (read as {_SEPARATOR_NAMES[sep]}-separated{' with decimal commas' if decimal == ',' else ''})"
    notes = [f"{path}: {_SEPARATOR_NAMES[sep]}-separated with decimal commas" if decimal == "," else
             f"{path}: {_SEPARATOR_NAMES[sep]}-separated"] if reading else []
    if encoding != "utf-8-sig":
        notes.append(f"{path}: not UTF-8 text, read as Latin-1")
    try:
        raw = pd.read_csv(path, sep=sep, header=None, dtype=str, keep_default_na=False, skip_blank_lines=False,
                          skipinitialspace=True, encoding=encoding, quotechar='"')
    except pd.errors.ParserError as err:
        found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(err))
        if found:
            expected, line, saw = map(int, found.groups())
            hint = (" (a row-name column without a name in the header? add a leading separator to the header line)"
                    if line == 2 and saw == expected + 1 else "")
            raise CommandError(f"{path}: line {line} has {saw} fields but the first line has {expected}{hint}"
                               f"{reading}") from None
        raise CommandError(f"{path}: not a readable CSV file ({str(err).splitlines()[0]})") from None
    except UnicodeDecodeError as err:
        raise CommandError(f"{path}: not a readable CSV file (not UTF-8 text: {err.reason})") from None
    except pd.errors.EmptyDataError:
        raise CommandError(f"{path}: the file is empty") from None
    raw = raw.apply(lambda column: column.str.strip())
    lines = np.arange(1, len(raw) + 1)
    keep = (raw != "").any(axis=1).to_numpy()  # lines without any value are skipped
    raw, lines = raw[keep].reset_index(drop=True), lines[keep]
    if raw.empty:
        raise CommandError(f"{path}: the file is empty")
    _, first_blank, first_bad = _to_numbers(raw.iloc[0], decimal)
    first_numeric = not (first_blank.any() or first_bad.any())
    if header is None:
        header = not first_numeric or raw.shape[0] == 1
        if not header:
            notes.append(f"{path}: the first line holds numbers only, so it is read as data, not as column names; "
                         f"the columns are called x0..x{raw.shape[1] - 1} (pass --header if they are names)")
    if header:
        names = list(raw.iloc[0])
        body, lines = raw.iloc[1:].reset_index(drop=True), lines[1:]
    else:
        names = [f"x{j}" for j in range(raw.shape[1])]
        body = raw
    body.columns = range(body.shape[1])
    duplicated = [name for name, count in Counter(names).items() if count > 1 and not _UNNAMED.match(name)]
    if duplicated:
        raise CommandError(f"{path}: column {duplicated[0]!r} appears {names.count(duplicated[0])} times in the header")
    if isinstance(columns, str):
        columns = [c.strip() for c in columns.split(",") if c.strip()]
    if columns:
        missing = [c for c in columns if c not in names]
        if missing:
            shown = ", ".join(n if n else "''" for n in names)
            raise CommandError(f"{path}: no column {missing[0]!r} (columns: {shown}"
                               f"{'; the file has no header row' if not header else ''})")
        chosen = [names.index(c) for c in dict.fromkeys(columns)]
    else:
        chosen = list(range(len(names)))
        if len(names) >= 2 and _UNNAMED.match(names[0]) and len(body):
            looks = _is_row_index(body[0], decimal)
            if looks:
                chosen.remove(0)
                notes.append(f"{path}: dropped the first column: it has no name and holds {looks}, a row index as "
                             "pandas' to_csv and R's write.csv write it (choose columns with --columns to keep it)")
        for j in list(chosen):
            if _UNNAMED.match(names[j]) and (body[j] == "").all():
                chosen.remove(j)  # a trailing separator on every line
        unnamed = [j for j in chosen if _UNNAMED.match(names[j])]
        if unnamed:
            raise CommandError(f"{path}: column {unnamed[0] + 1} has no name in the header; name it, or choose "
                               "columns with --columns")
    if body.shape[0] == 0:
        raise CommandError(f"{path}: no data rows below the header")
    data, blank_any, blank_all = {}, np.zeros(len(body), bool), np.ones(len(body), bool)
    blank_count = 0
    for j in chosen:
        values, blank, bad = _to_numbers(body[j], decimal)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            value = body[j].iloc[row]
            if len(names) == 1 and sep == ",":
                raise CommandError(f"{path}: found no separator (',', ';', tab or '|') between values, and the one "
                                   f"column {names[j]!r} is not numeric (line {lines[row]}: {value!r})")
            hint = "" if columns else "; choose numeric columns with --columns"
            raise CommandError(f"{path}: column {names[j]!r} is not numeric (line {lines[row]}: {value!r}){hint}"
                               f"{reading}")
        data[names[j]] = values
        blank_count += int(blank.sum())
        blank_any |= blank
        blank_all &= blank
    if blank_all.any():
        line = int(lines[np.flatnonzero(blank_all)[0]])
        raise CommandError(f"{path}: line {line} has no value in the chosen column(s) "
                           f"{', '.join(names[j] for j in chosen)}")
    first_blank = int(lines[np.flatnonzero(blank_any)[0]]) if blank_any.any() else None
    return CSVData(frame=pd.DataFrame(data), lines=lines, blank=blank_count, first_blank_line=first_blank,
                   notes=notes, header=header)


# ------------------------------------------------------------------------------------------------
# Commands
# ------------------------------------------------------------------------------------------------


def _note(message: str) -> None:
    print(f"{PROG}: note: {message}", file=sys.stderr, flush=True)


def _check_out_folder(out: Path, force: bool) -> None:
    """Refuse --out when it is a file, or a folder that holds files the report does not write (unless
    ``force``)."""
    from bayesgmm.report import REPORT_FILES

    for parent in (out, *out.parents):
        if parent.exists() and not parent.is_dir():
            raise CommandError(f"--out {out}: {'is' if parent == out else f'{parent} is'} a file, expected a folder "
                               "for the report")
    if out.is_dir() and not force:
        foreign = sorted(p.name for p in out.iterdir() if p.name not in REPORT_FILES)
        if foreign:
            shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
            raise CommandError(f"--out {out}: the folder holds files the report does not write ({shown}); choose "
                               "another folder, or pass --force to write the report beside them")


def _demo(args: argparse.Namespace) -> int:
    _check_out_folder(args.out, args.force)
    _start_jax()
    import bayesgmm as bg
    from bayesgmm.report import run_pipeline

    X = bg.datasets.load_faithful()
    return run_pipeline(X, name="Old Faithful", out=args.out, components=list(range(1, 10)),
                        covariance=list(COVARIANCE_TYPES), criterion="bic", method="nuts",
                        chains=args.chains or DEMO_DEFAULTS["chains"], warmup=args.warmup or DEMO_DEFAULTS["warmup"],
                        draws=args.draws or DEMO_DEFAULTS["draws"], seed=args.seed)


def _fit(args: argparse.Namespace) -> int:
    _check_out_folder(args.out, args.force)
    data = read_data(args.data, args.columns, header=args.header)
    for note in data.notes:
        _note(note)
    X = data.frame
    if args.noise and data.blank:
        raise CommandError(f"{args.data}: {data.blank} blank cell(s), first on line {data.first_blank_line}: the noise "
                           "component does not take missing values; fill them, or leave out --noise")
    if X.shape[0] < max(args.components):
        raise CommandError(f"{args.data}: {X.shape[0]} rows are too few for {max(args.components)} components; "
                           f"lower --components")
    _use_all_cores_for(len(X), args.method)
    _start_jax()
    from bayesgmm.report import run_pipeline

    return run_pipeline(X, name=str(args.data), out=args.out, components=args.components,
                        covariance=args.covariance, criterion=args.criterion, method=args.method,
                        chains=args.chains or FIT_DEFAULTS["chains"], warmup=args.warmup or FIT_DEFAULTS["warmup"],
                        draws=args.draws or FIT_DEFAULTS["draws"], vi_steps=args.vi_steps or FIT_DEFAULTS["vi_steps"],
                        seed=args.seed, subsample=args.subsample, noise=args.noise, blank=data.blank,
                        first_blank_line=data.first_blank_line)


def _predict(args: argparse.Namespace) -> int:
    if args.model.is_dir():
        inside = args.model / "model.bgmm"
        if inside.is_file():
            raise CommandError(f"{args.model}: is a report folder, not a model file; the model in it is {inside}")
        raise CommandError(f"{args.model}: is a folder, expected a model file written by fit or demo (model.bgmm)")
    if args.out is not None and args.out.is_dir():
        raise CommandError(f"--out {args.out}: is a folder, expected a file name for the predictions")
    _start_jax()
    import bayesgmm as bg
    from bayesgmm.report import assignments

    model = bg.load(args.model)
    if not isinstance(model, (bg.GaussianMixture, bg.BayesianGaussianMixture)):
        raise CommandError(f"{args.model}: holds a {type(model).__name__}; predict writes cluster assignments of a "
                           "GaussianMixture or BayesianGaussianMixture (use the model from Python for the others)")
    names = getattr(model, "feature_names_in_", None)
    names = None if names is None else [str(n) for n in names]
    chosen = [c.strip() for c in args.columns.split(",") if c.strip()] if args.columns else None
    if chosen and names is not None and set(chosen) != set(names):
        missing = [n for n in names if n not in chosen]
        raise CommandError(f"--columns {','.join(chosen)}: the model was fitted on the columns {', '.join(names)}"
                           f"{f'; missing: {chr(44).join(missing)}' if missing else ''} (rename the file's columns, "
                           f"or leave --columns out to pick the model's columns by name)")
    data = read_data(args.data, names if names is not None else chosen, header=args.header)
    for note in data.notes:
        _note(note)
    X = data.frame
    if X.shape[1] != model.n_features_in_:
        raise CommandError(f"{args.data}: {X.shape[1]} column(s) chosen but the model expects "
                           f"{model.n_features_in_}; choose them with --columns")
    if data.blank:
        params = model.get_params() if hasattr(model, "get_params") else {}
        if "missing" not in params:
            raise CommandError(f"{args.data}: {data.blank} blank cell(s), first on line {data.first_blank_line}; "
                               f"this model ({type(model).__name__}) cannot marginalise missing values: fill them")
        if params["missing"] != "marginalize":
            model.set_params(missing="marginalize")
        _note(f"{args.data}: {data.blank} blank cell(s), first on line {data.first_blank_line}: each row's "
              "probabilities and density use its observed columns (the model's marginal)")
    if names is None:
        X = X.to_numpy()
    rows = assignments(model, X)
    if args.out is None:
        rows.to_csv(sys.stdout, index=False)
    else:
        rows.to_csv(args.out, index=False)
        print(f"wrote {len(rows)} rows to {args.out}", file=sys.stderr, flush=True)
    return 0


def _show_warning(message: Any, category: type, filename: str, lineno: int, file: Any = None,
                  line: Any = None) -> None:
    """Warnings as one line on stderr: ``bayesgmm: warning: ...``."""
    text = " ".join(str(message).split())
    print(f"{PROG}: warning: {text}", file=sys.stderr)


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
    """Run the ``bayesgmm`` command; returns the exit status.

    The arguments are parsed (and usage errors reported) before JAX or the estimators are imported.
    """
    args = build_parser().parse_args(argv)
    problem = _option_problem(args)
    if problem:
        print(f"{PROG} {args.command}: error: {problem} (see {PROG} {args.command} --help)", file=sys.stderr)
        return 2
    commands = {"demo": _demo, "fit": _fit, "predict": _predict}
    try:
        with warnings.catch_warnings():  # one-line warnings for this command only (main may run in a test)
            warnings.showwarning = _show_warning
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


__all__ = ["CSVData", "main", "parse_components", "read_data"]
