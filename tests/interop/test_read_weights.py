"""Reading torch.save and safetensors files without torch: dtypes, views, wrappers, and no torch needed."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from convscope.interop import WeightsError, read_state_dict, weights_format  # noqa: E402
from torch_reference import save_safetensors  # noqa: E402


def _tensors():
    """Tensors of every dtype read, and views: transposed, offset into a shared storage, 0-d, empty."""
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    return {
        "f32": torch.randn(3, 4, generator=torch.Generator().manual_seed(0)),
        "f64": torch.linspace(-1, 1, 5, dtype=torch.float64),
        "f16": torch.tensor([0.5, -2.0, 65504.0], dtype=torch.float16),
        "bf16": torch.tensor([1.0, -3.5, 1e30], dtype=torch.bfloat16),
        "i64": torch.tensor([0, -5, 2 ** 40]),
        "i32": torch.tensor([7, -7], dtype=torch.int32),
        "i8": torch.tensor([-128, 127], dtype=torch.int8),
        "u8": torch.tensor([0, 255], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(3.25),
        "empty": torch.zeros(0, 5),
        "transposed": base.t(),                        # strides (1, 6)
        "rows": base[1:3],                             # offset 6 into base's storage
        "column": base[:, 2],                          # offset 2, stride 6
        "base": base,
    }


def _expected(t: "torch.Tensor") -> np.ndarray:
    return t.float().numpy() if t.dtype == torch.bfloat16 else t.numpy()


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_every_dtype_and_view_round_trips(fmt, tmp_path):
    tensors = _tensors()
    path = tmp_path / "t.pt"
    torch.save(tensors, path, **({} if fmt == "zip" else {"_use_new_zipfile_serialization": False}))
    assert weights_format(path) == f"torch-{fmt}"
    got = read_state_dict(path)
    assert list(got) == list(tensors)
    for name, t in tensors.items():
        want = _expected(t)
        assert got[name].dtype == want.dtype and got[name].shape == want.shape, name
        np.testing.assert_array_equal(got[name], want, err_msg=name)


def test_safetensors_round_trip(tmp_path):
    tensors = {k: v.contiguous() for k, v in _tensors().items() if k not in ("rows", "column", "transposed")}
    path = save_safetensors(tensors, tmp_path / "t.safetensors", metadata={"format": "pt"})
    got = read_state_dict(path)
    assert set(got) == set(tensors)
    for name, t in tensors.items():
        np.testing.assert_array_equal(got[name], _expected(t), err_msg=name)


def test_parameters_wrappers_and_dataparallel_prefixes(tmp_path):
    layer = torch.nn.Linear(3, 2)
    path = tmp_path / "p.pt"
    torch.save({"model": {f"module.{k}": v for k, v in layer.named_parameters()}, "optimizer": {"lr": 0.1},
                "epoch": 3}, path)                                       # nn.Parameter: _rebuild_parameter
    got = read_state_dict(path)
    assert sorted(got) == ["bias", "weight"]
    np.testing.assert_array_equal(got["weight"], layer.weight.detach().numpy())


def test_a_pickle_of_something_else_is_not_a_state_dict(tmp_path):
    path = tmp_path / "list.pt"
    torch.save([torch.zeros(2)], path)
    with pytest.raises(WeightsError, match="holds a list, not a state_dict"):
        read_state_dict(path)
    torch.save({"epoch": 3, "weights": {"a": 1}}, path)
    with pytest.raises(WeightsError, match=r"holds a dict with keys \['epoch', 'weights'\], not a state_dict"):
        read_state_dict(path)


def test_reading_needs_no_torch(tmp_path):
    """A child process where ``import torch`` fails reads both torch formats and safetensors."""
    state = {"w": torch.randn(4, 3), "n": torch.tensor(5)}
    torch.save(state, tmp_path / "z.pt")
    torch.save(state, tmp_path / "l.pt", _use_new_zipfile_serialization=False)
    save_safetensors(state, tmp_path / "s.safetensors")
    code = ("import sys; sys.modules['torch'] = None; sys.modules['safetensors'] = None\n"
            "from convscope.interop import read_state_dict\n"
            f"for name in ('z.pt', 'l.pt', 's.safetensors'):\n"
            f"    s = read_state_dict({str(tmp_path)!r} + '/' + name)\n"
            "    assert s['w'].shape == (4, 3) and int(s['n']) == 5, s\n"
            "assert 'torch' not in {m.split('.')[0] for m, v in sys.modules.items() if v is not None}\n"
            "print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
