"""Untrusted model files and saving under faults.

The rule: loading any file gives a clear :class:`ModelFileError` or a model identical to (or as usable as)
the one saved; never a raw exception from inside the reader, a runaway allocation, or a model that
predicts NaN. Saving replaces the file atomically and leaves no temporary file behind.
"""

import collections
import errno
import io
import json
import math
import re
import struct
import threading
import tracemalloc
import zipfile
import zlib

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bayesgmm as bg
from bayesgmm.cli import main
from bayesgmm.covariance import COVARIANCE_NAMES, get_model
from bayesgmm.io import MANIFEST, MAX_DEPTH, MAX_MANIFEST_BYTES, ModelFileError

# ------------------------------------------------------------------------------------------------ helpers


def is_array(value):
    return isinstance(value, (np.ndarray, jax.Array))


def same(a, b) -> bool:
    """Bit-identical models: same classes, attribute names, dtypes, shapes and bytes."""
    if is_array(a) or is_array(b):
        if not (is_array(a) and is_array(b)):
            return False
        a, b = np.asarray(a), np.asarray(b)
        if a.dtype != b.dtype or a.shape != b.shape:
            return False
        return a.tolist() == b.tolist() if a.dtype.hasobject else a.tobytes() == b.tobytes()
    if type(a) is not type(b):
        return False
    if type(a).__name__ == "DataTree":
        return a.identical(b)
    if isinstance(a, np.random.RandomState):
        return same(a.get_state(), b.get_state())
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if hasattr(a, "get_params"):
        return same(vars(a), vars(b))
    if isinstance(a, float):
        return repr(a) == repr(b)
    return a == b


def check_load(data: bytes, original, X):
    """Load a file's bytes under the rule; returns "error", "identical" or "usable"."""
    try:
        loaded = bg.load(io.BytesIO(data))
    except ModelFileError as err:
        assert str(err).startswith("the model file object: ")
        return "error"
    if same(loaded, original):
        return "identical"
    assert np.all(np.isfinite(loaded.score_samples(X))), "a loaded model predicts NaN"
    assert np.all(np.isfinite(loaded.predict_proba(X)))
    return "usable"


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def pack(contents: dict[str, bytes]) -> bytes:
    """A fresh archive (valid CRCs) with the given members."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in contents.items():
            archive.writestr(name, data)
    return out.getvalue()


def with_manifest(data: bytes, change) -> bytes:
    contents = members(data)
    manifest = json.loads(contents[MANIFEST])
    change(manifest)
    contents[MANIFEST] = json.dumps(manifest).encode()
    return pack(contents)


def npy(arr) -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array(out, np.asarray(arr), allow_pickle=False)
    return out.getvalue()


def array_name(data: bytes, attribute: str) -> str:
    """The member holding a fitted attribute."""
    node = json.loads(members(data)[MANIFEST])["model"]
    return node["fitted"][attribute]["__array__"]


def with_array(data: bytes, attribute: str, arr) -> bytes:
    contents = members(data)
    contents[array_name(data, attribute)] = npy(arr)
    return pack(contents)


def central_entries(data: bytes) -> dict[str, int]:
    """Offset of each member's central-directory entry."""
    end = data.rfind(b"PK\x05\x06")
    count, _, offset = struct.unpack("<HII", data[end + 10:end + 20])
    entries = {}
    for _ in range(count):
        name_len, extra_len, comment_len = struct.unpack("<HHH", data[offset + 28:offset + 34])
        entries[data[offset + 46:offset + 46 + name_len].decode()] = offset
        offset += 46 + name_len + extra_len + comment_len
    return entries


def with_declared_size(data: bytes, name: str, file_size: int) -> bytes:
    """The archive with the size ``name`` declares to inflate to changed (its CRC and data kept)."""
    out = bytearray(data)
    struct.pack_into("<I", out, central_entries(data)[name] + 24, file_size)
    return bytes(out)


def re_shape(shape):
    return re.escape(str(tuple(shape)))


def fabricated(covariance_type: str, k: int = 2, d: int = 3) -> bg.GaussianMixture:
    """A GaussianMixture set up by hand (no fit): valid parameters in the model's stored form."""
    form = get_model(covariance_type).form
    gm = bg.GaussianMixture(k, covariance_type=covariance_type)
    shape = form.chol_shape(k, d)
    chol = np.broadcast_to(np.eye(d), shape).copy() if form.matrix else np.ones(shape)
    gm.weights_, gm.means_ = np.full(k, 1 / k), np.arange(k * d, dtype=float).reshape(k, d)
    gm.precisions_cholesky_, gm.covariances_, gm.precisions_ = chol, chol.copy(), chol.copy()
    gm.n_features_in_ = d
    return gm


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("untrusted")


@pytest.fixture(scope="module")
def gm_file(faithful, workdir):
    """A small fitted GaussianMixture, its file's bytes, and data to predict."""
    gm = bg.GaussianMixture(2, random_state=0).fit(faithful)
    return gm, gm.save(workdir / "gm.bgmm").read_bytes(), faithful[:16]


# ------------------------------------------------------------------------------------------------ sweeps


def test_every_byte_flip_gives_an_error_or_the_same_model(gm_file):
    gm, good, X = gm_file
    outcomes, raw = collections.Counter(), []
    for i in range(len(good)):
        data = bytearray(good)
        data[i] ^= 0xFF
        try:
            outcomes[check_load(bytes(data), gm, X)] += 1
        except Exception as err:  # collected so that the assertion lists every bad position
            raw.append((i, type(err).__name__, str(err)[:80]))
    assert raw == []
    assert outcomes["error"] > 0 and outcomes["identical"] > 0
    assert sum(outcomes.values()) == len(good)


def test_every_truncation_gives_an_error(gm_file):
    good = gm_file[1]
    for n in range(len(good)):
        with pytest.raises(ModelFileError, match="^the model file object: "):
            bg.load(io.BytesIO(good[:n]))


# ------------------------------------------------------------------------------------------------ sizes


def test_manifest_declaring_more_than_its_limit_is_refused_before_reading(gm_file, tmp_path):
    path = tmp_path / "big.bgmm"
    path.write_bytes(with_declared_size(gm_file[1], MANIFEST, 1 << 30))
    with pytest.raises(ModelFileError, match=f"declares 1073741824 bytes, more than the {MAX_MANIFEST_BYTES}"):
        bg.load(path)


def test_deflate_bomb_under_a_small_declared_size_is_never_inflated(gm_file, tmp_path):
    # 32 MiB of JSON whitespace deflate to 32 kB; the directory claims 2000 bytes
    contents = members(gm_file[1])
    contents[MANIFEST] = contents[MANIFEST] + b" " * (32 << 20)
    path = tmp_path / "bomb.bgmm"
    path.write_bytes(with_declared_size(pack(contents), MANIFEST, 2000))
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError, match="bomb.bgmm: corrupted model file"):
            bg.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20


def test_arrays_inflating_past_max_bytes_are_refused_before_reading(gm_file, tmp_path):
    gm, good, X = gm_file
    path = tmp_path / "huge.bgmm"
    path.write_bytes(with_array(good, "means_", np.zeros((2, 1 << 21))))  # 32 MiB deflated to 32 kB
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError, match=r"inflates to more than max_bytes=16777216 bytes \(at arrays/"):
            bg.load(path, max_bytes=16 << 20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20
    # within the budget, the shape check refuses it
    with pytest.raises(ModelFileError, match=r"means_ has shape \(2, 2097152\), expected \(2, 2\)"):
        bg.load(path)


def test_npy_header_declaring_more_than_its_bytes_is_refused(gm_file, tmp_path):
    header = npy(np.zeros(1))[:-8].replace(b"(1,)", b"(1000000000000,)")  # a 10^12-float header, 8 bytes of data
    header = header[:8] + struct.pack("<H", len(header) - 10) + header[10:]
    contents = members(gm_file[1])
    contents[array_name(gm_file[1], "means_")] = header + b"\0" * 8
    path = tmp_path / "liar.bgmm"
    path.write_bytes(pack(contents))
    with pytest.raises(ModelFileError, match=r"shape \(1000000000000,\) of float64 does not fit its \d+ bytes"):
        bg.load(path)


def test_arrays_larger_than_a_read_chunk_and_fortran_order_round_trip(tmp_path):
    gm = fabricated("full", k=2, d=300)  # 1.4 MB per (2, 300, 300) float64 array: read in pieces
    gm.means_ = np.asfortranarray(gm.means_)
    loaded = bg.load(gm.save(tmp_path / "big.bgmm"))
    assert same(loaded, gm)


# ------------------------------------------------------------------------------------------------ manifests


@pytest.mark.parametrize(("table", "name", "words"), [
    ("fitted", "__dict__", "attribute '__dict__' is not one a GaussianMixture has"),
    ("fitted", "__class__", "attribute '__class__' is not one a GaussianMixture has"),
    ("fitted", "extra_", "attribute 'extra_' is not one a GaussianMixture has"),
    ("params", "__dict__", "GaussianMixture has no constructor argument '__dict__'"),
])
def test_only_the_attributes_the_class_declares_are_set(gm_file, tmp_path, table, name, words):
    path = tmp_path / "evil.bgmm"
    path.write_bytes(with_manifest(gm_file[1], lambda m: m["model"][table].__setitem__(
        name, {"__dict__": {"weights_": None, "means_": None}})))
    with pytest.raises(ModelFileError, match=words):
        bg.load(path)


def test_missing_required_attribute(gm_file, tmp_path):
    path = tmp_path / "short.bgmm"
    path.write_bytes(with_manifest(gm_file[1], lambda m: m["model"]["fitted"].pop("means_")))
    with pytest.raises(ModelFileError, match="the GaussianMixture has no means_"):
        bg.load(path)


@pytest.mark.parametrize(("depth", "words"), [(100_000, "RecursionError"), (MAX_DEPTH + 1, "nests deeper than")])
def test_deeply_nested_json(gm_file, tmp_path, depth, words):
    contents = members(gm_file[1])
    contents[MANIFEST] = (b'{"format": "bayesgmm-model", "format_version": 1, "model": '
                          + b"[" * depth + b"]" * depth + b"}")
    path = tmp_path / "deep.bgmm"
    path.write_bytes(pack(contents))
    with pytest.raises(ModelFileError, match=words):
        bg.load(path)


def test_nan_literal_in_manifest_is_refused(gm_file, tmp_path):
    path = tmp_path / "nan.bgmm"
    path.write_bytes(with_manifest(gm_file[1], lambda m: m["model"]["fitted"].__setitem__("lower_bound_", math.nan)))
    with pytest.raises(ModelFileError, match="NaN is not JSON"):
        bg.load(path)


def damaged_deflate(good: bytes) -> bytes:
    """The file with the manifest's deflate stream damaged so that zlib itself fails on it."""
    info = zipfile.ZipFile(io.BytesIO(good)).getinfo(MANIFEST)
    name_len, extra_len = struct.unpack("<HH", good[info.header_offset + 26:info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len
    for i in range(start, start + info.compress_size):
        data = bytearray(good)
        data[i] ^= 0x55
        try:
            zlib.decompressobj(-15).decompress(bytes(data[start:start + info.compress_size]))
        except zlib.error:
            return bytes(data)
    raise AssertionError("no damaging flip found")


def test_damaged_deflate_stream_is_a_model_file_error(gm_file, tmp_path, capsys):
    path = tmp_path / "damaged.bgmm"
    path.write_bytes(damaged_deflate(gm_file[1]))
    with pytest.raises(ModelFileError, match=r"damaged.bgmm: corrupted model file \(error: Error -3 while decomp"):
        bg.load(path)
    # and bayesgmm predict reports it in one line, exit status 1
    csv = tmp_path / "x.csv"
    csv.write_text("a,b\n1,2\n")
    assert main(["predict", str(path), str(csv)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"bayesgmm: error: {path}: corrupted model file (error: Error -3") and "Traceback" not in err


# ------------------------------------------------------------------------------------------------ arrays vs manifest


@pytest.mark.parametrize("covariance_type", COVARIANCE_NAMES)
def test_precision_shape_follows_the_covariance_model(tmp_path, covariance_type):
    gm = fabricated(covariance_type)
    path = gm.save(tmp_path / "m.bgmm")
    assert same(bg.load(path), gm)
    expected = get_model(covariance_type).form.chol_shape(2, 3)
    wrong = np.ones(expected + (1,))
    path.write_bytes(with_array(path.read_bytes(), "precisions_cholesky_", wrong))
    with pytest.raises(ModelFileError, match=rf"precisions_cholesky_ has shape {re_shape(wrong.shape)}, "
                                             rf"expected {re_shape(expected)}"):
        bg.load(path)


@pytest.mark.parametrize(("change", "words"), [
    (lambda m: m["params"].__setitem__("n_components", 3), r"means_ has shape \(2, 2\), expected \(3, 2\)"),
    (lambda m: m["params"].__setitem__("covariance_type", "diag"),
     r"precisions_cholesky_ has shape \(2, 2, 2\), expected \(2, 2\)"),
    (lambda m: m["fitted"].__setitem__("n_features_in_", 3), r"means_ has shape \(2, 2\), expected \(2, 3\)"),
    (lambda m: m["fitted"].__setitem__("n_features_in_", True), "n_features_in_ must be an integer >= 1"),
    (lambda m: m["params"].__setitem__("tol", "big"), "invalid constructor arguments"),
    (lambda m: m["fitted"].__setitem__("n_iter_", -1), "n_iter_ must be an integer >= 0, got -1"),
    (lambda m: m["fitted"].__setitem__("converged_", 1), "converged_ must be true or false"),
    (lambda m: m["fitted"].__setitem__("lower_bounds_", [1.0, "x"]), r"lower_bounds_\[1\] must be a number"),
    (lambda m: m["fitted"].__setitem__("covariances_", m["fitted"]["weights_"]),
     r"covariances_ has shape \(2,\), expected \(2, 2, 2\)"),
    (lambda m: m["fitted"].__setitem__("means_", 1.5), "means_ is a float, not an array"),
    (lambda m: m["fitted"].__setitem__("_stream", {"__namedtuple__": "MixtureDraws", "fields": {
        "weights": 1, "means": 2, "covariances": 3, "cov_factor": 4}}), "_stream is a MixtureDraws, not a StreamState"),
])
def test_manifest_that_disagrees_with_the_arrays(gm_file, tmp_path, change, words):
    path = tmp_path / "odd.bgmm"
    path.write_bytes(with_manifest(gm_file[1], lambda m: change(m["model"])))
    with pytest.raises(ModelFileError, match=r"odd.bgmm: invalid model file \(GaussianMixture\..*" + words):
        bg.load(path)


@pytest.mark.parametrize(("attribute", "value", "words"), [
    ("means_", lambda a: np.where([[True, False], [False, False]], np.nan, a), "means_ holds NaN or infinite values"),
    ("covariances_", lambda a: a * np.inf, "covariances_ holds NaN or infinite values"),
    ("weights_", lambda a: a.astype(np.float32), "weights_ has dtype float32, expected float64"),
    ("weights_", lambda a: a * [-1, 1], "weights_ must be non-negative and sum to 1"),
    ("weights_", lambda a: a.astype(np.int64), "weights_ has dtype int64"),
    ("precisions_cholesky_", lambda a: a * 0, "precisions_cholesky_ is singular"),
    ("means_", lambda a: a.astype(np.float16), "means_ has dtype float16"),
])
def test_arrays_with_bad_values_or_dtypes(gm_file, tmp_path, attribute, value, words):
    gm, good, X = gm_file
    path = tmp_path / "values.bgmm"
    path.write_bytes(with_array(good, attribute, value(getattr(gm, attribute))))
    with pytest.raises(ModelFileError, match=r"values.bgmm: invalid model file \(GaussianMixture\." + words):
        bg.load(path)


def test_structured_and_object_arrays_are_refused(gm_file, tmp_path):
    path = tmp_path / "records.bgmm"
    path.write_bytes(with_array(gm_file[1], "weights_", np.zeros(2, [("a", "f8"), ("b", "f8")])))
    with pytest.raises(ModelFileError, match=r"has unsupported dtype"):
        bg.load(path)


# ------------------------------------------------------------------------------------------------ saving


def test_save_from_two_threads_to_one_path(tmp_path, gm_file):
    gm = gm_file[0]
    other = fabricated("full", k=2, d=2)
    path = tmp_path / "shared.bgmm"
    for _ in range(30):
        errors = []

        def write(model):
            try:
                bg.save(model, path)
            except Exception as err:
                errors.append(err)

        threads = [threading.Thread(target=write, args=(m,)) for m in (gm, other)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        loaded = bg.load(path)
        assert same(loaded, gm) or same(loaded, other)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared.bgmm"]


def test_failed_save_onto_a_directory_leaves_nothing(tmp_path, gm_file):
    target = tmp_path / "folder"
    target.mkdir()
    with pytest.raises(IsADirectoryError, match="it is a directory"):
        bg.save(gm_file[0], target)
    assert [p.name for p in tmp_path.iterdir()] == ["folder"] and list(target.iterdir()) == []


@pytest.mark.parametrize("fault", [OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt()])
def test_save_that_fails_midway_keeps_the_old_file_and_no_temporary(tmp_path, gm_file, monkeypatch, fault):
    gm = gm_file[0]
    path = bg.save(gm, tmp_path / "m.bgmm")
    before = path.read_bytes()
    calls = []

    def failing_write(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise fault
        return original(*args, **kwargs)

    original = np.lib.format.write_array
    monkeypatch.setattr(np.lib.format, "write_array", failing_write)
    with pytest.raises(type(fault)):
        bg.save(fabricated("full", k=2, d=2), path)
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["m.bgmm"]
    assert path.read_bytes() == before


def test_save_refuses_an_attribute_its_file_cannot_hold(tmp_path):
    gm = fabricated("diag")
    gm.custom_ = 1
    with pytest.raises(TypeError, match=r"cannot save model.custom_: a GaussianMixture model file has no such"):
        bg.save(gm, tmp_path / "m.bgmm")
    assert list(tmp_path.iterdir()) == []


def test_partial_fit_continues_after_load(tmp_path, faithful):
    rng = np.random.default_rng(0)
    batches = [faithful[rng.permutation(len(faithful))[:64]] for _ in range(4)]
    gm = bg.GaussianMixture(2, covariance_type="diag", random_state=0)
    for batch in batches[:2]:
        gm.partial_fit(batch)
    loaded = bg.load(gm.save(tmp_path / "stream.bgmm"))
    assert same(loaded._stream, gm._stream)
    for batch in batches[2:]:
        gm.partial_fit(batch)
        loaded.partial_fit(batch)
    assert loaded.n_iter_ == gm.n_iter_ == 4
    for name in ("weights_", "means_", "precisions_cholesky_"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(gm, name))


def test_conjugate_prior_argument_round_trips(tmp_path):
    from bayesgmm.prior import ConjugatePrior

    gm = fabricated("VVV")
    gm.prior = ConjugatePrior(shrinkage=0.5, mean=np.zeros(3), scale=np.eye(3))
    assert same(bg.load(gm.save(tmp_path / "prior.bgmm")), gm)


def test_stream_statistics_are_checked(tmp_path, faithful):
    gm = bg.GaussianMixture(2, covariance_type="diag", random_state=0).partial_fit(faithful[:64])
    gm._stream = gm._stream._replace(scatter=gm._stream.scatter[:, :1])
    path = gm.save(tmp_path / "stream.bgmm")
    with pytest.raises(ModelFileError, match=r"_stream.scatter has shape \(2, 1\), expected \(2, 2\)"):
        bg.load(path)


# ------------------------------------------------------------------------------------------------ fuzzing

HOSTILE = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.sampled_from(["__dict__", "__array__", "arrays/0.npy", "arrays/99.npy", "full", "diag", "VEV", "os.system"]),
    st.sampled_from([
        {"__array__": "arrays/0.npy"}, {"__array__": "arrays/7.npy", "jax": True}, {"__array__": "arrays/1.npy",
                                                                                     "object": True},
        {"__array__": 3}, {"__array__": "bayesgmm.json"}, {"__dict__": {"__dict__": 1}}, {"__dict__": 5},
        {"__float__": "nan"}, {"__float__": "x"}, {"__tuple__": [1, [2]]}, {"__tuple__": 1},
        {"__namedtuple__": "StreamState", "fields": {}}, {"__namedtuple__": "os", "fields": {}},
        {"__namedtuple__": "StreamState", "fields": {"nk": 1, "scatter": 2, "n_steps": 3}},
        {"__random_state__": [1]}, {"__random_state__": {"__tuple__": ["MT19937", [1], 0, 0, 0.0]}},
        {"__estimator__": {"class": "GaussianMixture", "params": {}, "fitted": {}}}, {"__estimator__": []},
        {"__datatree__": {"/": {}}}, {"__datatree__": 1}, {"__unknown__": 1}, {}, [], [[[]]],
    ]),
    st.lists(st.integers(-3, 3), max_size=3),
)


def mutate(manifest, data):
    """One hostile change somewhere in the manifest (mostly in its model entry): replace, delete, rename
    or add an entry."""
    node, parent, key = manifest, None, None
    if data.draw(st.integers(0, 9), label="inside model"):
        node, parent, key = manifest["model"], manifest, "model"
    for _ in range(data.draw(st.integers(0, 8), label="depth")):
        if not isinstance(node, (dict, list)) or not node:
            break
        key = data.draw(st.sampled_from(list(node) if isinstance(node, dict) else range(len(node))))
        parent, node = node, node[key]
    if parent is None:
        parent, key = manifest, data.draw(st.sampled_from(sorted(manifest)))
    action = data.draw(st.sampled_from(["replace", "delete", "rename", "add"]), label="action")
    if action == "replace":
        parent[key] = data.draw(HOSTILE, label="value")
    elif action == "delete":
        parent.pop(key)
    elif isinstance(parent, dict):
        new = data.draw(st.sampled_from(["__dict__", "_stream", "weights_", "__array__", "fitted", "x_"]) | st.text(
            max_size=6), label="name")
        parent[new] = parent.pop(key) if action == "rename" else data.draw(HOSTILE, label="value")
    else:
        parent.insert(key, data.draw(HOSTILE, label="value"))


def damage(good, data):
    """Truncation, byte flips, overwritten bytes or a changed declared size."""
    kind = data.draw(st.sampled_from(["truncate", "flip", "overwrite", "size"]), label="kind")
    out = bytearray(good)
    if kind == "truncate":
        return bytes(out[:data.draw(st.integers(0, len(good) - 1))])
    if kind == "size":
        entries = central_entries(good)
        offset = entries[data.draw(st.sampled_from(sorted(entries)))] + data.draw(st.sampled_from([20, 24]))
        value = data.draw(st.sampled_from([0, 1, 2**31, 2**32 - 1]) | st.integers(0, 2**32 - 1))
        struct.pack_into("<I", out, offset, value)
        return bytes(out)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(good) - 1))
        out[i] = out[i] ^ 0xFF if kind == "flip" else data.draw(st.integers(0, 255))
    return bytes(out)


FUZZ = settings(max_examples=60, deadline=None)


@FUZZ
@given(data=st.data())
def test_fuzz_damaged_files(gm_file, data):
    gm, good, X = gm_file
    check_load(damage(good, data), gm, X)


@FUZZ
@given(data=st.data())
def test_fuzz_hostile_manifests(gm_file, data):
    gm, good, X = gm_file
    check_load(with_manifest(good, lambda m: mutate(m, data)), gm, X)


# ------------------------------------------------------------------------------------------------ Bayesian files


@pytest.fixture(scope="module")
def bgm_file(faithful_posterior, workdir):
    bgm, X = faithful_posterior
    path = bgm.save(workdir / "bgm.bgmm")
    return bgm, path.read_bytes(), X


@pytest.mark.slow
@pytest.mark.parametrize(("change", "words"), [
    (lambda m: m["params"].__setitem__("n_components", 3), r"means_ has shape \(2, 2\), expected \(3, 2\)"),
    (lambda m: m["fitted"]["draws_"]["fields"].__setitem__("means", m["fitted"]["draws_"]["fields"]["weights"]),
     r"draws_.means has shape \(80, 2\), expected \(80, 2, 2\)"),
    (lambda m: m["fitted"].__setitem__("em_", m["fitted"]["em_"]["__estimator__"]["fitted"]["means_"]),
     "em_ is a ndarray, not a GaussianMixture"),
    (lambda m: m["fitted"]["em_"]["__estimator__"]["fitted"].__setitem__("__dict__", {}),
     "attribute '__dict__' is not one a GaussianMixture has"),
    (lambda m: m["fitted"]["idata_"]["__datatree__"].pop("/posterior"), "idata_ has no posterior group"),
    (lambda m: m["fitted"].__setitem__("relabel_permutations_", m["fitted"]["draws_"]["fields"]["means"]),
     r"relabel_permutations_ has dtype float32"),
])
def test_bayesian_manifest_that_disagrees_with_the_arrays(bgm_file, tmp_path, change, words):
    path = tmp_path / "odd.bgmm"
    path.write_bytes(with_manifest(bgm_file[1], lambda m: change(m["model"])))
    with pytest.raises(ModelFileError, match=words):
        bg.load(path)


@pytest.mark.slow
def test_bayesian_draws_with_nan_are_refused(bgm_file, tmp_path):
    bgm, good, X = bgm_file
    node = json.loads(members(good)[MANIFEST])["model"]["fitted"]["draws_"]["fields"]["cov_factor"]
    contents = members(good)
    factor = np.asarray(bgm.draws_.cov_factor).copy()
    factor[3, 1, 0] = np.nan
    contents[node["__array__"]] = npy(factor)
    path = tmp_path / "nan.bgmm"
    path.write_bytes(pack(contents))
    with pytest.raises(ModelFileError, match=r"BayesianGaussianMixture.draws_.cov_factor holds NaN"):
        bg.load(path)


@pytest.mark.slow
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_fuzz_bayesian_files(bgm_file, data):
    bgm, good, X = bgm_file
    hostile = data.draw(st.booleans(), label="manifest")
    check_load(with_manifest(good, lambda m: mutate(m, data)) if hostile else damage(good, data), bgm, X)
