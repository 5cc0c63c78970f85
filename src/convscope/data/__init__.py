"""Datasets as uint8 arrays (N, C, H, W): the shipped MNIST, IDX / CIFAR-10 / image-folder
directories, per-channel normalisation and minibatch indices.

``load_dataset("mnist")`` needs no download: the MNIST files ship with the package and are
checked against their SHA256 sums whenever they are loaded.
"""

from .batches import iterate_batches, num_batches
from .dataset import Dataset
from .embedded import EMBEDDED
from .errors import DataFormatError
from .idx import load_idx
from .loader import load_dataset
from .normalize import Normalizer, channel_stats

__all__ = ["Dataset", "DataFormatError", "load_dataset", "load_idx", "channel_stats", "Normalizer",
           "iterate_batches", "num_batches", "EMBEDDED"]
