"""The bayesgmm command: reports, predictions, and one-line errors with Unix exit codes."""

import os
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import bayesgmm as bg  # noqa: E402
from bayesgmm.cli import compilation_cache_dir, main, parse_components  # noqa: E402


@pytest.fixture
def blobs_csv(tmp_path):
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal([0, 0], 0.5, (80, 2)), rng.normal([4, 3], 0.7, (60, 2))])
    frame = pd.DataFrame({"id": [f"r{i}" for i in range(len(X))], "x": X[:, 0], "y": X[:, 1]})
    path = tmp_path / "blobs.csv"
    frame.to_csv(path, index=False)
    return path


def error_line(capsys):
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_parse_components():
    assert parse_components("1-9") == list(range(1, 10))
    assert parse_components("3") == [3]
    assert parse_components("2, 4,6") == [2, 4, 6]
    assert parse_components("1-2,5-6") == [1, 2, 5, 6]


@pytest.mark.parametrize("bad", ["9-1", "0-3", "a-b", "1-", ""])
def test_bad_range_is_a_usage_error(capsys, blobs_csv, bad):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", str(blobs_csv), "--components", bad])
    assert exit_info.value.code == 2
    line = error_line(capsys)
    assert line.startswith("bayesgmm fit: error: argument --components: bad component range")
    assert line.endswith("(see bayesgmm fit --help)")


def test_bad_covariance_and_method_are_usage_errors(capsys, blobs_csv):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", str(blobs_csv), "--covariance", "full,round"])
    assert exit_info.value.code == 2
    assert "unknown covariance type(s) round" in error_line(capsys)
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", str(blobs_csv), "--method", "gibbs"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'gibbs'" in error_line(capsys)


def test_subsample_needs_vi(capsys, blobs_csv):
    assert main(["fit", str(blobs_csv), "--columns", "x,y", "--subsample", "50"]) == 2
    assert error_line(capsys) == "bayesgmm fit: error: --subsample needs --method vi (see bayesgmm fit --help)"
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", str(blobs_csv), "--method", "vi", "--subsample", "0"])
    assert exit_info.value.code == 2
    assert "argument --subsample: expected a positive integer, got '0'" in error_line(capsys)


def test_fit_vi_on_subsamples(capsys, tmp_path, blobs_csv):
    out = tmp_path / "vi"
    assert main(["fit", str(blobs_csv), "--columns", "x,y", "--components", "2", "--covariance", "diag",
                 "--method", "vi", "--subsample", "32", "--chains", "1", "--draws", "50", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "VI on 32 rows per step: 50 draws from the fitted guide" in captured.err
    assert "VI: final ELBO" in captured.out
    model = bg.load(out / "model.bgmm")
    assert model.vi_subsample_size_ == 32
    np.testing.assert_allclose(np.sort(model.means_[:, 0]), [0, 4], atol=0.3)  # the two blobs


def test_missing_file(capsys, tmp_path):
    assert main(["fit", str(tmp_path / "nope.csv")]) == 1
    assert error_line(capsys) == f"bayesgmm: error: {tmp_path / 'nope.csv'}: no such file"


def test_non_numeric_column_names_column_and_line(capsys, blobs_csv):
    assert main(["fit", str(blobs_csv)]) == 1
    assert error_line(capsys) == (f"bayesgmm: error: {blobs_csv}: column 'id' is not numeric (line 2: 'r0'); "
                                  "choose numeric columns with --columns")


def test_unknown_column_and_empty_value(capsys, tmp_path, blobs_csv):
    assert main(["fit", str(blobs_csv), "--columns", "x,z"]) == 1
    assert error_line(capsys) == f"bayesgmm: error: {blobs_csv}: no column 'z' (columns: id, x, y)"
    holes = tmp_path / "holes.csv"
    holes.write_text("a,b\n1,2\n3,\n5,6\n")
    assert main(["fit", str(holes)]) == 1
    assert error_line(capsys) == f"bayesgmm: error: {holes}: column 'b' has 1 empty value(s), first on line 3"
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert main(["fit", str(empty)]) == 1
    assert error_line(capsys) == f"bayesgmm: error: {empty}: the file is empty"


def test_too_few_rows(capsys, tmp_path):
    small = tmp_path / "small.csv"
    small.write_text("a,b\n1,2\n3,4\n5,7\n")
    assert main(["fit", str(small), "--components", "1-5"]) == 1
    assert "3 rows are too few for 5 components" in error_line(capsys)


def test_fit_em_writes_report_and_predict_reproduces_labels(capsys, tmp_path, blobs_csv):
    out = tmp_path / "report"
    status = main(["fit", str(blobs_csv), "--columns", "x,y", "--components", "1-3", "--covariance", "full,diag",
                   "--out", str(out)])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert "Chosen model (BIC, lower is better): covariance" in captured.out
    assert "2 components" in captured.out
    for name in ("selection.csv", "assignments.csv", "model.bgmm", "criterion.png", "clusters.png",
                 "uncertainty.png"):
        assert (out / name).stat().st_size > 0, name
    assert not (out / "coclustering.png").exists()  # only for posteriors
    rows = pd.read_csv(out / "assignments.csv")
    assert list(rows.columns) == ["x", "y", "label", "uncertainty", "log_density", "p0", "p1"]
    assert len(rows) == 140
    np.testing.assert_allclose(rows[["p0", "p1"]].sum(axis=1), 1.0)
    assert sorted(np.bincount(rows["label"])) == [60, 80]
    table = pd.read_csv(out / "selection.csv")
    assert len(table) == 6 and table["bic"].is_monotonic_increasing

    model = bg.load(out / "model.bgmm")
    assert isinstance(model, bg.GaussianMixture) and model.n_components == 2
    # predict picks the model's columns by name and writes CSV to stdout
    assert main(["predict", str(out / "model.bgmm"), str(blobs_csv)]) == 0
    predicted = pd.read_csv(pd.io.common.StringIO(capsys.readouterr().out))
    np.testing.assert_array_equal(predicted["label"], rows["label"])
    np.testing.assert_allclose(predicted["log_density"], rows["log_density"])
    # ... or to a file
    assert main(["predict", str(out / "model.bgmm"), str(blobs_csv), "--out", str(tmp_path / "p.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "p.csv")) == 140
    capsys.readouterr()

    # a CSV without the model's columns, and a corrupted model file
    other = tmp_path / "other.csv"
    other.write_text("u,v\n1,2\n")
    assert main(["predict", str(out / "model.bgmm"), str(other)]) == 1
    assert error_line(capsys) == f"bayesgmm: error: {other}: no column 'x' (columns: u, v)"
    broken = tmp_path / "broken.bgmm"
    broken.write_bytes((out / "model.bgmm").read_bytes()[:200])
    assert main(["predict", str(broken), str(blobs_csv)]) == 1
    assert error_line(capsys).startswith(f"bayesgmm: error: {broken}: not a bayesgmm model file")


def test_real_process_exit_status_and_stderr(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bayesgmm", "predict", str(tmp_path / "m.bgmm"),
                           str(tmp_path / "d.csv")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"bayesgmm: error: no such model file: {tmp_path / 'm.bgmm'}"
    proc = subprocess.run([sys.executable, "-m", "bayesgmm", "fit"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("bayesgmm fit: error: the following arguments are required: DATA.csv "
                                   "(see bayesgmm fit --help)")


def test_compilation_cache_location(monkeypatch, tmp_path):
    monkeypatch.setenv("BAYESGMM_CACHE_DIR", "")
    assert compilation_cache_dir() is None
    monkeypatch.setenv("BAYESGMM_CACHE_DIR", str(tmp_path / "c"))
    assert compilation_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("BAYESGMM_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert compilation_cache_dir() == tmp_path / "bayesgmm" / "jax"


def test_second_run_takes_its_programs_from_the_cache(tmp_path, blobs_csv):
    cache = tmp_path / "cache"
    env = {**os.environ, "BAYESGMM_CACHE_DIR": str(cache)}
    command = [sys.executable, "-m", "bayesgmm", "fit", str(blobs_csv), "--columns", "x,y", "--components", "1-2",
               "--covariance", "spherical", "--out", str(tmp_path / "report")]
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    entries = sorted(p.name for p in cache.iterdir())
    assert len(entries) >= 2  # at least the selection grid and the predictions
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    assert sorted(p.name for p in cache.iterdir()) == entries  # nothing new was compiled


@pytest.mark.slow
def test_demo_writes_the_full_report(capsys, tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--chains", "2", "--warmup", "40", "--draws", "30"]) == 0
    captured = capsys.readouterr()
    assert "Chosen model (BIC, lower is better): covariance tied, 3 components" in captured.out
    assert "NUTS diagnostics: worst R-hat" in captured.out
    assert "cluster sizes (hard assignment): [" in captured.out
    assert "[2/4] sampling the posterior" in captured.err
    for name in ("selection.csv", "assignments.csv", "posterior_summary.csv", "model.bgmm", "criterion.png",
                 "clusters.png", "uncertainty.png", "coclustering.png", "posterior_ellipses.png"):
        assert (out / name).stat().st_size > 0, name
    model = bg.load(out / "model.bgmm")
    assert model.idata_["posterior"]["weights"].shape == (2, 30, 3)
    summary = pd.read_csv(out / "posterior_summary.csv", index_col=0)
    assert "r_hat" in summary.columns
