"""Attribution methods: convscope vs Captum and pytorch-grad-cam on the same model and threads.

    python benchmarks/bench_attribution.py [--threads 2] [--repeat 3] [--no-resnet]
    python benchmarks/bench_attribution.py --faithfulness [--checkpoint RUN] [--images 64]

Speed (default): every method that Captum (or pytorch-grad-cam, ``pip install --no-deps grad-cam
ttach`` plus its import-time needs) also implements, on LeNet-5 with a batch of 64 MNIST-sized
images and on ResNet-50 at 224 x 224 with one image. The torch model is the convscope model's
twin with the same weights (float32, eval mode); both sides explain the same target classes.
Prints the best of ``--repeat`` wall times and the ratio convscope / other (lower is better;
the issue's target is <= 1.5). A library that is missing is skipped with a note.

Faithfulness (``--faithfulness``): trains LeNet-5 for one epoch on MNIST (or loads
``--checkpoint``) and prints deletion, insertion and ROAD (MoRF, LeRF, combined) per method on
the first ``--images`` MNIST test images, beside random maps.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--repeat", type=int, default=3, help="runs per measurement on LeNet-5 (best is reported)")
    p.add_argument("--no-resnet", action="store_true", help="skip the ResNet-50 rows")
    p.add_argument("--faithfulness", action="store_true", help="print the faithfulness table instead")
    p.add_argument("--checkpoint", default=None, help="a run directory / model.npz (faithfulness mode)")
    p.add_argument("--images", type=int, default=64, help="MNIST test images (faithfulness mode)")
    return p.parse_args()


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


# -- torch twins ----------------------------------------------------------------------------------

def lenet_twin(model):
    """LeNet-5 in torch, the flatten done in forward (Captum's LRP has no rule for nn.Flatten)."""
    import torch
    nn = torch.nn

    class LeNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.relu1, self.pool1 = nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2)
            self.conv2, self.relu2, self.pool2 = nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2)
            self.fc1, self.relu3 = nn.Linear(400, 120), nn.ReLU()
            self.fc2, self.relu4, self.fc3 = nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10)

        def forward(self, x):
            x = self.pool2(self.relu2(self.conv2(self.pool1(self.relu1(self.conv1(x))))))
            return self.fc3(self.relu4(self.fc2(self.relu3(self.fc1(torch.flatten(x, 1))))))

    twin = LeNet()
    twin.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in model.state_dict().items()})
    return twin.eval()


def torchvision_stand_in():
    """torchvision's pure-Python modules without its compiled operators (tests/torchvision_models.py),
    which pytorch-grad-cam imports too; ImportError when torchvision is not installed."""
    import importlib.util
    if "torchvision" not in sys.modules and importlib.util.find_spec("torchvision") is None:
        raise ImportError("torchvision is not installed")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from torchvision_models import torchvision_model, torchvision_module
    torchvision_module("resnet")
    return torchvision_model


def resnet_twin(model):
    """torchvision's resnet50 with the convscope model's weights (shortcut.* is downsample.*)."""
    import torch
    twin = torchvision_stand_in()("resnet50", num_classes=1000)
    state = {k.replace("shortcut.conv", "downsample.0").replace("shortcut.bn", "downsample.1"):
             torch.from_numpy(v.copy()) for k, v in model.state_dict().items()}
    missing, unexpected = twin.load_state_dict(state, strict=False)
    if unexpected or any(not m.endswith("num_batches_tracked") for m in missing):
        raise RuntimeError(f"weights do not map onto torchvision's resnet50: {unexpected or missing}")
    return twin.eval()


# -- the speed table ------------------------------------------------------------------------------

def captum_rows(model, twin, x, t, conv, twin_conv, steps, rich: bool):
    """(method, convscope fn, Captum fn) for every method both have."""
    import numpy as np
    import torch
    from captum import attr as ca
    from convscope.visualize import attribute

    xt, tt = torch.from_numpy(x), torch.from_numpy(t)
    leaf = lambda: xt.clone().requires_grad_()
    ours = lambda method, **kw: (lambda: attribute(model, x, method, target=t, **kw))
    span = float((x.max(axis=(1, 2, 3)) - x.min(axis=(1, 2, 3))).mean())

    def gradcam():
        cam = ca.LayerGradCam(twin, twin_conv).attribute(leaf(), target=tt, relu_attributions=True)
        return ca.LayerAttribution.interpolate(cam, x.shape[2:], interpolate_mode="bilinear")

    rows = [
        ("gradient", ours("gradient"), lambda: ca.Saliency(twin).attribute(leaf(), target=tt, abs=False)),
        ("input_x_gradient", ours("input_x_gradient"), lambda: ca.InputXGradient(twin).attribute(leaf(), target=tt)),
        ("integrated_gradients", ours("integrated_gradients", steps=steps),
         lambda: ca.IntegratedGradients(twin).attribute(leaf(), target=tt, n_steps=steps)),
        ("grad_cam", ours("grad_cam", layer=conv), gradcam),
    ]
    if rich:                          # methods whose Captum versions need one module per use
        prob = torch.nn.Sequential(twin, torch.nn.Softmax(dim=1))
        rows += [
            ("guided_backprop", ours("guided_backprop"), lambda: ca.GuidedBackprop(twin).attribute(leaf(), target=tt)),
            ("deconvnet", ours("deconvnet"), lambda: ca.Deconvolution(twin).attribute(leaf(), target=tt)),
            ("deeplift", ours("deeplift"), lambda: ca.DeepLift(twin).attribute(leaf(), target=tt)),
            ("lrp_epsilon", ours("lrp_epsilon", epsilon=1e-9), lambda: ca.LRP(twin).attribute(leaf(), target=tt)),
            ("smoothgrad (16)", ours("smoothgrad", samples=16, noise=0.15, seed=0),
             lambda: ca.NoiseTunnel(ca.Saliency(twin)).attribute(leaf(), target=tt, nt_type="smoothgrad",
                                                                  nt_samples=16, stdevs=0.15 * span, abs=False)),
            ("guided_grad_cam", ours("guided_grad_cam", layer=conv),
             lambda: ca.GuidedGradCam(twin, twin_conv).attribute(leaf(), target=tt)),
            ("occlusion 4/2", ours("occlusion", window=4, stride=2),
             lambda: ca.Occlusion(prob).attribute(xt, target=tt, sliding_window_shapes=(1, 4, 4),
                                                  strides=(1, 2, 2), baselines=0.0, perturbations_per_eval=64)),
        ]
    return rows


def gradcam_rows(model, twin, x, t, conv, twin_conv, names):
    """(method, convscope fn, pytorch-grad-cam fn) for the CAM family."""
    import torch
    torchvision_stand_in()
    import pytorch_grad_cam as pgc
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    from convscope.visualize import attribute

    classes = {"grad_cam": pgc.GradCAM, "grad_cam_plus_plus": pgc.GradCAMPlusPlus, "xgrad_cam": pgc.XGradCAM,
               "layer_cam": pgc.LayerCAM, "hires_cam": pgc.HiResCAM, "score_cam": pgc.ScoreCAM,
               "ablation_cam": pgc.AblationCAM, "eigen_cam": pgc.EigenCAM}
    xt, targets = torch.from_numpy(x), [ClassifierOutputTarget(int(c)) for c in t]
    rows = []
    for name in names:
        cam = classes[name](model=twin, target_layers=[twin_conv])
        cam.batch_size = 64                               # Score-CAM / Ablation-CAM passes, as ours
        rows.append((name, (lambda n=name: attribute(model, x, n, target=t, layer=conv)),
                     (lambda c=cam: c(input_tensor=xt, targets=targets))))
    return rows


def speed(args) -> None:
    import numpy as np
    import torch
    from convscope.models import build_model

    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(True)
    os.environ.setdefault("TQDM_DISABLE", "1")            # pytorch-grad-cam's progress bars
    cases = []
    lenet = build_model("lenet5", 10, 1, (28, 28), rng=np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((64, 1, 28, 28)).astype(np.float32)
    cases.append(("LeNet-5 x64", lenet, lenet_twin(lenet), x, "conv2", lambda tw: tw.conv2, 50, args.repeat, True))
    if not args.no_resnet:
        resnet = build_model("resnet50", 1000, 3, (224, 224), rng=np.random.default_rng(0))
        x = np.random.default_rng(2).standard_normal((1, 3, 224, 224)).astype(np.float32)
        cases.append(("ResNet-50 224px x1", resnet, resnet_twin(resnet), x, "layer4.2.conv3",
                      lambda tw: tw.layer4[2].conv3, 16, 1, False))
    print(f"threads: {args.threads} (torch {torch.__version__}, numpy {np.__version__}); best of the runs, seconds")
    print(f"{'model':<20} {'method':<22} {'convscope':>10} {'other':>10} {'ratio':>6}  other")
    for label, model, twin, x, conv, twin_conv, steps, repeat, rich in cases:
        with torch.no_grad():
            t = twin(torch.from_numpy(x)).argmax(1).numpy()
        rows = []
        try:
            rows += [(r, "captum") for r in captum_rows(model, twin, x, t, conv, twin_conv(twin), steps, rich)]
        except ImportError as err:
            print(f"  (captum rows skipped: {err})")
        try:
            names = ["grad_cam", "grad_cam_plus_plus", "xgrad_cam", "layer_cam", "hires_cam", "eigen_cam"]
            names += ["score_cam", "ablation_cam"] if rich else []
            rows += [(r, "pytorch-grad-cam") for r in gradcam_rows(model, twin, x, t, conv, twin_conv(twin), names)]
        except ImportError as err:
            print(f"  (pytorch-grad-cam rows skipped: {err})")
        for (method, mine, theirs), other in rows:
            mine(), theirs()                                               # warm up both
            a, b = best(mine, repeat), best(theirs, repeat)
            print(f"{label:<20} {method:<22} {a:10.4f} {b:10.4f} {a / b:6.2f}  {other}", flush=True)


# -- the faithfulness table -----------------------------------------------------------------------

def faithfulness_table(args) -> None:
    import numpy as np
    import convscope
    from convscope.data import load_dataset
    from convscope.visualize import METHODS, attribute, faithfulness

    if args.checkpoint:
        clf = convscope.load(args.checkpoint)
    else:
        start = time.perf_counter()
        clf = convscope.train("lenet5", epochs=1, progress=False, seed=0)
        print(f"trained LeNet-5 for one epoch on MNIST in {time.perf_counter() - start:.0f} s")
    mnist = load_dataset("mnist")
    images, labels = mnist.test_images[:args.images], mnist.test_labels[:args.images]
    accuracy = float((clf.predict(images).argmax(1) == labels).mean())
    print(f"{len(images)} MNIST test images, accuracy {accuracy:.3f}; probability of the predicted class; "
          f"deletion / insertion: {28} steps, black baseline; ROAD: 10-90% removed, seed 0")
    metrics = [("deletion", "lower"), ("insertion", "higher"), ("road_morf", "lower"), ("road_lerf", "higher"),
               ("road", "higher")]
    print(f"{'method':<22}" + "".join(f"{m:>11}" for m, _ in metrics) + f"{'seconds':>9}")
    print(f"{'(better)':<22}" + "".join(f"{b:>11}" for _, b in metrics))
    options = {"integrated_gradients": {"steps": 32}, "rise": {"masks": 1000}, "smoothgrad": {"samples": 16}}
    rows = [("random", lambda: np.random.default_rng(0).random((len(images), 28, 28)))]
    rows += [(m, (lambda m=m: attribute(clf, images, m, seed=0, **options.get(m, {})))) for m in METHODS]
    for name, make in rows:
        start = time.perf_counter()
        maps = make()
        seconds = time.perf_counter() - start
        scores = [faithfulness(clf, images, maps, m, **({"steps": 28} if m in ("deletion", "insertion")
                                                       else {"seed": 0})).mean() for m, _ in metrics]
        print(f"{name:<22}" + "".join(f"{s:11.3f}" for s in scores) + f"{seconds:9.2f}", flush=True)


def main() -> None:
    args = parse()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):    # before NumPy loads
        os.environ[var] = str(args.threads)
    if args.faithfulness:
        faithfulness_table(args)
    else:
        try:
            import torch  # noqa: F401
        except ImportError:
            print("PyTorch is not installed: nothing to compare against")
            return
        speed(args)


if __name__ == "__main__":
    main()
