"""Training and test data for ``derive train`` / ``derive test``.

This module owns everything between a data *source* named on the command line
and the arrays a generated training module consumes:

* :func:`load` turns a source (``iris``, ``digits``, ``xor``, ``seed000``,
  ``mnist:DIR``, a ``.npz`` or a ``.csv`` file) into a :class:`Dataset`, and
  picks its ``train`` or ``test`` part;
* :func:`split`, :func:`standardise`, :func:`one_hot` and
  :func:`check_labels` prepare a dataset for a network.

MNIST's IDX files are parsed here (``struct`` and ``numpy.frombuffer``), not
by a downloader.  scikit-learn is needed only for ``iris`` and ``digits`` and
is imported lazily.  Every problem with the user's data is raised as
:class:`~derive.errors.SpecError` (``file:line:col: error: ...``), never as a
traceback.
"""

from __future__ import annotations

import csv
import math
import struct
import zipfile
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from derive.errors import SpecError

__all__ = [
    "SOURCES",
    "Dataset",
    "check_labels",
    "load",
    "one_hot",
    "split",
    "standardise",
]

SOURCES = ("iris", "digits", "xor", "seed000", "words", "mnist:DIR", "FILE.npz", "FILE.csv")
WORDS_FILE = Path(__file__).with_name("words.txt")  # shipped: Python's own names
WORDS_CONTEXT = 3  # characters of context before each one to predict (makemore's block_size)
WORDS_ALPHABET = ".abcdefghijklmnopqrstuvwxyz"  # "." starts and ends every word
PARTS = ("train", "test")
TEST_FRACTION = 0.3  # the fixed test share of sources without their own test files

IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions (count, rows, cols)
LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension (count)
MNIST_CLASSES = 10
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
CSV_TARGET_NAMES = ("target", "label", "y", "class")
NPZ_FEATURE_KEYS = ("features", "x", "X")
NPZ_TARGET_KEYS = ("targets", "y", "t", "T")
MAX_CLASSES = 10_000  # the largest class count a label may imply
MAX_ARRAY_BYTES = 2**30  # the largest array a data or weights file may declare (1 GiB)
CSV_LABEL_NAMES = ("label", "class")  # columns that must hold class labels


@dataclass(eq=False)
class Dataset:
    """Examples as rows: ``features[i]`` goes with ``targets[i]``.

    ``targets`` is either a 1-D array of integer class labels (and
    ``n_classes`` says how many classes there are) or a 2-D float array of
    values (and ``n_classes`` is ``None``).
    """

    name: str
    features: np.ndarray  # (n_examples, n_features), float64
    targets: np.ndarray  # (n_examples,) int class labels, or (n_examples, k) float values
    n_classes: int | None  # number of classes when targets are labels, else None

    @property
    def n_examples(self) -> int:
        return int(self.features.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.features.shape[1])

    @property
    def is_labelled(self) -> bool:
        """True when the targets are class labels rather than values."""
        return self.n_classes is not None


# ---------------------------------------------------------------------------
# load


def load(source: str, part: str = "train", seed: int = 0) -> Dataset:
    """The ``part`` (``"train"`` or ``"test"``) of the dataset named by ``source``.

    MNIST has its own test files; ``xor`` and ``seed000`` use all their
    examples for both parts; every other source is shuffled with ``seed`` and
    split 70 % train / 30 % test.
    """
    if part not in PARTS:
        raise SpecError(f"unknown data part {part!r}; expected 'train' or 'test'", source, 1, 1)
    if source == "mnist" or source.startswith("mnist:"):
        directory = source.partition(":")[2] or "data"
        return load_mnist(directory, part)
    if source == "xor":
        return xor()
    if source == "seed000":
        return seed000(seed)
    if source in ("iris", "digits"):
        ds = load_sklearn(source)
    elif source == "words":
        ds = load_words()
    elif source.lower().endswith(".npz"):
        ds = load_npz(source)
    elif source.lower().endswith(".csv"):
        ds = load_csv(source)
    else:
        raise SpecError(
            f"unknown data source {source!r}; expected one of: {', '.join(SOURCES)} "
            "(mnist:DIR is a directory holding the four MNIST IDX files)",
            source,
            1,
            1,
        )
    train, test = split(ds, TEST_FRACTION, seed)
    return train if part == "train" else test


def xor() -> Dataset:
    """The four examples of XOR with 0/1 float targets (a sigmoid + BCE problem)."""
    features = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    targets = np.array([[0], [1], [1], [0]], dtype=np.float64)
    return Dataset("xor", features, targets, None)


def seed000(seed: int = 0) -> Dataset:
    """seed000's random regression: x = randn(64, 1000), t = randn(64, 10)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((64, 1000))
    t = rng.standard_normal((64, 10))
    return Dataset("seed000", x, t, None)


def load_words(path: Path = WORDS_FILE, context: int = WORDS_CONTEXT) -> Dataset:
    """makemore's data set from a word list: each character after ``context`` characters.

    For ``emma`` with 3 characters of context: ``...`` → ``e``, ``..e`` → ``m``, …,
    ``mma`` → ``.``.  Features are the indices (into ``.a…z``) of the context,
    targets the index of the next character: 27 classes.
    """
    index = {ch: n for n, ch in enumerate(WORDS_ALPHABET)}
    features, targets = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        word = line.strip()
        if not word or word.startswith("#") or not set(word) <= set(WORDS_ALPHABET[1:]):
            continue
        window = [0] * context
        for ch in word + ".":
            features.append(window)
            targets.append(index[ch])
            window = [*window[1:], index[ch]]
    return Dataset(
        "words",
        np.asarray(features, dtype=np.float64),
        np.asarray(targets, dtype=np.int64),
        len(WORDS_ALPHABET),
    )


def load_sklearn(name: str) -> Dataset:
    """``iris`` or ``digits`` from scikit-learn, with integer labels."""
    try:
        from sklearn import datasets
    except ImportError:
        raise SpecError(
            f"the {name!r} data source needs scikit-learn; install it with "
            "`pip install scikit-learn`",
            name,
            1,
            1,
        ) from None
    bunch = datasets.load_iris() if name == "iris" else datasets.load_digits()
    labels = np.asarray(bunch.target, dtype=np.int64)
    features = np.asarray(bunch.data, dtype=np.float64)
    return Dataset(name, features, labels, len(bunch.target_names))


# ---------------------------------------------------------------------------
# MNIST (IDX files)


def load_mnist(directory: str, part: str) -> Dataset:
    """MNIST's train or t10k images and labels from the IDX files in ``directory``."""
    where = Path(directory).expanduser()
    if not where.is_dir():
        raise SpecError(
            f"MNIST directory {directory!r} not found; download the four MNIST files "
            "(train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
            "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) into it",
            directory,
            1,
            1,
        )
    images_name, labels_name = MNIST_FILES[part]
    images_path = find_idx_file(where, images_name)
    labels_path = find_idx_file(where, labels_name)
    images = read_idx(images_path, IMAGES_MAGIC, "image")
    labels = read_idx(labels_path, LABELS_MAGIC, "label")
    if images.shape[0] != labels.shape[0]:
        raise SpecError(
            f"{images_path.name} has {images.shape[0]} images but {labels_path.name} has "
            f"{labels.shape[0]} labels; they must match one to one",
            str(labels_path),
            1,
            1,
        )
    features = images.reshape(images.shape[0], -1).astype(np.float64) / 255.0
    targets = labels.astype(np.int64)
    outside = np.flatnonzero(targets >= MNIST_CLASSES)
    if outside.size:
        i = int(outside[0])
        raise SpecError(
            f"{labels_path.name}: label {targets[i]} at index {i} is not a digit 0..9",
            str(labels_path),
            1,
            1,
        )
    return Dataset(f"mnist:{directory}", features, targets, MNIST_CLASSES)


def idx_candidates(name: str) -> list[str]:
    """File names accepted for an MNIST file: ``name``, its dot variant, each optionally ``.gz``."""
    dotted = name.replace("-idx", ".idx", 1)
    return [name, name + ".gz", dotted, dotted + ".gz"]


def find_idx_file(directory: Path, name: str) -> Path:
    """The IDX file (possibly gzipped) of an MNIST part in ``directory``."""
    candidates = idx_candidates(name)
    for candidate in candidates:
        path = directory / candidate
        if path.is_file():
            return path
    raise SpecError(
        f"MNIST file {name} not found in {str(directory)!r}; looked for " + ", ".join(candidates),
        str(directory),
        1,
        1,
    )


class _Reader:
    """The bytes of a file, gunzipped on the fly when it is gzip data (whatever its name).

    ``read(n)`` never decompresses more than it returns (plus one byte to see
    whether more follows), so a file is checked header first and a
    decompression bomb costs no more memory than its header declares.
    """

    def __init__(self, path: Path):
        self.path = path
        try:
            self.raw = path.open("rb")
        except OSError as exc:
            raise SpecError(
                f"cannot read {path.name}: {exc.strerror or exc}", str(path), 1, 1
            ) from None
        self.gzip = self.raw.read(2) == b"\x1f\x8b"
        self.raw.seek(0)
        self.inflate = zlib.decompressobj(wbits=31) if self.gzip else None

    def read(self, n: int) -> bytes:
        try:
            if not self.gzip:
                return self.raw.read(n)
            assert self.inflate is not None  # made with self.gzip
            out, have = [], 0
            while have < n and not self.inflate.eof:
                chunk = self.inflate.unconsumed_tail or self.raw.read(1 << 16)
                if not chunk:
                    raise EOFError("the compressed stream ends early")
                part = self.inflate.decompress(chunk, n - have)
                out.append(part)
                have += len(part)
            return b"".join(out)
        except (OSError, EOFError, zlib.error) as exc:
            raise SpecError(
                f"{self.path.name} is not a valid gzip file ({exc}); download it again",
                str(self.path),
                1,
                1,
            ) from None

    def close(self) -> None:
        self.raw.close()


def read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it is gzip data (whatever its name)."""
    reader = _Reader(path)
    try:
        return reader.read(MAX_ARRAY_BYTES + 1)
    finally:
        reader.close()


def read_idx(path: Path, magic: int, kind: str) -> np.ndarray:
    """The array in an IDX file of unsigned bytes: its header is read and checked first,
    then exactly the bytes it declares (at most :data:`MAX_ARRAY_BYTES`)."""
    reader = _Reader(path)
    try:
        return _read_idx(reader, path, magic, kind)
    finally:
        reader.close()


def _read_idx(reader: _Reader, path: Path, magic: int, kind: str) -> np.ndarray:
    file = str(path)
    start = reader.read(4)
    if len(start) < 4:
        raise SpecError(
            f"{path.name} is truncated: {len(start)} bytes, too short for an IDX header",
            file,
            1,
            1,
        )
    (found,) = struct.unpack(">I", start)
    if found != magic:
        other = {IMAGES_MAGIC: "an image file", LABELS_MAGIC: "a label file"}.get(found)
        hint = f" (it looks like {other})" if other else " (not an MNIST IDX file)"
        raise SpecError(
            f"{path.name} has magic number 0x{found:08X}, expected 0x{magic:08X} "
            f"for an IDX {kind} file{hint}",
            file,
            1,
            1,
        )
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    rest = reader.read(4 * ndim)
    if len(rest) < 4 * ndim:
        raise SpecError(
            f"{path.name} is truncated: {4 + len(rest)} bytes, but its header alone needs {header}",
            file,
            1,
            1,
        )
    dims = struct.unpack(f">{ndim}I", rest)
    size = math.prod(dims)
    shape = " x ".join(str(d) for d in dims)
    if dims[0] == 0:
        raise SpecError(f"{path.name} holds no {kind}s (its header says {shape})", file, 1, 1)
    if size > MAX_ARRAY_BYTES:
        raise SpecError(
            f"{path.name} declares {shape} = {size:,} bytes of data, over the limit of "
            f"{MAX_ARRAY_BYTES:,}",
            file,
            1,
            1,
        )
    body = reader.read(size + 1)
    if len(body) != size:
        what = "truncated" if len(body) < size else "too long"
        have = f"{header + len(body)} bytes" if len(body) <= size else "more"
        raise SpecError(
            f"{path.name} is {what}: its header promises {shape} bytes of data "
            f"({header + size} bytes in all) but the file has {have}",
            file,
            1,
            1,
        )
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)


# ---------------------------------------------------------------------------
# .npz files


def load_npz(source: str) -> Dataset:
    """Arrays ``features`` and ``targets`` (or ``x``/``X`` and ``y``/``t``/``T``)."""
    path = existing_file(source)
    arrays = read_npz(source)
    features = pick_array(arrays, NPZ_FEATURE_KEYS, "features", source)
    targets = pick_array(arrays, NPZ_TARGET_KEYS, "targets", source)
    features = as_feature_matrix(features, source)
    targets, n_classes = npz_targets(targets, source)
    if targets.shape[0] != features.shape[0]:
        raise SpecError(
            f"{path.name} has {features.shape[0]} feature rows but {targets.shape[0]} targets",
            source,
            1,
            1,
        )
    return Dataset(path.stem, features, targets, n_classes)


def read_npz(source: str) -> dict[str, np.ndarray]:
    """Every array of a ``.npz`` archive, each checked header first.

    The zip directory and each member's ``.npy`` header are read before any
    data: an array larger than :data:`MAX_ARRAY_BYTES`, a size the member
    cannot hold, object arrays (pickles), a ``.npy`` file under a ``.npz``
    name and a truncated archive are refused; decompression stops at the size
    the member declares.
    """
    path = existing_file(source)
    try:
        with path.open("rb") as f:
            start = f.read(6)
        if start == b"\x93NUMPY":
            raise SpecError(
                f"{path.name} is a single .npy array, not a .npz archive; save the arrays with "
                "numpy.savez(path, features=..., targets=...)",
                source,
                1,
                1,
            )
        with zipfile.ZipFile(path) as archive:
            arrays = {}
            for info in archive.infolist():
                name = info.filename.removesuffix(".npy")
                if info.file_size > MAX_ARRAY_BYTES + 4096:
                    raise SpecError(
                        f"{path.name}: array {name!r} declares {info.file_size:,} bytes, over "
                        f"the limit of {MAX_ARRAY_BYTES:,}",
                        source,
                        1,
                        1,
                    )
                with archive.open(info) as member:
                    arrays[name] = _read_npy(member, info.file_size, name, path.name, source)
            return arrays
    except SpecError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise SpecError(f"cannot read {path.name} as a .npz archive: {exc}", source, 1, 1) from None


def _read_npy(member, declared: int, name: str, file: str, source: str) -> np.ndarray:
    """One ``.npy`` member: header, then exactly the bytes the header declares."""
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
    else:
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
    if dtype.hasobject:
        raise SpecError(f"{file}: array {name!r} holds Python objects, not numbers", source, 1, 1)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > min(MAX_ARRAY_BYTES, declared):
        raise SpecError(
            f"{file}: array {name!r} declares shape {shape} ({nbytes:,} bytes), more than "
            f"{'its member holds' if nbytes <= MAX_ARRAY_BYTES else 'the limit'}",
            source,
            1,
            1,
        )
    data = member.read(nbytes)
    if len(data) != nbytes:
        raise SpecError(f"{file}: array {name!r} is truncated", source, 1, 1)
    array = np.frombuffer(data, dtype=dtype)
    return array.reshape(shape, order="F" if fortran else "C")


def existing_file(source: str) -> Path:
    """``path`` if it names an existing file, else a one-line error."""
    path = Path(source).expanduser()
    if not path.is_file():
        raise SpecError(f"data file {source!r} not found", source, 1, 1)
    return path


def pick_array(arrays: dict[str, np.ndarray], keys: tuple[str, ...], what: str, source: str):
    """The array of an ``.npz`` archive stored under one of ``names``."""
    for key in keys:
        if key in arrays:
            return arrays[key]
    raise SpecError(
        f"no {what} array in {Path(source).name}: expected one named "
        f"{' or '.join(repr(k) for k in keys)}; it has {sorted(arrays) or 'no arrays'}",
        source,
        1,
        1,
    )


def as_feature_matrix(features: np.ndarray, source: str) -> np.ndarray:
    """Features as float64 rows: 1-D becomes one column, images are flattened."""
    if features.dtype.kind not in "biuf":
        raise SpecError(
            f"features must be numbers, got an array of dtype {features.dtype}", source, 1, 1
        )
    if features.ndim == 0 or features.shape[0] == 0:
        raise SpecError("the features array has no examples", source, 1, 1)
    matrix = features.reshape(features.shape[0], -1).astype(np.float64)
    bad = np.argwhere(~np.isfinite(matrix))
    if bad.size:
        row, col = (int(i) for i in bad[0])
        raise SpecError(
            f"features[{row}, {col}] is {matrix[row, col]}, not a finite number", source, 1, 1
        )
    return np.ascontiguousarray(matrix)


def npz_targets(targets: np.ndarray, source: str) -> tuple[np.ndarray, int | None]:
    """Integer targets of one column are labels; anything else numeric is values."""
    if targets.dtype.kind not in "biuf" or targets.ndim == 0:
        raise SpecError(
            f"targets must be a numeric array with one entry per example, got dtype "
            f"{targets.dtype} and shape {targets.shape}",
            source,
            1,
            1,
        )
    if targets.dtype.kind in "iu" and (targets.ndim == 1 or targets.shape[1:] == (1,)):
        labels = targets.reshape(-1).astype(np.int64)
        if labels.size and labels.min() < 0:
            row = int(np.argmin(labels))
            raise SpecError(
                f"targets[{row}] is {labels[row]}: integer targets are class labels "
                "and must be 0 or more (store float targets for values)",
                source,
                1,
                1,
            )
        if labels.size and labels.max() >= MAX_CLASSES:
            row = int(np.argmax(labels))
            raise SpecError(
                f"targets[{row}] is {labels[row]}: integer targets are class labels and must "
                f"be below {MAX_CLASSES} (store float targets for values)",
                source,
                1,
                1,
            )
        return labels, int(labels.max(initial=-1)) + 1
    values = targets.reshape(targets.shape[0], -1).astype(np.float64)
    bad = np.argwhere(~np.isfinite(values))
    if bad.size:
        row, col = (int(i) for i in bad[0])
        raise SpecError(
            f"targets[{row}, {col}] is {values[row, col]}, not a finite number", source, 1, 1
        )
    return values, None


# ---------------------------------------------------------------------------
# .csv files


def load_csv(source: str) -> Dataset:
    """A CSV file with a header row; see :func:`csv_target_column` for the target."""
    path = existing_file(source)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read {path.name}: {exc}", source, 1, 1) from None
    lines = [(number, line) for number, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not lines:
        raise SpecError(
            f"{path.name} is empty; expected a header row of column names and data rows",
            source,
            1,
            1,
        )
    header_line, header_text = lines[0]
    header = [name.strip() for name in next(csv.reader([header_text]))]
    if len(lines) == 1:
        raise SpecError(
            f"{path.name} has a header row but no data rows", source, header_line + 1, 1
        )
    if len(header) < 2:
        raise SpecError(
            f"{path.name} has {len(header)} column; expected feature columns and a target column",
            source,
            header_line,
            1,
        )
    rows = np.array(
        [parse_csv_row(line, number, len(header), source) for number, line in lines[1:]]
    )
    target = csv_target_column(header)
    features = np.delete(rows, target, axis=1)
    if header[target].lower() in CSV_LABEL_NAMES:
        check_csv_labels(rows[:, target], [n for n, _ in lines[1:]], header[target], source)
    targets, n_classes = csv_targets(rows[:, target])
    return Dataset(path.stem, np.ascontiguousarray(features), targets, n_classes)


def csv_target_column(header: list[str]) -> int:
    """The column named target, label, y or class (in that preference), else the last."""
    lowered = [name.lower() for name in header]
    for name in CSV_TARGET_NAMES:
        if name in lowered:
            return lowered.index(name)
    return len(header) - 1


def parse_csv_row(line: str, number: int, n_columns: int, source: str) -> list[float]:
    """One data row of plain numbers; errors point at the line and the cell's column."""
    cells = line.split(",")
    if len(cells) != n_columns:
        raise SpecError(
            f"line {number} has {len(cells)} cells but the header has {n_columns} columns",
            source,
            number,
            1,
        )
    values = []
    col = 1
    for index, cell in enumerate(cells):
        text = cell.strip().strip('"').strip()
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise SpecError(
                f"cell {index + 1} of line {number} is {text!r}, expected a finite number",
                source,
                number,
                col + len(cell) - len(cell.lstrip()),
            )
        values.append(value)
        col += len(cell) + 1
    return values


def check_csv_labels(column: np.ndarray, numbers: list[int], name: str, source: str) -> None:
    """SpecError at the first cell of a label column that is not a class 0..MAX_CLASSES-1."""
    bad = np.flatnonzero((column != np.round(column)) | (column < 0) | (column >= MAX_CLASSES))
    if bad.size:
        i = int(bad[0])
        raise SpecError(
            f"the {name!r} column holds class labels, whole numbers 0..{MAX_CLASSES - 1}; "
            f"line {numbers[i]} has {column[i]:g}",
            source,
            numbers[i],
            1,
        )


def csv_targets(column: np.ndarray) -> tuple[np.ndarray, int | None]:
    """Whole numbers 0..MAX_CLASSES-1 are class labels (max + 1 classes), others values."""
    whole = np.all(column == np.round(column))
    if whole and column.min() >= 0 and column.max() < MAX_CLASSES:
        labels = column.astype(np.int64)
        return labels, int(labels.max()) + 1
    return column.reshape(-1, 1).astype(np.float64), None


# ---------------------------------------------------------------------------
# preparing a dataset for a network


def split(ds: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """Shuffle with ``seed`` and cut: (the first 1 - fraction, the last fraction).

    The last part has ``round(n * fraction)`` examples, but when ``0 < fraction
    < 1`` and there are at least two examples neither part is left empty.
    """
    if not 0.0 <= fraction <= 1.0:  # also rejects NaN
        raise SpecError(
            f"a split fraction must be between 0 and 1, got {fraction}", "<options>", 1, 1
        )
    n = ds.n_examples
    n_last = int(math.floor(n * fraction + 0.5))
    if n >= 2 and 0.0 < fraction < 1.0:
        n_last = min(max(n_last, 1), n - 1)
    order = np.random.default_rng(seed).permutation(n)
    first, last = order[: n - n_last], order[n - n_last :]
    return subset(ds, first), subset(ds, last)


def subset(ds: Dataset, rows: np.ndarray) -> Dataset:
    """The examples of ``ds`` at ``index``, as a data set of its own."""
    return replace(ds, features=ds.features[rows], targets=ds.targets[rows])


def standardise(train: Dataset, *others: Dataset) -> tuple[Dataset, ...]:
    """z-score every dataset's features with ``train``'s mean and std (a std of 0 counts as 1)."""
    mean = train.features.mean(axis=0)
    std = train.features.std(axis=0)
    std[std == 0] = 1.0
    for ds in others:
        if ds.n_features != train.n_features:
            raise SpecError(
                f"{ds.name} has {ds.n_features} features but {train.name} has "
                f"{train.n_features}; they cannot be standardised together",
                ds.name,
                1,
                1,
            )
    return tuple(replace(ds, features=(ds.features - mean) / std) for ds in (train, *others))


def one_hot(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """``(n, n_classes)`` float64 rows with a 1 in each label's column."""
    labels = np.asarray(labels).reshape(-1)
    outside = (labels < 0) | (labels >= n_classes)
    if outside.any():
        row = int(np.argmax(outside))
        raise SpecError(
            f"label {labels[row]} (example {row}) is outside 0..{n_classes - 1}",
            "<labels>",
            1,
            1,
        )
    out = np.zeros((labels.size, n_classes), dtype=np.float64)
    out[np.arange(labels.size), labels.astype(np.int64)] = 1.0
    return out


def check_labels(ds: Dataset, n_classes: int, where: str) -> None:
    """SpecError at ``where`` unless every label of ``ds`` is in ``0..n_classes-1``."""
    if not ds.is_labelled:
        raise SpecError(
            f"{ds.name} has value targets of shape {ds.targets.shape}, "
            f"but class labels 0..{n_classes - 1} are needed",
            where,
            1,
            1,
        )
    outside = (ds.targets < 0) | (ds.targets >= n_classes)
    if outside.any():
        rows = np.flatnonzero(outside)
        bad = sorted({int(v) for v in ds.targets[rows]})
        shown = ", ".join(str(v) for v in bad[:5]) + (", ..." if len(bad) > 5 else "")
        raise SpecError(
            f"{ds.name} has labels outside 0..{n_classes - 1} ({n_classes} classes expected): "
            f"{shown} in {rows.size} example(s), first at example {int(rows[0])}",
            where,
            1,
            1,
        )
