"""How to build the im2col columns: measured, for LeNet-5's two convolutions at batch 128.

    python benchmarks/bench_im2col.py [--threads 2] [--repeat 20]

Compares, for the same (C*KH*KW, OH*OW*N) column matrix:
  strided-6d : one transposed copy of a 6-D ``as_strided`` view of an NCHW input (the common recipe);
  slices     : convscope's im2col, filling a preallocated buffer by one slice per kernel offset, from
               the channel-major (C, H, W, N) memory that convscope keeps activations in;
and prints milliseconds per call and the speed-up.
"""

from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--repeat", type=int, default=20)
    args = p.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import numpy as np
    from numpy.lib.stride_tricks import as_strided

    from convscope.layers._windows import as_chwn, chwn_empty, im2col_rows, pad_spatial

    def im2col(x, k, pad, out):
        """Conv2d's whole column matrix: the padded input in CHWN memory, every output row."""
        return im2col_rows(as_chwn(pad_spatial(x, pad, pad)), k, k, 1, 1, 0, out, out)

    def strided_6d(x, k, pad):
        xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        n, c, h, w = xp.shape
        oh, ow = h - k + 1, w - k + 1
        s = xp.strides
        view = as_strided(xp, (n, c, k, k, oh, ow), (s[0], s[1], s[2], s[3], s[2], s[3]))
        return view.transpose(1, 2, 3, 4, 5, 0).reshape(c * k * k, oh * ow * n)   # one big copy

    def best(fn):
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return 1e3 * min(times)

    rng = np.random.default_rng(0)
    for name, (c, size, k, pad) in {"conv1 1x28x28, 5x5 pad 2": (1, 28, 5, 2),
                                    "conv2 6x14x14, 5x5": (6, 14, 5, 0)}.items():
        nchw = rng.normal(size=(128, c, size, size)).astype(np.float32)
        chwn = chwn_empty(nchw.shape, np.float32)
        chwn[...] = nchw
        out = size + 2 * pad - k + 1
        a = strided_6d(nchw, k, pad)
        b = im2col(chwn, k, pad, out)
        if not np.array_equal(a, b):
            raise SystemExit("the two column matrices differ")
        t6 = best(lambda: strided_6d(nchw, k, pad))
        ts = best(lambda: im2col(chwn, k, pad, out))
        print(f"{name:26s} strided-6d {t6:7.2f} ms   slices {ts:7.2f} ms   speed-up {t6 / ts:4.1f}x")


if __name__ == "__main__":
    main()
