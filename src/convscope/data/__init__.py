"""Datasets as uint8 arrays (N, C, H, W): the shipped MNIST, IDX / CIFAR-10 / image-folder
directories, one image file (``read_image``), per-channel normalisation and minibatch indices.

Every reader is built for hostile files: sizes are checked against what the file itself
carries before memory is spent, pickles are walked without running code, and anything
wrong is one :class:`DataFormatError` line naming the file.

``load_dataset("mnist")`` needs no download: the MNIST files ship with the package and are
checked against their SHA256 sums whenever they are loaded.
"""

from .batches import iterate_batches, num_batches
from .dataset import Dataset
from .embedded import EMBEDDED
from .errors import DataFormatError
from .idx import load_idx
from .images import read_image
from .loader import load_dataset
from .normalize import Normalizer, channel_stats

__all__ = ["Dataset", "DataFormatError", "load_dataset", "load_idx", "read_image", "channel_stats", "Normalizer",
           "iterate_batches", "num_batches", "EMBEDDED"]
