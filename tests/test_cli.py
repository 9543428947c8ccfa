"""The bayesgmm command: reports, predictions, and one-line errors with Unix exit codes."""

import contextlib
import inspect
import io
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


BLOB_MEANS = np.array([[0.0, 0.0], [4.0, 3.0]])


def blobs(seed=0):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(BLOB_MEANS[0], 0.5, (80, 2)), rng.normal(BLOB_MEANS[1], 0.7, (60, 2))])


@pytest.fixture(scope="module")
def blobs_csv(tmp_path_factory):
    X = blobs()
    frame = pd.DataFrame({"id": [f"r{i}" for i in range(len(X))], "x": X[:, 0], "y": X[:, 1]})
    path = tmp_path_factory.mktemp("data") / "blobs.csv"
    frame.to_csv(path, index=False)
    return path


def run(argv):
    """main(argv) in this process; returns (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def em_report(tmp_path_factory, blobs_csv):
    """One EM report on the blobs, written into a folder that holds a previous posterior's files."""
    out = tmp_path_factory.mktemp("em") / "report"
    out.mkdir()
    for stale in ("posterior_summary.csv", "coclustering.png", "model.bgmm"):
        (out / stale).write_text("from an earlier run")
    status, stdout, stderr = run(["fit", str(blobs_csv), "--columns", "x,y", "--components", "1-3",
                                  "--covariance", "full,diag", "--out", str(out)])
    assert status == 0, stderr
    return out, stdout, stderr


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


def test_fit_vi_takes_its_own_steps_and_draws_and_blank_cells(tmp_path):
    frame = pd.DataFrame(blobs(), columns=["x", "y"])
    frame.iloc[7, 0] = np.nan
    path = tmp_path / "holes.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "vi"
    status, stdout, stderr = run(["fit", str(path), "--components", "2", "--covariance", "diag", "--method", "vi",
                                  "--subsample", "32", "--vi-steps", "400", "--draws", "50", "--out", str(out)])
    assert status == 0, stderr
    assert "1 blank cell(s) (first on line 9) marginalised" in stderr
    assert "VI on 32 rows per step: 400 steps, 50 draws from the fitted guide" in stderr
    assert "VI: final ELBO" in stdout
    model = bg.load(out / "model.bgmm")
    assert model.missing == "marginalize"
    assert model.vi_subsample_size_ == 32 and model.vi_steps == 400 and model.num_samples == 50
    assert model.elbo_trace_.shape == (400,)
    assert model.idata_["posterior"]["weights"].shape[-2:] == (50, 2)  # 50 draws, not chains x draws
    np.testing.assert_allclose(np.sort(model.means_[:, 0]), [0, 4], atol=0.3)  # the two blobs


def test_missing_file(capsys, tmp_path):
    assert main(["fit", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "r")]) == 1
    assert error_line(capsys) == f"bayesgmm: error: {tmp_path / 'nope.csv'}: no such file"


def test_non_numeric_column_names_column_and_line(capsys, tmp_path, blobs_csv):
    assert main(["fit", str(blobs_csv), "--out", str(tmp_path / "r")]) == 1
    assert error_line(capsys) == (f"bayesgmm: error: {blobs_csv}: column 'id' is not numeric (line 2: 'r0'); "
                                  "choose numeric columns with --columns")


def test_unknown_column_and_empty_file(capsys, tmp_path, blobs_csv):
    assert main(["fit", str(blobs_csv), "--columns", "x,z", "--out", str(tmp_path / "r")]) == 1
    assert error_line(capsys) == f"bayesgmm: error: {blobs_csv}: no column 'z' (columns: id, x, y)"
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert main(["fit", str(empty), "--out", str(tmp_path / "r")]) == 1
    assert error_line(capsys) == f"bayesgmm: error: {empty}: the file is empty"


def test_fit_em_writes_report(em_report):
    out, stdout, stderr = em_report
    assert "Chosen model (BIC, lower is better): covariance" in stdout
    assert "2 components" in stdout
    for name in ("selection.csv", "assignments.csv", "model.bgmm", "criterion.png", "clusters.png",
                 "uncertainty.png"):
        assert (out / name).stat().st_size > 0, name
    for stale in ("coclustering.png", "posterior_summary.csv"):  # an earlier posterior's files are gone
        assert not (out / stale).exists(), stale
    rows = pd.read_csv(out / "assignments.csv")
    assert list(rows.columns) == ["x", "y", "label", "uncertainty", "log_density", "p0", "p1"]
    assert len(rows) == 140
    np.testing.assert_allclose(rows[["p0", "p1"]].sum(axis=1), 1.0)
    assert sorted(np.bincount(rows["label"])) == [60, 80]
    table = pd.read_csv(out / "selection.csv")
    assert len(table) == 6 and table["bic"].is_monotonic_increasing
    assert not table.loc[0, ["degenerate", "overparameterised"]].any()
    model = bg.load(out / "model.bgmm")
    assert isinstance(model, bg.GaussianMixture) and model.n_components == 2
    chosen = table.loc[0, ["covariance_type", "n_components"]].tolist()
    assert [model.covariance_type, model.n_components] == chosen


def test_predict_reproduces_the_reports_labels(capsys, tmp_path, em_report, blobs_csv):
    out = em_report[0]
    rows = pd.read_csv(out / "assignments.csv")
    # predict picks the model's columns by name and writes CSV to stdout
    assert main(["predict", str(out / "model.bgmm"), str(blobs_csv)]) == 0
    predicted = pd.read_csv(io.StringIO(capsys.readouterr().out))
    np.testing.assert_array_equal(predicted["label"], rows["label"])
    np.testing.assert_allclose(predicted["log_density"], rows["log_density"])
    # ... or to a file
    assert main(["predict", str(out / "model.bgmm"), str(blobs_csv), "--out", str(tmp_path / "p.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "p.csv")) == 140


def test_predict_faults_are_one_line(capsys, tmp_path, em_report, blobs_csv):
    out = em_report[0]
    other = tmp_path / "other.csv"
    other.write_text("u,v\n1,2\n")
    assert main(["predict", str(out / "model.bgmm"), str(other)]) == 1
    assert error_line(capsys) == f"bayesgmm: error: {other}: no column 'x' (columns: u, v)"
    assert main(["predict", str(out / "model.bgmm"), str(other), "--columns", "u,v"]) == 1
    assert error_line(capsys) == ("bayesgmm: error: --columns u,v: the model was fitted on the columns x, y; missing: "
                                  "x,y (rename the file's columns, or leave --columns out to pick the model's columns "
                                  "by name)")
    assert main(["predict", str(out), str(blobs_csv)]) == 1  # the report folder instead of its model
    assert error_line(capsys) == (f"bayesgmm: error: {out}: is a report folder, not a model file; the model in it is "
                                  f"{out / 'model.bgmm'}")
    assert main(["predict", str(tmp_path), str(blobs_csv)]) == 1
    assert error_line(capsys) == (f"bayesgmm: error: {tmp_path}: is a folder, expected a model file written by fit or "
                                  "demo (model.bgmm)")
    assert main(["predict", str(out / "model.bgmm"), str(blobs_csv), "--out", str(tmp_path)]) == 1
    assert error_line(capsys) == (f"bayesgmm: error: --out {tmp_path}: is a folder, expected a file name for the "
                                  "predictions")
    broken = tmp_path / "broken.bgmm"
    broken.write_bytes((out / "model.bgmm").read_bytes()[:200])
    assert main(["predict", str(broken), str(blobs_csv)]) == 1
    assert error_line(capsys).startswith(f"bayesgmm: error: {broken}: not a bayesgmm model file")


def test_predict_refuses_a_classifier_file(capsys, tmp_path, blobs_csv):
    frame = pd.read_csv(blobs_csv)[["x", "y"]]
    clf = bg.GaussianMixtureClassifier("EDDA", covariance_types="VVV").fit(frame, frame["x"] > frame["x"].median())
    path = tmp_path / "clf.bgmm"
    bg.save(clf, path)
    assert main(["predict", str(path), str(blobs_csv)]) == 1
    assert error_line(capsys) == (f"bayesgmm: error: {path}: holds a GaussianMixtureClassifier; predict writes cluster "
                                  "assignments of a GaussianMixture or BayesianGaussianMixture (use the model from "
                                  "Python for the others)")


def test_index_column_blank_cells_and_our_column_names_in_the_data(tmp_path):
    X = blobs(seed=1)
    frame = pd.DataFrame({"label": X[:, 0], "y": X[:, 1]})
    frame.iloc[5, 1] = np.nan  # a blank cell, on line 7 of the file
    path = tmp_path / "pandas.csv"
    frame.to_csv(path)  # pandas' default: the row index as an unnamed first column
    out = tmp_path / "report"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    status, stdout, stderr = run(["fit", str(path), "--components", "2", "--covariance", "diag", "--out", str(out),
                                  "--force"])
    assert status == 0, stderr
    assert f"bayesgmm: note: {path}: dropped the first column: it has no name and holds the row numbers 0..139" \
        in stderr
    assert "140 rows x 2 columns (label, y); 1 blank cell(s) (first on line 7) marginalised" in stderr
    assert "the data has column(s) named label: assignments.csv calls the report's columns bgmm_label" in stderr
    assert (out / "notes.txt").read_text() == "mine"  # --force keeps what the report does not own
    rows = pd.read_csv(out / "assignments.csv")
    assert list(rows.columns) == ["label", "y", "bgmm_label", "bgmm_uncertainty", "bgmm_log_density", "bgmm_p0",
                                  "bgmm_p1"]
    np.testing.assert_allclose(rows["label"], X[:, 0])
    model = bg.load(out / "model.bgmm")
    assert model.missing == "marginalize"
    order = np.argsort(model.means_[:, 0])
    np.testing.assert_allclose(model.means_[order], BLOB_MEANS, atol=0.25)
    # the blank row is assigned from its observed coordinate: the same as the model's own marginal
    np.testing.assert_array_equal(rows["bgmm_label"], model.predict(frame))
    status, stdout, stderr = run(["predict", str(out / "model.bgmm"), str(path)])
    assert status == 0, stderr
    assert "1 blank cell(s), first on line 7" in stderr
    predicted = pd.read_csv(io.StringIO(stdout))
    np.testing.assert_array_equal(predicted["label"], rows["bgmm_label"])
    np.testing.assert_allclose(predicted["log_density"], rows["bgmm_log_density"], rtol=1e-6)


def test_overparameterised_fits_are_flagged_and_never_first(tmp_path):
    path = tmp_path / "three.csv"
    path.write_text("a,b\n0.1,0.3\n2.0,1.1\n4.2,-0.5\n")  # three rows: K = 3 puts one point in each component
    out = tmp_path / "report"
    status, stdout, stderr = run(["fit", str(path), "--components", "1-3", "--covariance", "spherical",
                                  "--out", str(out)])
    assert status == 0, stderr
    assert "bayesgmm: warning: spherical with 3 components has the lowest BIC" in stderr
    assert "and more parameters than the data support (more than the rows, or a component with fewer than D + 1 " \
           "effective points); it is not chosen. Chosen: spherical with 1 components" in stderr
    table = pd.read_csv(out / "selection.csv")
    # spherical: K = 1 has 3 parameters and 3 points; K = 2 has 7 parameters, K = 3 eleven. K = 3 has the lowest
    # BIC (a component on each point) but comes after K = 1, the one fit without a flag
    assert table["n_components"].tolist() == [1, 3, 2] and table["n_parameters"].tolist() == [3, 11, 7]
    assert table["overparameterised"].tolist() == [False, True, True]
    assert table["bic"].iloc[1] < table["bic"].iloc[0]
    assert "Chosen model (BIC, lower is better): covariance spherical, 1 component\n" in stdout
    assert "not chosen: flagged" in stdout and "overparameterised" in stdout
    assert "not chosen (marked in selection.csv): " in stdout


@pytest.mark.skipif("noise" not in inspect.signature(bg.select).parameters, reason="select(noise=True) not built yet")
def test_fit_noise_and_predict_flags_the_noise(tmp_path):
    rng = np.random.default_rng(2)
    X = pd.DataFrame(np.concatenate([blobs(seed=2), rng.uniform([-4, -4], [8, 7], (20, 2))]), columns=["x", "y"])
    path = tmp_path / "outliers.csv"
    X.to_csv(path, index=False)
    out = tmp_path / "report"
    status, stdout, stderr = run(["fit", str(path), "--components", "2", "--covariance", "full", "--noise",
                                  "--out", str(out)])
    assert status == 0, stderr
    assert "and a noise component" in stdout and "noise weight" in stdout
    model = bg.load(out / "model.bgmm")
    rows = pd.read_csv(out / "assignments.csv")
    assert list(rows.columns) == ["x", "y", "label", "noise", "uncertainty", "log_density", "p0", "p1", "p_noise"]
    np.testing.assert_array_equal(rows["label"], model.predict(X))
    np.testing.assert_array_equal(rows["noise"], rows["label"] == -1)
    np.testing.assert_allclose(rows[["p0", "p1", "p_noise"]].to_numpy(), model.predict_proba(X), rtol=1e-6)
    assert rows["noise"].iloc[140:].mean() > 0.5 > rows["noise"].iloc[:140].mean()  # the planted outliers
    status, stdout, stderr = run(["predict", str(out / "model.bgmm"), str(path)])
    assert status == 0, stderr
    predicted = pd.read_csv(io.StringIO(stdout))
    assert list(predicted.columns) == list(rows.columns[2:])
    np.testing.assert_array_equal(predicted["noise"], rows["noise"])


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
