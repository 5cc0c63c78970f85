"""Every zoo model against its identical PyTorch twin: training step and inference, same threads.

    python benchmarks/bench_zoo.py [--threads 2] [--rounds 3] [--size small|full|both]
                                   [--models lenet5,resnet20,...] [--profile MODEL]

Small variants: batch 128 of 1x28x28 (MNIST-sized, ``--small-batch``); full variants: batch 8
of 3x224x224 (``--full-batch``). For each model the torch twin (benchmarks/torch_twin.py) has
the same layers and the same weights (checked: logits agree); both get the same batch, the same
loss (softmax cross-entropy, plus GoogLeNet's auxiliary heads in training) and the same
optimizer (SGD at lr 1e-4 so that random labels never blow the weights up, momentum 0.9, Nesterov,
weight decay 5e-4). A "train" step is forward + loss +
backward + update with input gradients off (as the trainer runs); "infer" is an evaluation-mode
forward. Rounds alternate the two frameworks, each round times ``--steps`` steps, and the best
round of each is reported with the ratio convscope / PyTorch (lower is better; issue 15's
target is <= 1.5 for every model and size).

``--profile MODEL`` prints, instead, where one convscope training step of MODEL spends its time
per layer type (forward and backward), the figures the optimisations started from.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

SMALL = ("lenet5", "mlp", "alexnet", "alexnet_original", "vgg11", "vgg11_bn", "vgg16", "resnet18",
         "resnet20", "resnet56", "resnet50", "googlenet")
FULL = ("alexnet", "vgg11", "vgg16", "resnet18", "resnet50", "googlenet")


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (the best is reported)")
    p.add_argument("--steps", type=int, default=0, help="steps per round (default: about 2 s of work)")
    p.add_argument("--size", choices=("small", "full", "both"), default="both")
    p.add_argument("--models", default=None, help="comma-separated zoo names (default: a list per size)")
    p.add_argument("--small-batch", type=int, default=128)
    p.add_argument("--full-batch", type=int, default=8)
    p.add_argument("--mode", choices=("train", "infer", "both"), default="both")
    p.add_argument("--profile", default=None, metavar="MODEL", help="per-layer-type profile of one model")
    return p.parse_args()


def set_threads(threads: int) -> None:
    # BLAS reads its thread count at import time, so set it before NumPy loads.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)


def build(name: str, size: str, seed: int = 0):
    import numpy as np

    from convscope.models import build_model
    shape = (1, 28, 28) if size == "small" else (3, 224, 224)
    classes = 10 if size == "small" else 1000
    model = build_model(name, num_classes=classes, in_channels=shape[0], input_size=shape[1:],
                        rng=np.random.default_rng(seed))
    return model, shape, classes


class Side:
    """One framework's training step and inference on one model and batch."""

    def __init__(self, model, x, y, framework: str):
        import numpy as np
        self.framework, self.model = framework, model
        if framework == "convscope":
            from convscope.layers import AuxiliaryClassifier, SoftmaxCrossEntropy
            from convscope.optim import SGD
            self.x, self.y = x, y
            self.loss = SoftmaxCrossEntropy()
            self.aux = [(m, SoftmaxCrossEntropy()) for m in _modules(model) if isinstance(m, AuxiliaryClassifier)]
            self.opt = SGD(model, lr=1e-4, momentum=0.9, nesterov=True, weight_decay=5e-4)
            model.set_input_grad(False)
        else:
            import torch
            from torch_twin import aux_heads
            self.x, self.y = torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y.astype(np.int64))
            self.aux = aux_heads(model)
            self.opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9, nesterov=True, weight_decay=5e-4)

    def train(self) -> None:
        m = self.model
        m.train()
        if self.framework == "convscope":
            logits = m.forward(self.x)
            self.loss.forward(logits, self.y)
            for aux, loss in self.aux:
                loss.forward(aux.logits, self.y)
                aux.logits_grad = aux.weight * loss.backward()
            m.backward(self.loss.backward())
            self.opt.step()
            return
        import torch
        self.opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(m(self.x), self.y)
        for aux in self.aux:
            loss = loss + aux.weight * torch.nn.functional.cross_entropy(aux.logits, self.y)
        loss.backward()
        self.opt.step()

    def infer(self) -> None:
        m = self.model
        m.eval()
        if self.framework == "convscope":
            m.forward(self.x)
            return
        import torch
        with torch.no_grad():
            m(self.x)


def _modules(model):
    yield model
    for _, child in model.children():
        yield from _modules(child)


def timed(fn, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - start) / steps


def compare(name: str, size: str, args) -> list[str]:
    import numpy as np
    from torch_twin import check, twin

    model, shape, classes = build(name, size)
    net = twin(model)
    batch = args.small_batch if size == "small" else args.full_batch
    rng = np.random.default_rng(1)
    x = rng.standard_normal((batch,) + shape).astype(np.float32)
    y = rng.integers(0, classes, batch)
    err = check(model, net, x[:2])
    rows = []
    modes = ("train", "infer") if args.mode == "both" else (args.mode,)
    for mode in modes:
        sides = [Side(model, x, y, "convscope"), Side(net, x, y, "torch")]
        fns = [getattr(s, mode) for s in sides]
        first = [timed(f, 1) for f in fns]                 # warm-up, and a first measure of the cost
        steps = args.steps or max(1, min(20, int(2.0 / max(first))))
        best = [float("inf"), float("inf")]
        for _ in range(args.rounds):
            for k, f in enumerate(fns):
                best[k] = min(best[k], timed(f, steps))
        ratio = best[0] / best[1]
        flag = "" if ratio <= 1.5 else "  > 1.5"
        rows.append(f"{name:17s} {size:5s} {batch:4d}  {mode:5s} {best[0] * 1e3:9.1f} {best[1] * 1e3:9.1f} "
                    f"{ratio:6.2f}{flag}   (logits agree to {err:.0e})")
        print(rows[-1], flush=True)
    return rows


def profile(name: str, args) -> None:
    """Per-layer-type forward/backward time of one convscope training step."""
    import numpy as np

    from convscope.layers import SoftmaxCrossEntropy
    size = "small" if args.size != "full" else "full"
    model, shape, classes = build(name, size)
    batch = args.small_batch if size == "small" else args.full_batch
    rng = np.random.default_rng(1)
    x = rng.standard_normal((batch,) + shape).astype(np.float32)
    y = rng.integers(0, classes, batch)
    totals: dict[str, float] = {}
    leaves = [m for m in _modules(model) if not m.children()]
    originals = {}
    for m in leaves:
        for what in ("forward", "backward"):
            fn = getattr(m, what)
            key = f"{type(m).__name__}.{what}"

            def wrapped(*a, _fn=fn, _key=key, **k):
                t = time.perf_counter()
                out = _fn(*a, **k)
                totals[_key] = totals.get(_key, 0.0) + time.perf_counter() - t
                return out
            originals[(id(m), what)] = fn
            setattr(m, what, wrapped)
    loss = SoftmaxCrossEntropy()
    model.set_input_grad(False)
    model.train()
    steps = max(1, args.steps or 3)
    for k in range(steps + 1):
        if k == 1:
            totals.clear()
            start = time.perf_counter()
        loss.forward(model.forward(x), y)
        model.backward(loss.backward())
    wall = (time.perf_counter() - start) / steps
    print(f"{name} ({size}, batch {batch}): {wall * 1e3:.1f} ms per training step (forward + backward)")
    for key, t in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"  {key:28s} {t / steps * 1e3:8.1f} ms  {100 * t / steps / wall:5.1f} %")


def main() -> None:
    args = parse()
    set_threads(args.threads)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import numpy as np
    if args.profile:
        profile(args.profile, args)
        return
    try:
        import torch
    except ImportError:
        sys.exit("bench_zoo needs PyTorch as the reference: pip install torch==2.13.0")
    torch.set_num_threads(args.threads)
    print(f"convscope / PyTorch {torch.__version__}, numpy {np.__version__}, {args.threads} threads, "
          f"best of {args.rounds} interleaved rounds (times per step in ms)")
    print(f"{'model':17s} {'size':5s} {'batch':>4s}  {'mode':5s} {'convscope':>9s} {'torch':>9s} {'ratio':>6s}")
    sizes = ("small", "full") if args.size == "both" else (args.size,)
    for size in sizes:
        names = args.models.split(",") if args.models else (SMALL if size == "small" else FULL)
        for name in names:
            compare(name, size, args)


if __name__ == "__main__":
    main()
