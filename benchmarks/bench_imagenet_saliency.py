"""Saliency on one 224-px photo through ResNet-50 and VGG-16: convscope vs Captum on the identical torch model.

    python benchmarks/bench_imagenet_saliency.py [--models resnet50,vgg16] [--threads 2]
                                                 [--methods gradient,guided,gradcam,ig,smoothgrad,occlusion]

The torch network is torchvision's definition with seeded random weights (He-scaled, BN
statistics randomised), saved with ``torch.save``; convscope's is that file imported by
``convscope.interop.import_torchvision``, so both hold the same weights. Both get the same
model-space input (a photo through the ImageNet preset), the same target class (the one
predicted) and the same thread count (``torch.set_num_threads`` and, for NumPy's OpenBLAS,
``OMP_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` / ``MKL_NUM_THREADS`` set before NumPy loads;
threadpoolctl is not needed). Each method runs in a fresh subprocess per framework, so the
peak resident memory (``resource.getrusage`` maxrss, model included) is that method's alone.

Settings, the same on both sides: integrated gradients 32 steps from a zero baseline
(convscope's trapezoid rule takes 33 points, Captum's Gauss-Legendre 32), SmoothGrad 16
samples of noise 0.15 x (max - min), occlusion with a 32 x 32 window slid by 16 px (169
positions: the CLI's setting at 224) and a zero fill, Grad-CAM on the last stage
(ResNet-50 ``layer4``, VGG-16 ``conv5_3``) upsampled to the input. Gradient methods run
convscope's batch cap at 224 px (2 images; 4 for occlusion's forward passes) on both sides.
The table gives seconds, the ratio convscope / Captum (lower is better; the target is <= 1.5),
peak memory, and for the deterministic methods the largest difference between the two
attributions relative to Captum's largest value. Skips cleanly without torch or captum.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

METHODS = ("gradient", "guided", "gradcam", "ig", "smoothgrad", "occlusion")
IG_STEPS, SG_SAMPLES, SG_NOISE, WINDOW = 32, 16, 0.15, 32
GRADIENT_BATCH, FORWARD_BATCH = 2, 4            # convscope.visualize.core.batch_limit at 224 x 224
LAYERS = {"resnet50": ("layer4.2", "layer4"), "vgg16": ("features.conv5_3", "features.28")}


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="resnet50,vgg16")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--child", nargs=5, metavar=("FRAMEWORK", "MODEL", "METHOD", "DIR", "OUT"), help=argparse.SUPPRESS)
    p.add_argument("--prepare", nargs=2, metavar=("MODEL", "DIR"), help=argparse.SUPPRESS)
    return p.parse_args()


def set_threads(threads: int) -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)


def torchvision_model(arch: str):
    """torchvision's architecture without its package __init__ (whose compiled ops may not load)."""
    import importlib
    import importlib.util
    import types
    if "torchvision" not in sys.modules:
        root = Path(importlib.util.find_spec("torchvision").origin).parent
        for package, path in (("torchvision", root), ("torchvision.models", root / "models")):
            stand_in = types.ModuleType(package)
            stand_in.__path__ = [str(path)]
            sys.modules[package] = stand_in
    module = importlib.import_module(f"torchvision.models.{'resnet' if arch.startswith('resnet') else 'vgg'}")
    return getattr(module, arch)(weights=None)


def torch_net(arch: str, weights: Path | None = None):
    """The torch model: random seeded weights, or those in ``weights``; ReLUs not in place (hooks)."""
    import torch
    with torch.device("meta"):
        net = torchvision_model(arch)
    net = net.to_empty(device="cpu")
    for module in net.modules():
        if isinstance(module, torch.nn.ReLU):
            module.inplace = False
    if weights is not None:
        net.load_state_dict(torch.load(weights, weights_only=True))
        return net.eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5, generator=gen)
                module.bias.uniform_(-0.2, 0.2, generator=gen)
                module.running_mean.normal_(0.0, 0.2, generator=gen)
                module.running_var.uniform_(0.5, 2.0, generator=gen)
                module.num_batches_tracked.zero_()
            elif isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
                module.weight.normal_(0.0, math.sqrt(2.0 / module.weight[0].numel()), generator=gen)
                if module.bias is not None:
                    module.bias.uniform_(-0.1, 0.1, generator=gen)
    return net.eval()


def prepare(arch: str, directory: Path) -> None:
    """weights.pth, x.npy (the photo in model space) and target.json in ``directory``."""
    import numpy as np
    import torch

    from convscope.interop import import_torchvision
    torch.save(torch_net(arch).state_dict(), directory / "weights.pth")
    clf = import_torchvision(directory / "weights.pth", arch)
    try:
        import matplotlib.cbook
        photo = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
        x = clf.preprocess([photo])
    except (ImportError, OSError, ValueError):
        x = clf.preprocess(np.random.default_rng(0).integers(0, 256, (1, 3, 300, 400), dtype=np.uint8))
    np.save(directory / "x.npy", x)
    target = int(clf.model.forward(x).argmax())
    (directory / "target.json").write_text(json.dumps(target))


def run_convscope(arch: str, method: str, x, target: int, directory: Path):
    import numpy as np

    from convscope import visualize as v
    from convscope.interop import import_torchvision
    model = import_torchvision(directory / "weights.pth", arch).model
    model.forward(x)                                                       # warm up
    calls = {
        "gradient": lambda: v.gradient_saliency(model, x, target),
        "guided": lambda: v.guided_backprop(model, x, target),
        "gradcam": lambda: v.grad_cam(model, x, LAYERS[arch][0], target).upsampled,
        "ig": lambda: v.integrated_gradients(model, x, target, steps=IG_STEPS).attributions,
        "smoothgrad": lambda: v.smoothgrad(model, x, target, samples=SG_SAMPLES, noise=SG_NOISE,
                                           rng=np.random.default_rng(0)),
        "occlusion": lambda: v.occlusion(model, x, target, window=WINDOW, stride=WINDOW // 2),
    }
    start = time.perf_counter()
    out = calls[method]()
    return time.perf_counter() - start, out


def run_captum(arch: str, method: str, x, target: int, directory: Path):
    import torch
    from captum import attr

    net = torch_net(arch, directory / "weights.pth")
    t = torch.from_numpy(x).requires_grad_(True)
    with torch.no_grad():
        net(t)                                                             # warm up
    layer = net.get_submodule(LAYERS[arch][1])
    sigma = SG_NOISE * float(x.max() - x.min())

    def gradcam():
        cam = attr.LayerGradCam(net, layer).attribute(t, target=target, relu_attributions=True)
        return attr.LayerAttribution.interpolate(cam, x.shape[2:], "bilinear")

    calls = {
        "gradient": lambda: attr.Saliency(net).attribute(t, target=target, abs=True).amax(dim=1),
        "guided": lambda: attr.GuidedBackprop(net).attribute(t, target=target),
        "gradcam": gradcam,
        "ig": lambda: attr.IntegratedGradients(net).attribute(t, target=target, n_steps=IG_STEPS,
                                                              internal_batch_size=GRADIENT_BATCH),
        "smoothgrad": lambda: attr.NoiseTunnel(attr.Saliency(net)).attribute(
            t, nt_type="smoothgrad", nt_samples=SG_SAMPLES, nt_samples_batch_size=GRADIENT_BATCH, stdevs=sigma,
            target=target, abs=False),
        "occlusion": lambda: attr.Occlusion(net).attribute(
            t, sliding_window_shapes=(3, WINDOW, WINDOW), strides=(3, WINDOW // 2, WINDOW // 2), baselines=0,
            target=target, perturbations_per_eval=FORWARD_BATCH),
    }
    start = time.perf_counter()
    out = calls[method]()
    return time.perf_counter() - start, out.detach().numpy()


def child(framework: str, arch: str, method: str, directory: str, out: str) -> None:
    import resource

    import numpy as np
    directory = Path(directory)
    x = np.load(directory / "x.npy")
    target = json.loads((directory / "target.json").read_text())
    if framework == "captum":
        import torch
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    run = run_convscope if framework == "convscope" else run_captum
    seconds, result = run(arch, method, x, target, directory)
    np.save(out, np.asarray(result, dtype=np.float32).reshape(-1, *x.shape[2:]))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024          # KB on Linux
    print(json.dumps({"seconds": seconds, "peak_mb": peak}))


def _subprocess(*argv: str) -> str:
    """Run this script with ``argv`` in a fresh process (the parent stays small: Linux keeps a
    process's peak RSS across exec, so a child's maxrss would start at the parent's)."""
    done = subprocess.run([sys.executable, __file__, *argv], capture_output=True, text=True, env=os.environ.copy())
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.strip()[-2000:]}")
    return done.stdout


def measure(framework: str, arch: str, method: str, directory: Path) -> dict:
    out = directory / f"{framework}-{method}.npy"
    stdout = _subprocess("--child", framework, arch, method, str(directory), str(out))
    return {**json.loads(stdout.strip().splitlines()[-1]), "file": out}


def agreement(method: str, ours: Path, theirs: Path) -> str:
    """max |convscope - captum| / max |captum| for the deterministic methods."""
    import numpy as np
    if method not in ("gradient", "guided", "gradcam"):
        return "n/a"
    a, b = np.load(ours).reshape(-1), np.load(theirs).reshape(-1)
    return f"{np.abs(a - b).max() / max(np.abs(b).max(), 1e-30):.1e}"


def main() -> None:
    args = parse()
    set_threads(args.threads if args.child is None else int(os.environ.get("OMP_NUM_THREADS", "1")))
    if args.child:
        child(*args.child)
        return
    if args.prepare:
        prepare(args.prepare[0], Path(args.prepare[1]))
        return
    import importlib.util
    missing = [name for name in ("torch", "captum") if importlib.util.find_spec(name) is None]
    if missing:
        print(f"skipped: {missing[0]} is not installed (pip install torch captum to compare with Captum)")
        return
    methods = [m for m in args.methods.split(",") if m]
    rows = []
    for arch in [m for m in args.models.split(",") if m]:
        with tempfile.TemporaryDirectory() as tmp:
            directory = Path(tmp)
            _subprocess("--prepare", arch, str(directory))
            for method in methods:
                ours, theirs = (measure(fw, arch, method, directory) for fw in ("convscope", "captum"))
                rows.append((arch, method, ours, theirs, agreement(method, ours["file"], theirs["file"])))
                print(_row(*rows[-1]), flush=True)
    worst = max(ours["seconds"] / theirs["seconds"] for _, _, ours, theirs, _ in rows)
    print(f"\n{len(rows)} runs, {args.threads} thread(s); worst ratio {worst:.2f} (target <= 1.5)")


def _row(arch, method, ours, theirs, agree) -> str:
    if not hasattr(_row, "header"):
        _row.header = True
        print(f"{'model':9} {'method':11} {'convscope s':>11} {'captum s':>9} {'ratio':>6} "
              f"{'convscope MB':>12} {'captum MB':>9}  agreement")
    return (f"{arch:9} {method:11} {ours['seconds']:11.2f} {theirs['seconds']:9.2f} "
            f"{ours['seconds'] / theirs['seconds']:6.2f} {ours['peak_mb']:12.0f} {theirs['peak_mb']:9.0f}  {agree}")


if __name__ == "__main__":
    main()
