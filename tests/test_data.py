"""codegen.data: every data source, the train/test parts, and clear errors for bad data."""

from __future__ import annotations

import gzip
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from codegen.data import (
    Dataset,
    check_labels,
    load,
    one_hot,
    split,
    standardise,
)
from derive.errors import SpecError

# ---------------------------------------------------------------------------
# helpers


def idx_bytes(magic: int, array: np.ndarray) -> bytes:
    header = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write(path: Path, data: bytes, gz: bool = False) -> Path:
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def mnist_arrays(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    return images, labels


def write_mnist(directory: Path, n_train=5, n_test=3, gz_train=True, gz_test=False, dot=False):
    files = {}
    for part, n, gz, seed in (("train", n_train, gz_train, 1), ("t10k", n_test, gz_test, 2)):
        images, labels = mnist_arrays(n, seed)
        sep = "." if dot else "-"
        write(directory / f"{part}-images{sep}idx3-ubyte", idx_bytes(0x803, images), gz)
        write(directory / f"{part}-labels{sep}idx1-ubyte", idx_bytes(0x801, labels), gz)
        files[part] = (images, labels)
    return files


def error_of(source: str, part: str = "train") -> SpecError:
    with pytest.raises(SpecError) as info:
        load(source, part)
    return info.value


def labelled(n: int = 10, n_features: int = 3) -> Dataset:
    features = np.arange(n * n_features, dtype=np.float64).reshape(n, n_features)
    return Dataset("toy", features, np.arange(n) % 3, 3)


# ---------------------------------------------------------------------------
# MNIST IDX files


@pytest.mark.parametrize("gz_train, gz_test", [(True, False), (False, True)])
def test_mnist_reads_gzipped_and_plain_idx_files(tmp_path, gz_train, gz_test):
    files = write_mnist(tmp_path, gz_train=gz_train, gz_test=gz_test)
    for part, stem in (("train", "train"), ("test", "t10k")):
        ds = load(f"mnist:{tmp_path}", part)
        images, labels = files[stem]
        assert ds.features.shape == (len(labels), 784) and ds.features.dtype == np.float64
        assert ds.features.min() >= 0.0 and ds.features.max() <= 1.0
        np.testing.assert_array_equal(ds.features, images.reshape(-1, 784) / 255.0)
        np.testing.assert_array_equal(ds.targets, labels)
        assert ds.targets.dtype.kind == "i" and ds.n_classes == 10


def test_mnist_accepts_the_dot_variant_names(tmp_path):
    files = write_mnist(tmp_path, dot=True)
    ds = load(f"mnist:{tmp_path}", "test")
    np.testing.assert_array_equal(ds.targets, files["t10k"][1])


def test_bare_mnist_reads_the_data_directory(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    write_mnist(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    assert load("mnist").n_examples == 5


def test_mnist_missing_file_names_the_files_looked_for(tmp_path):
    write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    err = error_of(f"mnist:{tmp_path}", "test")
    assert "t10k-labels-idx1-ubyte not found" in err.message
    for name in ("t10k-labels-idx1-ubyte.gz", "t10k-labels.idx1-ubyte"):
        assert name in err.message
    assert err.file == str(tmp_path)
    assert load(f"mnist:{tmp_path}", "train").n_examples == 5  # the train files are still fine


def test_mnist_missing_directory(tmp_path):
    err = error_of(f"mnist:{tmp_path / 'nowhere'}")
    assert "not found" in err.message and "train-images-idx3-ubyte" in err.message


def test_mnist_bad_magic(tmp_path):
    write_mnist(tmp_path, gz_test=False)
    _, labels = mnist_arrays(3, 0)
    write(tmp_path / "t10k-images-idx3-ubyte", idx_bytes(0x801, labels))  # a label file
    err = error_of(f"mnist:{tmp_path}", "test")
    assert "0x00000801" in err.message and "0x00000803" in err.message
    assert "label file" in err.message
    assert err.file == str(tmp_path / "t10k-images-idx3-ubyte") and (err.line, err.col) == (1, 1)


def test_mnist_not_idx_at_all(tmp_path):
    write_mnist(tmp_path)
    write(tmp_path / "t10k-labels-idx1-ubyte", b"<html>404 Not Found</html>")
    assert "not an MNIST IDX file" in error_of(f"mnist:{tmp_path}", "test").message


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_truncated_file(tmp_path, gz):
    write_mnist(tmp_path, gz_train=False)
    images, _ = mnist_arrays(5, 1)
    data = idx_bytes(0x803, images)[:-100]
    (tmp_path / "train-images-idx3-ubyte").unlink()
    write(tmp_path / "train-images-idx3-ubyte", data, gz)
    err = error_of(f"mnist:{tmp_path}")
    assert "truncated" in err.message and "5 x 28 x 28" in err.message
    assert str(len(data)) in err.message


def test_mnist_truncated_header_and_extra_bytes(tmp_path):
    write_mnist(tmp_path, gz_test=False)
    write(tmp_path / "t10k-labels-idx1-ubyte", b"\x00\x00")
    assert "too short for an IDX header" in error_of(f"mnist:{tmp_path}", "test").message
    write(tmp_path / "t10k-labels-idx1-ubyte", b"\x00\x00\x08\x01\x00\x00")
    assert "header alone needs 8" in error_of(f"mnist:{tmp_path}", "test").message
    _, labels = mnist_arrays(3, 2)
    write(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes(0x801, labels) + b"\x00")
    assert "too long" in error_of(f"mnist:{tmp_path}", "test").message


def test_mnist_image_label_count_mismatch(tmp_path):
    write_mnist(tmp_path, gz_test=False)
    _, labels = mnist_arrays(4, 2)
    write(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes(0x801, labels))
    err = error_of(f"mnist:{tmp_path}", "test")
    assert "3 images" in err.message and "4 labels" in err.message


def test_mnist_corrupt_gzip(tmp_path):
    write_mnist(tmp_path, gz_train=True)
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:20])
    assert "not a valid gzip file" in error_of(f"mnist:{tmp_path}").message


# ---------------------------------------------------------------------------
# scikit-learn, xor, seed000


def test_iris_parts_shapes_and_classes():
    train, test = load("iris", "train"), load("iris", "test")
    assert train.features.shape == (105, 4) and test.features.shape == (45, 4)
    assert train.n_classes == test.n_classes == 3 and train.targets.dtype.kind == "i"
    counts = np.bincount(np.concatenate([train.targets, test.targets]))
    np.testing.assert_array_equal(counts, [50, 50, 50])


def test_digits_parts_shapes_and_classes():
    train, test = load("digits", "train"), load("digits", "test")
    assert train.features.shape == (1258, 64) and test.features.shape == (539, 64)
    assert train.n_classes == 10 and set(test.targets) <= set(range(10))


def test_split_of_a_source_is_seeded():
    a, b, c = load("iris", "test", seed=0), load("iris", "test", seed=0), load("iris", "test", 1)
    np.testing.assert_array_equal(a.features, b.features)
    assert not np.array_equal(a.features, c.features)


def test_missing_scikit_learn_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    err = error_of("iris")
    assert "needs scikit-learn" in err.message and "pip install scikit-learn" in err.message


def test_xor_contents_in_both_parts():
    for part in ("train", "test"):
        ds = load("xor", part)
        np.testing.assert_array_equal(ds.features, [[0, 0], [0, 1], [1, 0], [1, 1]])
        np.testing.assert_array_equal(ds.targets, [[0.0], [1.0], [1.0], [0.0]])
        assert ds.targets.dtype == np.float64 and ds.n_classes is None


def test_seed000_is_the_seed_programs_random_regression():
    ds = load("seed000", seed=7)
    rng = np.random.default_rng(7)
    np.testing.assert_array_equal(ds.features, rng.standard_normal((64, 1000)))
    np.testing.assert_array_equal(ds.targets, rng.standard_normal((64, 10)))
    assert ds.n_classes is None
    np.testing.assert_array_equal(load("seed000", "test", seed=7).features, ds.features)
    assert not np.array_equal(load("seed000", seed=8).features, ds.features)


# ---------------------------------------------------------------------------
# .npz files


def test_npz_round_trip_with_labels(tmp_path):
    features = np.arange(40, dtype=np.float32).reshape(20, 2)
    labels = np.arange(20) % 4
    np.savez(tmp_path / "toy.npz", features=features, targets=labels)
    train, test = load(str(tmp_path / "toy.npz")), load(str(tmp_path / "toy.npz"), "test")
    assert train.n_examples == 14 and test.n_examples == 6
    assert train.n_classes == 4 and train.features.dtype == np.float64
    rows = np.concatenate([train.features, test.features])
    targets = np.concatenate([train.targets, test.targets])
    order = np.argsort(rows[:, 0])
    np.testing.assert_array_equal(rows[order], features)
    np.testing.assert_array_equal(targets[order], labels)


@pytest.mark.parametrize("keys", [("x", "y"), ("X", "T"), ("X", "t")])
def test_npz_round_trip_with_values(tmp_path, keys):
    x, t = np.random.default_rng(0).standard_normal((2, 10, 3))
    np.savez(tmp_path / "v.npz", **{keys[0]: x, keys[1]: t})
    ds = load(str(tmp_path / "v.npz"))
    assert ds.n_classes is None and ds.targets.shape == (7, 3) and ds.features.shape == (7, 3)
    row = int(np.flatnonzero(np.all(x == ds.features[0], axis=1))[0])
    np.testing.assert_array_equal(ds.targets[0], t[row])


def test_npz_errors(tmp_path):
    np.savez(tmp_path / "a.npz", inputs=np.zeros((3, 2)), targets=np.zeros(3, dtype=int))
    err = error_of(str(tmp_path / "a.npz"))
    assert "no features array" in err.message and "'inputs'" in err.message
    np.savez(tmp_path / "b.npz", x=np.zeros((3, 2)), y=np.zeros(4, dtype=int))
    assert "3 feature rows but 4 targets" in error_of(str(tmp_path / "b.npz")).message
    np.savez(tmp_path / "c.npz", x=np.zeros((3, 2)), y=np.array([0, -1, 1]))
    assert "targets[1] is -1" in error_of(str(tmp_path / "c.npz")).message
    (tmp_path / "d.npz").write_text("not a zip")
    assert "cannot read d.npz" in error_of(str(tmp_path / "d.npz")).message
    assert "not found" in error_of(str(tmp_path / "missing.npz")).message


# ---------------------------------------------------------------------------
# .csv files


def test_csv_round_trip_with_a_named_label_column(tmp_path):
    rows = [(i * 0.5, i % 3, -i) for i in range(10)]
    text = "a,label,b\n" + "".join(f"{a},{lab},{b}\n" for a, lab, b in rows)
    (tmp_path / "t.csv").write_text(text)
    train, test = load(str(tmp_path / "t.csv")), load(str(tmp_path / "t.csv"), "test")
    assert (train.n_examples, test.n_examples) == (7, 3)
    assert train.n_classes == 3 and train.features.shape == (7, 2)
    both = np.concatenate([train.features, test.features])
    targets = np.concatenate([train.targets, test.targets])
    order = np.argsort(both[:, 0])
    np.testing.assert_array_equal(both[order], [(a, b) for a, _, b in rows])
    np.testing.assert_array_equal(targets[order], [lab for _, lab, _ in rows])


def test_csv_last_column_float_values_and_quoted_header(tmp_path):
    text = '"sepal length",width,score\n1,2,0.5\n3,4,1.5\n5,6,2\n'
    (tmp_path / "v.csv").write_text(text)
    ds = load(str(tmp_path / "v.csv"), "train")
    assert ds.n_classes is None and ds.targets.shape == (2, 1) and ds.features.shape == (2, 2)


def test_csv_bad_cell_points_at_its_line_and_column(tmp_path):
    (tmp_path / "bad.csv").write_text("x1,x2,y\n1,2,0\n\n3, abc,1\n")
    err = error_of(str(tmp_path / "bad.csv"))
    assert (err.file, err.line, err.col) == (str(tmp_path / "bad.csv"), 4, 4)
    assert "'abc'" in err.message and "line 4" in err.message


def test_csv_wrong_number_of_cells(tmp_path):
    (tmp_path / "bad.csv").write_text("x1,x2,y\n1,2,0\n1,2\n")
    err = error_of(str(tmp_path / "bad.csv"))
    assert err.line == 3 and "2 cells but the header has 3 columns" in err.message


@pytest.mark.parametrize("text", ["", "\n  \n"])
def test_csv_empty_file(tmp_path, text):
    (tmp_path / "e.csv").write_text(text)
    assert "is empty" in error_of(str(tmp_path / "e.csv")).message


def test_csv_header_only_and_single_column(tmp_path):
    (tmp_path / "h.csv").write_text("x,y\n")
    err = error_of(str(tmp_path / "h.csv"))
    assert "no data rows" in err.message and err.line == 2
    (tmp_path / "s.csv").write_text("y\n1\n2\n")
    assert "1 column" in error_of(str(tmp_path / "s.csv")).message


# ---------------------------------------------------------------------------
# unknown sources and parts


def test_unknown_source_lists_the_accepted_ones():
    err = error_of("cifar")
    assert err.file == "cifar" and (err.line, err.col) == (1, 1)
    for name in ("iris", "digits", "xor", "seed000", "mnist:DIR", ".npz", ".csv"):
        assert name in err.message
    assert str(err).startswith("cifar:1:1: error: unknown data source")


def test_unknown_part():
    assert "expected 'train' or 'test'" in error_of("xor", "validation").message


# ---------------------------------------------------------------------------
# split, standardise, one_hot, check_labels


def test_split_sizes_disjoint_and_seeded():
    ds = labelled(10)
    first, last = split(ds, 0.2, seed=3)
    assert (first.n_examples, last.n_examples) == (8, 2)
    ids = np.concatenate([first.features[:, 0], last.features[:, 0]])
    np.testing.assert_array_equal(np.sort(ids), ds.features[:, 0])
    again, _ = split(ds, 0.2, seed=3)
    np.testing.assert_array_equal(again.features, first.features)
    np.testing.assert_array_equal(first.targets, (first.features[:, 0] // 3).astype(int) % 3)
    assert first.n_classes == 3 and first.name == "toy"


def test_split_edges():
    ds = labelled(2)
    assert [p.n_examples for p in split(ds, 0.1, 0)] == [1, 1]  # neither part left empty
    assert [p.n_examples for p in split(ds, 0.0, 0)] == [2, 0]
    with pytest.raises(SpecError, match="between 0 and 1"):
        split(ds, 1.5, 0)


def test_standardise_uses_the_training_statistics():
    train = labelled(10)
    train.features[:, 2] = 4.0  # a constant column
    other = labelled(4)
    a, b = standardise(train, other)
    np.testing.assert_allclose(a.features[:, :2].mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(a.features[:, :2].std(axis=0), 1)
    np.testing.assert_array_equal(a.features[:, 2], 0)
    mean, std = train.features.mean(axis=0), train.features.std(axis=0)
    np.testing.assert_allclose(b.features[:, 0], (other.features[:, 0] - mean[0]) / std[0])
    assert train.features[0, 0] == 0.0  # the inputs are not modified
    with pytest.raises(SpecError, match="2 features but toy has 3"):
        standardise(train, labelled(4, n_features=2))


def test_one_hot():
    out = one_hot(np.array([2, 0, 1]), 4)
    np.testing.assert_array_equal(out, [[0, 0, 1, 0], [1, 0, 0, 0], [0, 1, 0, 0]])
    assert out.dtype == np.float64
    with pytest.raises(SpecError, match="label 4 .* outside 0..3"):
        one_hot(np.array([0, 4]), 4)


def test_check_labels():
    ds = labelled(10)
    check_labels(ds, 3, "net.nn")
    with pytest.raises(SpecError) as info:
        check_labels(ds, 2, "net.nn")
    err = info.value
    assert err.file == "net.nn" and "outside 0..1" in err.message and ": 2 in 3" in err.message
    with pytest.raises(SpecError, match="value targets"):
        check_labels(load("xor"), 2, "net.nn")
