"""convscope: a CNN engine written from first principles in NumPy, and tools to look inside it."""

from . import layers

__version__ = "0.1.0"
__all__ = ["layers", "__version__"]
