"""The bayesgmm command's reading of CSV files and its command line, before any fit (no JAX needed):
the files users bring (pandas' index column, spreadsheet exports, no header row, stray fields, blank
lines and cells) and options that come back at once."""

import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from bayesgmm.cli import CommandError, main, parse_components, read_data


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(0)
    return pd.DataFrame({"a": rng.normal(size=8), "b": rng.normal(size=8) * 1e3})


def write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_pandas_index_column_is_dropped_and_said(tmp_path, frame):
    path = tmp_path / "indexed.csv"
    frame.to_csv(path)  # pandas' default keeps the row index as an unnamed first column
    data = read_data(path)
    assert list(data.frame.columns) == ["a", "b"]
    np.testing.assert_allclose(data.frame.to_numpy(), frame.to_numpy(), rtol=1e-15)
    assert data.notes == [f"{path}: dropped the first column: it has no name and holds the row numbers 0..7, a row "
                          "index as pandas' to_csv and R's write.csv write it (choose columns with --columns to keep "
                          "it)"]
    frame.sample(frac=1, random_state=0).to_csv(path)  # a shuffled index is an index too
    assert list(read_data(path).frame.columns) == ["a", "b"]
    frame.set_axis([f"r{i}" for i in range(8)]).to_csv(path)  # and so are row names
    assert "holds distinct labels" in read_data(path).notes[0]
    write(tmp_path, '"","a","b"\n"1",1.5,2\n"2",3,4\n', "r.csv")  # R's write.csv
    assert list(read_data(tmp_path / "r.csv").frame.columns) == ["a", "b"]


def test_an_unnamed_column_that_is_not_an_index_is_refused_by_number(tmp_path):
    path = write(tmp_path, ",a,b\n1.5,2,3\n1.5,5,6\n")
    with pytest.raises(CommandError, match=r"column 1 has no name in the header; name it, or choose columns with"):
        read_data(path)
    assert list(read_data(path, "a,b").frame.columns) == ["a", "b"]


def test_semicolons_and_decimal_commas_are_read_as_numbers(tmp_path, frame):
    path = tmp_path / "excel.csv"
    frame.to_csv(path, sep=";", decimal=",", index=False)
    data = read_data(path)
    np.testing.assert_allclose(data.frame.to_numpy(), frame.to_numpy(), rtol=1e-15)
    assert data.notes == [f"{path}: ';'-separated with decimal commas"]
    frame.to_csv(path, sep="\t", index=False)
    np.testing.assert_allclose(read_data(path).frame.to_numpy(), frame.to_numpy(), rtol=1e-15)


def test_a_file_that_cannot_be_read_as_numbers_names_the_separator(tmp_path):
    with pytest.raises(CommandError, match=r"found no separator \(',', ';', tab or '\|'\) between values, and the "
                                           r"one column 'a b' is not numeric \(line 2: '1 2'\)"):
        read_data(write(tmp_path, "a b\n1 2\n3 4\n"))
    with pytest.raises(CommandError, match=r"column 'a' is not numeric \(line 3: '3.5'\); choose numeric columns with "
                                           r"--columns \(read as ';'-separated with decimal commas\)"):
        read_data(write(tmp_path, "a;b\n1,5;2\n3.5;4\n"))  # a decimal point among decimal commas


def test_a_first_line_of_numbers_is_data(tmp_path, frame):
    path = tmp_path / "bare.csv"
    frame.to_csv(path, index=False, header=False)
    data = read_data(path)
    assert list(data.frame.columns) == ["x0", "x1"] and len(data.frame) == 8
    np.testing.assert_allclose(data.frame.to_numpy(), frame.to_numpy(), rtol=1e-15)
    assert "the first line holds numbers only, so it is read as data" in data.notes[0]
    assert list(read_data(path, header=True).frame.columns) == list(map(str, frame.iloc[0]))  # --header
    frame.to_csv(path, index=False)
    with pytest.raises(CommandError, match=r"column 'x0' is not numeric \(line 1: 'a'\)"):
        read_data(path, header=False)  # --no-header: then the names are data


def test_a_row_with_one_more_field_is_refused_by_its_line(tmp_path):
    with pytest.raises(CommandError, match=r"line 2 has 3 fields but the first line has 2 \(a row-name column "):
        read_data(write(tmp_path, "a,b\n1,2,3\n4,5,6\n"))
    with pytest.raises(CommandError, match=r"data.csv: line 5 has 3 fields but the first line has 2$"):
        read_data(write(tmp_path, "a,b\n1,2\n\n\n4,5,6\n"))


def test_errors_name_the_files_line_after_blank_lines(tmp_path):
    with pytest.raises(CommandError, match=r"column 'b' is not numeric \(line 5: 'x'\)"):
        read_data(write(tmp_path, "a,b\n1,2\n\n\n3,x\n"))


def test_blank_cells_are_nan_and_counted(tmp_path):
    data = read_data(write(tmp_path, "a,b,c\n1,2,\n\n3,,1\n5,6,1\n"))
    assert data.blank == 2 and data.first_blank_line == 2
    assert data.lines.tolist() == [2, 4, 5]
    np.testing.assert_array_equal(np.isnan(data.frame.to_numpy()), [[0, 0, 1], [0, 1, 0], [0, 0, 0]])
    with pytest.raises(CommandError, match=r"line 3 has no value in the chosen column\(s\) b"):
        read_data(write(tmp_path, "a,b\n1,2\n3,\n"), "b")


def test_other_header_faults(tmp_path):
    with pytest.raises(CommandError, match="column 'a' appears 2 times in the header"):
        read_data(write(tmp_path, "a,a\n1,2\n"))
    assert list(read_data(write(tmp_path, "a,b,\n1,2,\n3,4,\n")).frame.columns) == ["a", "b"]  # trailing commas
    with pytest.raises(CommandError, match="no data rows below the header"):
        read_data(write(tmp_path, "a,b\n\n"))
    latin = tmp_path / "latin.csv"
    latin.write_bytes("a;\xe9t\xe9\n1,5;2\n".encode("latin-1"))
    data = read_data(latin)
    assert list(data.frame.columns) == ["a", "\xe9t\xe9"] and data.frame.iloc[0, 0] == 1.5
    assert data.notes[-1] == f"{latin}: not UTF-8 text, read as Latin-1"


def test_components_are_bounded():
    assert parse_components("1-1000")[-1] == 1000
    for text in ("1-100000000000", "1001"):
        with pytest.raises(Exception, match="at most 1000 components"):
            parse_components(text)


def test_too_many_components_for_the_rows(capsys, tmp_path):
    path = write(tmp_path, "a,b\n1,2\n3,4\n5,7\n")
    assert main(["fit", str(path), "--components", "1-5", "--out", str(tmp_path / "r")]) == 1
    assert capsys.readouterr().err.strip() == (f"bayesgmm: error: {path}: 3 rows are too few for 5 components; "
                                               "lower --components")


@pytest.mark.parametrize("argv, message", [
    (["--method", "vi", "--chains", "2"], "--chains is a NUTS option; with --method vi use --vi-steps and --draws"),
    (["--method", "vi", "--chains", "2", "--warmup", "9"],
     "--chains and --warmup are NUTS options; with --method vi use --vi-steps and --draws"),
    (["--draws", "9"], "--draws needs --method nuts or vi"),
    (["--vi-steps", "9"], "--vi-steps needs --method vi"),
    (["--method", "nuts", "--noise"], "--noise needs --method em"),
])
def test_option_combinations_are_usage_errors(capsys, tmp_path, argv, message):
    assert main(["fit", str(tmp_path / "x.csv"), *argv]) == 2
    assert capsys.readouterr().err.strip() == f"bayesgmm fit: error: {message} (see bayesgmm fit --help)"


def test_out_folder_with_other_files_or_a_file_is_refused_before_reading(capsys, tmp_path):
    data = tmp_path / "nope.csv"  # never read: the folder is checked first
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    assert main(["fit", str(data), "--out", str(tmp_path / "mine")]) == 1
    assert capsys.readouterr().err.strip() == (
        f"bayesgmm: error: --out {tmp_path / 'mine'}: the folder holds files the report does not write (notes.txt); "
        "choose another folder, or pass --force to write the report beside them")
    (tmp_path / "afile").write_text("x")
    for out, text in [("afile", "is a file"), ("afile/sub", f"{tmp_path / 'afile'} is a file")]:
        assert main(["demo", "--out", str(tmp_path / out)]) == 1
        assert capsys.readouterr().err.strip() == (f"bayesgmm: error: --out {tmp_path / out}: {text}, expected a "
                                                   "folder for the report")


def test_help_and_usage_errors_do_not_import_jax():
    script = textwrap.dedent("""
        import sys
        from bayesgmm import cli
        for argv in (["--help"], ["fit", "x.csv", "--components", "0"], ["fit", "x.csv", "--draws", "3"]):
            try:
                cli.main(argv)
            except SystemExit:
                pass
        print(sorted(m for m in ("jax", "numpyro", "arviz", "sklearn", "pandas") if m in sys.modules))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
