"""One MNIST epoch of LeNet-5 at batch 128: convscope vs PyTorch, same process, same threads.

    python benchmarks/bench_lenet_epoch.py [--threads 2] [--repeat 1]

Prints images per second for convscope and, when PyTorch is importable, for the identical
architecture, initial weights, optimizer (Nesterov SGD, momentum 0.9, weight decay 5e-4) and
batch order in PyTorch, then the ratio convscope time / PyTorch time (lower is better; the
issue's target is <= 2.5). Both sides include turning uint8 batches into normalised floats.
"""

from __future__ import annotations

import argparse
import os
import time


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--repeat", type=int, default=1, help="epochs per framework (best is reported)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--limit", type=int, default=None, help="train images (default: all 60,000)")
    return p.parse_args()


def main() -> None:
    args = parse()
    # BLAS reads its thread count at import time, so set it before NumPy loads.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import numpy as np

    from convscope.data import load_dataset
    from convscope.models import build_model
    from convscope.training import TrainConfig, Trainer

    ds = load_dataset("mnist")
    if args.limit:
        ds = ds.limit(args.limit)
    n = len(ds.train_images)
    cfg = TrainConfig(epochs=1, batch_size=args.batch_size, lr=0.05, warmup_epochs=0, schedule="constant")
    model = build_model("lenet5", rng=np.random.default_rng(0))
    init = {k: v.copy() for k, v in model.state_dict().items()}
    trainer = Trainer(model, ds, cfg, progress=False)
    model.set_input_grad(False)
    cs = min(trainer.train_epoch(0)["seconds"] for _ in range(args.repeat))
    print(f"convscope  : {cs:6.2f} s/epoch  {n / cs:8,.0f} images/s  "
          f"(LeNet-5, batch {args.batch_size}, {args.threads} threads, numpy {np.__version__})")
    try:
        import torch
    except ImportError:
        print("PyTorch not installed: no ratio (pip install torch==2.13.0 to compare)")
        return
    torch.set_num_threads(args.threads)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 6, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(6, 16, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
        torch.nn.Linear(400, 120), torch.nn.ReLU(), torch.nn.Linear(120, 84), torch.nn.ReLU(),
        torch.nn.Linear(84, 10))
    names = ["conv1", "conv2", "fc1", "fc2", "fc3"]
    torch_layers = [m for m in net if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        for name, layer in zip(names, torch_layers):
            layer.weight.copy_(torch.from_numpy(init[f"{name}.weight"]))
            layer.bias.copy_(torch.from_numpy(init[f"{name}.bias"]))
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    images = torch.from_numpy(ds.train_images)
    labels = torch.from_numpy(ds.train_labels)
    mean, std = float(trainer.normalizer.mean[0]), float(trainer.normalizer.std[0])

    def torch_epoch() -> float:
        order = torch.from_numpy(np.random.default_rng([0, 0, 0]).permutation(n))
        start = time.perf_counter()
        for i in range(0, n, args.batch_size):
            idx = order[i:i + args.batch_size]
            x = (images[idx].float() / 255 - mean) / std
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(x), labels[idx])
            loss.backward()
            opt.step()
        return time.perf_counter() - start

    pt = min(torch_epoch() for _ in range(args.repeat))
    print(f"PyTorch    : {pt:6.2f} s/epoch  {n / pt:8,.0f} images/s  (torch {torch.__version__})")
    print(f"ratio convscope / PyTorch: {cs / pt:.2f}  (target <= 2.5)")


if __name__ == "__main__":
    main()
