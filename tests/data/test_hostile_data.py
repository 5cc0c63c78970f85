"""Hostile files for every reader: each is refused with one DataFormatError line, cheaply and safely.

The cases come from a probe of the readers (issue 11): CIFAR pickles that allocate from a
declared shape, nest without end, multiply through shared memo entries or name code to run;
gzip bombs and absurd headers for IDX; image files that declare huge sizes, 16-bit, palette
and alpha images; one-class folders; MemoryError anywhere. Whatever could crash, hang or
flood memory runs in a child process under an address-space limit and a timeout
(:func:`fuzz.harness.run_reader_in_child`), so a regression fails a test, not the run.
"""

import gzip
import os
import pickle
import struct
import tracemalloc
import warnings
import zlib

import numpy as np
import pytest

from convscope.data import DataFormatError, Dataset, load_dataset, load_idx
from fuzz.harness import GIB, run_reader_in_child
from ondisk import py2_pickle

LOAD_DATASET = """
from convscope.data import load_dataset
def read(path):
    load_dataset(path)
"""


def _refused_in_child(paths, fact="", timeout=60.0, address_space=GIB):
    """Run load_dataset on each path in a bounded child; each must end in one DataFormatError line."""
    pytest.importorskip("resource")                                   # RLIMIT_AS: POSIX only
    for result in run_reader_in_child(LOAD_DATASET, [str(p) for p in paths], timeout, address_space):
        assert result["outcome"] == "DataFormatError", result
        assert "\n" not in result["message"] and fact in result["message"], result


# --- pickles, assembled opcode by opcode ----------------------------------------------------------

def _sbs(data: bytes) -> bytes:
    """SHORT_BINSTRING: a Python 2 str, which reads as bytes."""
    return b"U" + bytes([len(data)]) + data


def _int(n: int) -> bytes:
    return b"J" + struct.pack("<i", n)


def _put(i: int) -> bytes:
    return b"r" + struct.pack("<I", i)          # LONG_BINPUT


def _get(i: int) -> bytes:
    return b"j" + struct.pack("<I", i)          # LONG_BINGET


_MARKER = 0x7A7A7A7A
_RECONSTRUCT, _NDARRAY = b"cnumpy.core.multiarray\n_reconstruct\n", b"cnumpy\nndarray\n"
_DTYPE_U1 = (b"cnumpy\ndtype\n(" + _sbs(b"u1") + b"K\x00K\x01tR"
             + b"(K\x03" + _sbs(b"|") + b"NNN" + _int(-1) + _int(-1) + b"K\x00tb")
_HUGE_SHAPE = b"(" + _int(500_000) + _int(3072) + b"t"            # 1.5 GB of uint8


def _batch(data_ops: bytes = None, labels_ops: bytes = None) -> bytes:
    """A protocol-2 batch {b'data': zeros (1, 3072), b'labels': [0]} with one value swapped for raw opcodes."""
    marker = _int(_MARKER)
    blob = py2_pickle({b"data": _MARKER if data_ops else np.zeros((1, 3072), np.uint8),
                       b"labels": _MARKER if labels_ops else [0], b"batch_label": b"hostile"})
    if data_ops is None and labels_ops is None:
        return blob
    assert blob.count(marker) == 1
    return blob.replace(marker, data_ops or labels_ops)


def _laughs(levels: int, base: int = 1000) -> bytes:
    """t0 = (), t(k+1) = (tk, tk) through the memo: ~11 bytes per level, 2**levels leaves."""
    ops = b")" + _put(base)
    for k in range(levels):
        ops += _get(base + k) + b"\x86" + _put(base + k + 1)          # TUPLE2 of the top and its copy
    return ops


def _cifar_with(tmp_path, write_cifar_dir, name, blob, batch="data_batch_1"):
    directory = tmp_path / name
    write_cifar_dir(directory)
    (directory / batch).write_bytes(blob)
    return directory


HUGE_ARRAYS = {
    "reconstruct_shape": _RECONSTRUCT + b"(" + _NDARRAY + _HUGE_SHAPE + _sbs(b"B") + b"tR",
    "build_shape": (_RECONSTRUCT + b"(" + _NDARRAY + b"(K\x00t" + _sbs(b"b") + b"tR"
                    + b"(K\x01" + _HUGE_SHAPE + _DTYPE_U1 + b"\x89" + _sbs(b"x" * 16) + b"tb"),
    "ndarray_call": _NDARRAY + b"(" + _HUGE_SHAPE + _sbs(b"B") + b"tR",
    "frombuffer_shape": (b"cnumpy.core.numeric\n_frombuffer\n(" + _sbs(b"x" * 16) + _DTYPE_U1 + _HUGE_SHAPE
                         + b"X\x01\x00\x00\x00Ct" + b"R"),
}


def test_cifar_array_shape_larger_than_its_data_is_refused(tmp_path, write_cifar_dir):
    dirs = [_cifar_with(tmp_path, write_cifar_dir, name, _batch(data_ops=ops)) for name, ops in HUGE_ARRAYS.items()]
    assert all(len((d / "data_batch_1").read_bytes()) < 1500 for d in dirs)
    _refused_in_child(dirs, "data_batch_1")                   # under 1 GiB: 1.5 GB would be a MemoryError


def test_cifar_declared_shape_must_match_the_data_exactly(tmp_path, write_cifar_dir):
    ops = (_RECONSTRUCT + b"(" + _NDARRAY + b"(K\x00t" + _sbs(b"b") + b"tR"
           + b"(K\x01(K\x01M\x00\x0ct" + _DTYPE_U1 + b"\x89" + b"T" + struct.pack("<i", 3073) + b"x" * 3073 + b"tb")
    directory = _cifar_with(tmp_path, write_cifar_dir, "c", _batch(data_ops=ops))
    with pytest.raises(DataFormatError, match=r"data_batch_1: an array declares shape \(1, 3072\) .* 3073 bytes"):
        load_dataset(directory)


@pytest.mark.parametrize("ops", [b"(" * 100_000 + b"l" * 100_000,           # MARK ... LIST
                                 b"]" * 100_000 + b"a" * 99_999,            # EMPTY_LIST ... APPEND
                                 b"(" * 100_000 + b"t" * 100_000],          # MARK ... TUPLE
                         ids=["mark_list", "append", "tuple"])
def test_cifar_deep_nesting_is_refused(tmp_path, write_cifar_dir, ops):
    dirs = [_cifar_with(tmp_path, write_cifar_dir, "labels", _batch(labels_ops=ops)),
            _cifar_with(tmp_path, write_cifar_dir, "data", _batch(data_ops=ops))]
    _refused_in_child(dirs, "nests deeper than 64 levels")


def test_cifar_shared_tuples_billion_laughs_is_refused_quickly(tmp_path, write_cifar_dir):
    as_labels = _batch(labels_ops=_laughs(60))                            # 2**60 leaves to walk
    as_key = b"\x80\x02}" + _laughs(60) + _sbs(b"x") + b"s."              # a dict key: hashing it walks them
    assert len(as_key) < 700
    dirs = [_cifar_with(tmp_path, write_cifar_dir, "labels", as_labels),
            _cifar_with(tmp_path, write_cifar_dir, "key", as_key)]
    _refused_in_child(dirs, "refusing to load", timeout=30)


class _Evil:
    """Unpickling this runs os.system: what a malicious "CIFAR batch" would do."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return os.system, (f"touch {self.target}",)


def test_cifar_code_is_never_run(tmp_path, write_cifar_dir):
    target = tmp_path / "pwned"
    blobs = {"reduce_p4": pickle.dumps({b"data": _Evil(target), b"labels": []}, protocol=4),
             "reduce_p2": pickle.dumps({b"data": _Evil(target), b"labels": []}, protocol=2),
             "global_os": b"\x80\x02}(" + _sbs(b"data") + b"cos\nsystem\n(X\x05\x00\x00\x00touch" + b"tRu.",
             "builtins_eval": b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93\x8c\x011\x85R."}
    for name, blob in blobs.items():
        directory = _cifar_with(tmp_path, write_cifar_dir, name, blob, batch="data_batch_2")
        with pytest.raises(DataFormatError, match=r"refusing to load .*data_batch_2: its pickle asks for "
                                                  r"(posix|os|builtins)\.(system|eval)"):
            load_dataset(directory)
    assert not target.exists()


@pytest.mark.parametrize("codec", ["no-such-codec", "rot13", "zlib_codec"])
def test_cifar_unknown_codec_is_refused(tmp_path, write_cifar_dir, codec):
    ops = b"c_codecs\nencode\n(X\x03\x00\x00\x00abc" + b"X" + struct.pack("<I", len(codec)) + codec.encode() + b"tR"
    directory = _cifar_with(tmp_path, write_cifar_dir, "c", _batch(labels_ops=ops))
    with pytest.raises(DataFormatError, match=f"data_batch_1: its pickle asks for _codecs.encode with codec "
                                              f"'{codec}'"):
        load_dataset(directory)


@pytest.mark.parametrize("labels, fact", [
    (b"(K\x0ae", "label 10; labels must lie in 0..9"),                # [10]
    (b"(\x88e", "'labels' must be a list of integers"),              # [True]
    (b"(X\x01\x00\x00\x001e", "'labels' must be a list of integers"),  # ['1']
])
def test_cifar_labels_must_be_ints_in_range(tmp_path, write_cifar_dir, labels, fact):
    directory = _cifar_with(tmp_path, write_cifar_dir, "c", _batch(labels_ops=b"]" + labels))
    with pytest.raises(DataFormatError, match=f"data_batch_1.*{fact}"):
        load_dataset(directory)


def test_cifar_bytes_after_the_pickle_are_refused(tmp_path, write_cifar_dir):
    directory = _cifar_with(tmp_path, write_cifar_dir, "c", _batch() + b"junk")
    with pytest.raises(DataFormatError, match="corrupt CIFAR-10 file .*data_batch_1: 4 bytes follow"):
        load_dataset(directory)


@pytest.mark.parametrize("protocol", ["py2", 2, 4, 5])
@pytest.mark.parametrize("str_keys", [False, True])
def test_cifar_batches_shaped_like_the_official_ones_load(tmp_path, protocol, str_keys):
    """What the CIFAR-10 authors' cPickle wrote: batch_label, labels, data, filenames; meta with num_cases."""
    rng = np.random.default_rng(3)
    key = (lambda k: k) if str_keys else (lambda k: k.encode())
    dump = py2_pickle if protocol == "py2" else (lambda obj: pickle.dumps(obj, protocol=protocol))
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    for k, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        labels = [int(v) for v in rng.integers(0, 10, 300)]             # > 256 memo entries: LONG_BINPUT
        batch = {key("batch_label"): f"training batch {k + 1} of 5".encode(), key("labels"): labels,
                 key("data"): rng.integers(0, 256, (300, 3072), dtype=np.uint8),
                 key("filenames"): [f"img_{k}_{i}.png".encode() for i in range(300)]}
        (tmp_path / name).write_bytes(dump(batch))
    meta = {key("num_cases_per_batch"): 10000, key("label_names"): [n.encode() for n in names],
            key("num_vis"): 3072}
    (tmp_path / "batches.meta").write_bytes(dump(meta))
    ds = load_dataset(tmp_path)
    assert ds.class_names == names and ds.train_images.shape == (1500, 3, 32, 32)
    assert ds.test_images.flags.writeable and len(ds.test_labels) == 300


def test_cifar_memory_error_becomes_a_data_format_error(tmp_path, write_cifar_dir, monkeypatch):
    write_cifar_dir(tmp_path)

    def out_of_memory(*args, **kwargs):
        raise MemoryError
    monkeypatch.setattr(np, "frombuffer", out_of_memory)
    with pytest.raises(DataFormatError, match="too large to load in memory"):
        load_dataset(tmp_path)


# --- IDX ----------------------------------------------------------------------------------------

def _idx_header(shape, code=0x08) -> bytes:
    return bytes([0, 0, code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape)


def _peak_bytes(work) -> tuple[int, str]:
    """The peak memory tracemalloc sees while ``work()`` runs, and the DataFormatError it must raise."""
    tracemalloc.start()
    try:
        with pytest.raises(DataFormatError) as err:
            work()
        return tracemalloc.get_traced_memory()[1], str(err.value)
    finally:
        tracemalloc.stop()


def test_idx_gzip_bomb_is_refused_after_the_declared_size(tmp_path):
    packer, zeros = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS), bytes(2 ** 20)
    parts = [packer.compress(_idx_header((10, 10)))]
    parts += [packer.compress(zeros) for _ in range(100)]              # 100 MB of zeros, ~100 KB packed
    path = tmp_path / "bomb.gz"
    path.write_bytes(b"".join(parts) + packer.flush())
    assert path.stat().st_size < 200_000
    peak, message = _peak_bytes(lambda: load_idx(path))
    assert peak < 4 * 2 ** 20, peak
    assert "bomb.gz inflates to more than the 112 bytes its header (10, 10) announces" in message


def test_idx_raw_file_longer_than_declared_is_refused_before_reading(tmp_path):
    path = tmp_path / "long"
    with open(path, "wb") as f:
        f.write(_idx_header((10, 10)) + bytes(100))
        f.truncate(64 * 2 ** 20)                                        # sparse: 64 MB on paper
    peak, message = _peak_bytes(lambda: load_idx(path))
    assert peak < 4 * 2 ** 20, peak
    assert "bytes after the 100 bytes of data its header (10, 10) announces" in message


@pytest.mark.parametrize("gz", [False, True])
def test_idx_absurd_declared_size_is_refused(tmp_path, gz):
    data = _idx_header((65535, 65535, 65535)) + bytes(64)
    path = tmp_path / "absurd"
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(DataFormatError, match=r"declares shape \(65535, 65535, 65535\) of uint8, .* more than "
                                              r"the 2147483648 bytes"):
        load_idx(path)


@pytest.mark.parametrize("damage", ["cut_header", "cut_middle", "cut_trailer", "flip_crc", "garbage_after",
                                    "not_deflate"])
def test_idx_truncated_or_corrupt_gzip(tmp_path, encode_idx, damage):
    packed = bytearray(gzip.compress(encode_idx(np.arange(3000, dtype=np.int32))))
    damaged = {"cut_header": packed[:6], "cut_middle": packed[:len(packed) // 2], "cut_trailer": packed[:-3],
               "flip_crc": packed[:-8] + bytes([packed[-8] ^ 1]) + packed[-7:],
               "garbage_after": packed + b"garbage", "not_deflate": packed[:10] + b"\xff" * 50}[damage]
    (tmp_path / "f.gz").write_bytes(bytes(damaged))
    with pytest.raises(DataFormatError, match=r"corrupt gzip file .*f\.gz: .*; download it again$"):
        load_idx(tmp_path / "f.gz")


def test_idx_concatenated_gzip_members_are_one_stream(tmp_path, encode_idx):
    data = encode_idx(np.arange(5000, dtype=np.int16))
    (tmp_path / "f.gz").write_bytes(gzip.compress(data[:777]) + gzip.compress(data[777:]))
    np.testing.assert_array_equal(load_idx(tmp_path / "f.gz"), np.arange(5000))


def test_idx_huge_label_value_is_refused_quickly(tmp_path, write_idx_dir):
    arrays = {"train_images": np.zeros((2, 4, 4), np.uint8), "train_labels": np.array([0, 2 ** 31 - 1], np.int32),
              "test_images": np.zeros((1, 4, 4), np.uint8), "test_labels": np.array([1], np.int32)}
    write_idx_dir(tmp_path / "d", arrays)                             # naming 2**31 classes would take forever
    _refused_in_child([tmp_path / "d"], "labels of d reach 2147483647", timeout=30)


def test_idx_memory_error_becomes_a_data_format_error(tmp_path, write_idx, monkeypatch):
    path = write_idx(tmp_path / "f", np.zeros((3, 4), np.uint8))

    def out_of_memory(*args, **kwargs):
        raise MemoryError
    monkeypatch.setattr(np, "frombuffer", out_of_memory)
    with pytest.raises(DataFormatError, match=r"IDX file .*f is too large to load in memory"):
        load_idx(path)


# --- images -------------------------------------------------------------------------------------

def _png(width: int, height: int, rows: bytes = b"", color_type: int = 0, bit_depth: int = 8) -> bytes:
    """A PNG whose IHDR declares ``width`` x ``height``, with ``rows`` (maybe far fewer) as its IDAT."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


@pytest.fixture
def read_image():
    pytest.importorskip("PIL")
    from convscope.data import read_image
    return read_image


@pytest.mark.parametrize("side, fact", [(30000, "decompression bomb"), (10000, "decompression bomb"),
                                        (9000, "declares 9000x9000 pixels, more than the 67108864")])
def test_png_declaring_a_huge_size_is_refused_before_decoding(tmp_path, read_image, side, fact):
    path = tmp_path / "huge.png"
    path.write_bytes(_png(side, side, bytes(side + 1)))               # one row of data: 100 bytes packed
    filters = list(warnings.filters)
    with pytest.raises(DataFormatError, match=f"'.*huge.png': .*{fact}"):
        read_image(path)
    assert warnings.filters == filters                                # the guard was local to the call


def test_png_chunk_longer_than_the_file_is_refused_before_pillow_reads_it(tmp_path, read_image):
    data = bytearray(_png(5, 6, bytes(6 * 6)))
    data[33:37] = struct.pack(">I", 2_700_000_000)                     # the IDAT's length field
    (tmp_path / "long.png").write_bytes(bytes(data))
    peak, message = _peak_bytes(lambda: read_image(tmp_path / "long.png"))
    assert peak < 4 * 2 ** 20, peak                                   # Pillow would ask for 2.7 GB
    assert "long.png': not a readable PNG/JPEG image (its IDAT chunk declares 2700000000 bytes" in message


def test_max_pixels_bounds_the_image(tmp_path, read_image, write_image):
    path = write_image(tmp_path / "a.png", np.zeros((20, 30), np.uint8))
    assert read_image(path, max_pixels=600).shape == (1, 20, 30)
    with pytest.raises(DataFormatError, match="declares 30x20 pixels, more than the 599"):
        read_image(path, max_pixels=599)


def test_folder_with_a_huge_png_is_refused(tmp_path, write_image):
    pytest.importorskip("PIL")
    for cls in ("a", "b"):
        (tmp_path / "d" / cls).mkdir(parents=True)
        for k in range(6):
            write_image(tmp_path / "d" / cls / f"img{k}.png", np.zeros((4, 4), np.uint8))
    (tmp_path / "d" / "a" / "img0.png").write_bytes(_png(30000, 30000, bytes(30001)))
    with pytest.raises(DataFormatError, match="img0.png': refusing a decompression bomb"):
        load_dataset(tmp_path / "d")


def _save(tmp_path, name, image):
    path = tmp_path / name
    image.save(path)
    return path


def test_16bit_png_is_scaled_not_clipped(tmp_path, read_image):
    from PIL import Image
    wide = np.array([[65535, 32896, 0, 257, 128, 129]], dtype=np.uint16)
    path = _save(tmp_path, "wide.png", Image.fromarray(wide))
    assert Image.open(path).mode.startswith("I")
    expected = [255, 128, 0, 1, 0, 1]                                  # round(v * 255 / 65535)
    assert read_image(path).tolist() == [[expected]]
    assert read_image(path, channels=3).tolist() == [[expected]] * 3


@pytest.mark.parametrize("mode", ["I", "F"])
def test_32bit_gray_is_read_as_16bit_samples(mode):
    pytest.importorskip("PIL")
    from PIL import Image
    from convscope.data.images import _decode
    values = np.array([[70000, 65535, 32896, -5, 0]], dtype=np.int32 if mode == "I" else np.float32)
    image = Image.fromarray(values)
    assert image.mode == mode and _decode(image).tolist() == [[255, 255, 128, 0, 0]]


def _palette_image():
    from PIL import Image
    image = Image.new("P", (3, 1))
    image.putpalette([200, 100, 50, 10, 20, 30, 255, 255, 255] + [0] * (256 * 3 - 9))
    image.putdata([0, 1, 2])
    return image


def test_palette_png_reads_as_its_colours(tmp_path, read_image):
    path = _save(tmp_path, "p.png", _palette_image())
    assert read_image(path).transpose(1, 2, 0).tolist() == [[[200, 100, 50], [10, 20, 30], [255, 255, 255]]]
    luma = [round(0.299 * r + 0.587 * g + 0.114 * b) for r, g, b in [(200, 100, 50), (10, 20, 30), (255,) * 3]]
    assert read_image(path, channels=1).tolist() == [[luma]]


def test_alpha_is_composited_onto_black(tmp_path, read_image):
    from PIL import Image
    rgba = np.array([[[200, 100, 50, 255], [200, 100, 50, 128], [200, 100, 50, 0]]], np.uint8)
    la = np.array([[[200, 255], [200, 128], [200, 0]]], np.uint8)
    path_rgba = _save(tmp_path, "rgba.png", Image.fromarray(rgba))
    path_la = _save(tmp_path, "la.png", Image.fromarray(la))
    transparent = _palette_image()
    transparent.info["transparency"] = 1
    path_p = tmp_path / "pt.png"
    transparent.save(path_p, transparency=1)
    assert read_image(path_rgba).transpose(1, 2, 0).tolist() == [[[200, 100, 50], [100, 50, 25], [0, 0, 0]]]
    assert read_image(path_la).tolist() == [[[200, 100, 0]]]             # round(200 * 128 / 255) = 100
    assert read_image(path_p).transpose(1, 2, 0).tolist() == [[[200, 100, 50], [0, 0, 0], [255, 255, 255]]]


def test_only_png_and_jpeg_decoders_are_tried(tmp_path, read_image):
    from PIL import Image
    path = tmp_path / "really-a.gif.png"
    Image.new("L", (4, 4)).save(path, format="GIF")
    with pytest.raises(DataFormatError, match="really-a.gif.png': not a readable PNG/JPEG image"):
        read_image(path)


@pytest.mark.parametrize("cut", [8, 30, -200])
def test_truncated_png_is_one_line(tmp_path, read_image, write_image, cut):
    path = write_image(tmp_path / "t.png", np.random.default_rng(0).integers(0, 256, (40, 40), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:cut])
    with pytest.raises(DataFormatError, match=r"^'.*t.png': not a readable PNG/JPEG image \([^\n]*\)$"):
        read_image(path)


def test_image_memory_error_becomes_a_data_format_error(tmp_path, write_image, monkeypatch):
    pytest.importorskip("PIL")
    from PIL import Image
    for cls in ("a", "b"):
        (tmp_path / "d" / cls).mkdir(parents=True)
        for k in range(6):
            write_image(tmp_path / "d" / cls / f"img{k}.png", np.zeros((4, 4), np.uint8))

    def out_of_memory(*args, **kwargs):
        raise MemoryError
    monkeypatch.setattr(Image.Image, "convert", out_of_memory)
    with pytest.raises(DataFormatError, match="img0.png': the image is too large to load in memory"):
        load_dataset(tmp_path / "d")


def test_folder_of_16bit_alpha_and_palette_images(tmp_path, write_image):
    pytest.importorskip("PIL")
    from PIL import Image
    (tmp_path / "d" / "wide").mkdir(parents=True)
    (tmp_path / "d" / "glass").mkdir()
    for k in range(6):
        Image.fromarray(np.full((1, 3), 32896, np.uint16)).save(tmp_path / "d" / "wide" / f"{k}.png")
        Image.fromarray(np.full((1, 3, 2), [200, 128], np.uint8)).save(tmp_path / "d" / "glass" / f"{k}.png")
    ds = load_dataset(tmp_path / "d")
    assert ds.input_shape == (1, 1, 3)                                  # all grayscale: one channel
    assert set(ds.train_images[ds.train_labels == 1].ravel().tolist()) == {128}      # 16-bit, scaled
    assert set(ds.train_images[ds.train_labels == 0].ravel().tolist()) == {100}      # alpha over black
    _save(tmp_path / "d" / "glass", "5.png", _palette_image())
    assert load_dataset(tmp_path / "d").input_shape == (3, 1, 3)


# --- folders and datasets -------------------------------------------------------------------------

def test_one_class_folder_is_refused(tmp_path, write_image):
    for k in range(12):
        (tmp_path / "d" / "only").mkdir(parents=True, exist_ok=True)
        write_image(tmp_path / "d" / "only" / f"{k}.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(DataFormatError, match="has one class folder \\(only\\); a classifier needs at least two"):
        load_dataset(tmp_path / "d")


def test_one_class_dataset_is_refused():
    images = np.zeros((2, 1, 4, 4), np.uint8)
    with pytest.raises(DataFormatError, match="dataset 'solo' has one class \\('x'\\); a classifier needs at least"):
        Dataset("solo", images, np.zeros(2, np.int64), images, np.zeros(2, np.int64), ["x"])


def test_holdout_test_split_interleaves_the_classes(tmp_path, write_image):
    for cls in ("a", "b", "c"):
        (tmp_path / "d" / cls).mkdir(parents=True)
        for k in range(12 if cls != "c" else 6):
            write_image(tmp_path / "d" / cls / f"{k:02d}.png", np.full((2, 2), k, np.uint8))
    ds = load_dataset(tmp_path / "d")
    assert ds.test_labels.tolist() == [0, 1, 2, 0, 1]                # round robin; c has one test image
    assert ds.test_images[:, 0, 0, 0].tolist() == [5, 5, 5, 11, 11]  # the 6th and 12th file of each class
    assert ds.train_labels.tolist() == [0] * 10 + [1] * 10 + [2] * 5
