"""Writers of small datasets on disk (IDX, CIFAR-10 pickles, image folders), shared by the tests.

Imported as ``from ondisk import ...`` (``tests/`` is on ``sys.path`` through its conftest).
"""

import gzip
import io
import pickle
import struct
from pathlib import Path

import numpy as np

# IDX element type code of each NumPy dtype the format knows.
IDX_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(np.int16): 0x0B,
             np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D, np.dtype(np.float64): 0x0E}
IDX_NAMES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
             "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of ``array``: magic 00 00 TT DD, big-endian uint32 sizes, big-endian data."""
    array = np.asarray(array)
    header = bytes([0, 0, IDX_CODES[array.dtype], array.ndim])
    sizes = np.array(array.shape, dtype=">u4").tobytes()
    return header + sizes + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path, array, gz=False) -> Path:
    path = Path(path)
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def small_idx_arrays(rng, n_train=12, n_test=5, size=(6, 5), classes=10):
    h, w = size
    return {"train_images": rng.integers(0, 256, (n_train, h, w), dtype=np.uint8),
            "train_labels": rng.integers(0, classes, n_train).astype(np.uint8),
            "test_images": rng.integers(0, 256, (n_test, h, w), dtype=np.uint8),
            "test_labels": rng.integers(0, classes, n_test).astype(np.uint8)}


def write_idx_dir(directory, arrays=None, gz=False, skip=(), rng=None) -> dict:
    """Write the four IDX files (minus roles in ``skip``) into ``directory``; returns the arrays."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = arrays or small_idx_arrays(rng or np.random.default_rng(0))
    for role, array in arrays.items():
        if role not in skip:
            write_idx(directory / (IDX_NAMES[role] + (".gz" if gz else "")), array, gz)
    return arrays


class _Py2Pickler(pickle._Pickler):
    """Writes bytes as Python 2 ``str`` (BINSTRING), as the cPickle that made the real CIFAR-10 files did."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str


def py2_pickle(obj) -> bytes:
    """A protocol-2 pickle shaped like one from Python 2 and NumPy 1 (numpy.core, byte-string data)."""
    buffer = io.BytesIO()
    _Py2Pickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue().replace(b"numpy._core.", b"numpy.core.")


def _dump(obj, protocol) -> bytes:
    return py2_pickle(obj) if protocol == "py2" else pickle.dumps(obj, protocol=protocol)


def write_cifar_dir(directory, n_per_batch=4, n_test=3, str_keys=False, protocol=4, seed=0) -> dict:
    """CIFAR-10 python batches in ``directory``; returns the concatenated data and labels written.

    ``protocol`` is a pickle protocol number, or "py2" for the layout of the official files.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    key = (lambda k: k) if str_keys else (lambda k: k.encode())
    written = {"train_data": [], "train_labels": []}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        n = n_test if name == "test_batch" else n_per_batch
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, n)]
        batch = {key("batch_label"): b"synthetic", key("data"): data, key("labels"): labels}
        (directory / name).write_bytes(_dump(batch, protocol))
        if name == "test_batch":
            written["test_data"], written["test_labels"] = data, labels
        else:
            written["train_data"].append(data)
            written["train_labels"] += labels
    names = [f"class{i}" for i in range(10)]
    meta = {key("label_names"): [n.encode() for n in names], key("num_vis"): 3072}
    (directory / "batches.meta").write_bytes(_dump(meta, protocol))
    written["train_data"] = np.concatenate(written["train_data"])
    written["label_names"] = names
    return written


def write_image(path, array: np.ndarray) -> Path:
    """A PNG/JPEG at ``path`` from uint8 (H, W) grayscale or (H, W, 3) RGB pixels."""
    from PIL import Image
    Image.fromarray(array).save(path)
    return Path(path)




def dataset_arrays(dataset) -> dict:
    """The four IDX arrays of a one-channel :class:`~convscope.data.Dataset` (labels as uint8)."""
    return {"train_images": dataset.train_images[:, 0], "train_labels": dataset.train_labels.astype(np.uint8),
            "test_images": dataset.test_images[:, 0], "test_labels": dataset.test_labels.astype(np.uint8)}
