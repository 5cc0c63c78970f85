"""Element-wise functions beyond ReLU, sigmoid and tanh, as the mobile and modern networks use them.

Each maps a tensor of any shape to one of the same shape, value by value, so its backward is
dy times the function's derivative at the cached input (or output):

- :class:`Clip` (ReLU6 is Clip(0, 6), MobileNetV2), :class:`HardSigmoid` and
  :class:`HardSwish` (MobileNetV3), piecewise linear;
- :class:`Erf` and :class:`Gelu` (ConvNeXt), with an erf accurate to double precision
  written in NumPy (Cephes' rational approximations) since NumPy has none;
- :class:`Sqrt`, :class:`Pow` (a constant exponent), :class:`Exp`, :class:`Neg`,
  :class:`Reciprocal`: what decomposed normalisations are made of.

At the kinks of the piecewise functions the derivative taken is that of the open linear
piece (0 at the clip points), as PyTorch does.
"""

from __future__ import annotations

import math

import numpy as np

from ..validation import check_choice, check_real
from .base import Module

__all__ = ["Clip", "HardSigmoid", "HardSwish", "Erf", "Gelu", "Sqrt", "Pow", "Exp", "Neg",
           "Reciprocal", "erf"]


class _Pointwise(Module):
    """Shape-preserving layer: output shape equals input shape."""

    def output_shape(self, input_shape):
        return tuple(input_shape)


def _optional_real(value, name: str) -> float | None:
    return None if value is None else check_real(value, name)


class Clip(_Pointwise):
    """y = min(max(x, low), high) (either bound may be None). Backward passes dy where
    low < x < high."""

    def __init__(self, low: float | None = None, high: float | None = None) -> None:
        super().__init__()
        self.low, self.high = _optional_real(low, "Clip: low"), _optional_real(high, "Clip: high")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"Clip: low {self.low} must not exceed high {self.high}")

    def extra_repr(self) -> str:
        return f"low={self.low}, high={self.high}"

    def forward(self, x):
        t = x.dtype.type
        inside = np.ones(x.shape, dtype=bool)
        if self.low is not None:
            inside &= x > t(self.low)
        if self.high is not None:
            inside &= x < t(self.high)
        self._mask = inside
        y = x
        if self.low is not None:
            y = np.maximum(y, t(self.low))
        if self.high is not None:
            y = np.minimum(y, t(self.high))
        return y

    def backward(self, dy):
        """dx = dy where low < x < high, else 0."""
        return dy * self._mask


class HardSigmoid(_Pointwise):
    """y = clip(alpha * x + beta, 0, 1) (ONNX's defaults alpha 0.2, beta 0.5; PyTorch's
    hardsigmoid is alpha 1/6). Backward: dy * alpha where 0 < alpha * x + beta < 1."""

    def __init__(self, alpha: float = 0.2, beta: float = 0.5) -> None:
        super().__init__()
        self.alpha, self.beta = check_real(alpha, "HardSigmoid: alpha"), check_real(beta, "HardSigmoid: beta")

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, beta={self.beta}"

    def forward(self, x):
        t = x.dtype.type
        z = x * t(self.alpha) + t(self.beta)
        self._mask = (z > 0) & (z < 1)
        return np.clip(z, t(0), t(1))

    def backward(self, dy):
        """dx = dy * alpha where 0 < alpha x + beta < 1, else 0."""
        return dy * (self._mask * dy.dtype.type(self.alpha))


class HardSwish(_Pointwise):
    """y = x * clip(x / 6 + 1/2, 0, 1) (MobileNetV3). Backward: dy * (x / 3 + 1/2) for
    -3 < x < 3, dy for x >= 3, 0 for x <= -3."""

    def forward(self, x):
        self._x = x
        t = x.dtype.type
        return x * np.clip(x / t(6) + t(0.5), t(0), t(1))

    def backward(self, dy):
        """dx = dy * (x / 3 + 1/2) on -3 < x < 3, dy for x >= 3, 0 for x <= -3."""
        x = self._x
        t = x.dtype.type
        slope = np.where(x >= 3, t(1), np.where(x > -3, x / t(3) + t(0.5), t(0)))
        return dy * slope


# Cephes' erf / erfc (ndtr.c) rational approximations: relative error ~1e-16 in double.
_T = (9.60497373987051638749e0, 9.00260197203842689217e1, 2.23200534594684319226e3,
      7.00332514112805075473e3, 5.55923013010394962768e4)
_U = (3.35617141647503099647e1, 5.21357949780152679795e2, 4.59432382970980127987e3,
      2.26290000613890934246e4, 4.92673942608635921086e4)
_P = (2.46196981473530512524e-10, 5.64189564831068821977e-1, 7.46321056442269912687e0,
      4.86371970985681366614e1, 1.96520832956077098242e2, 5.26445194995477358631e2,
      9.34528527171957607540e2, 1.02755188689515710272e3, 5.57535335369399327526e2)
_Q = (1.32281951154744992508e1, 8.67072140885989742329e1, 3.54937778887819891062e2,
      9.75708501743205489753e2, 1.82390916687909736289e3, 2.24633760818710981792e3,
      1.65666309194161350182e3, 5.57535340817727675546e2)
_R = (5.64189583547755073984e-1, 1.27536670759978104416e0, 5.01905042251180477414e0,
      6.16021097993053585195e0, 7.40974269950448939160e0, 2.97886665372100240670e0)
_S = (2.26052863220117276590e0, 9.39603524938001434673e0, 1.20489539808096656605e1,
      1.70814450747565897222e1, 9.60896809063285878198e0, 3.36907645100081516050e0)


def _poly(x: np.ndarray, coefs, monic: bool = False) -> np.ndarray:
    """c0 x^n + ... + cn by Horner's rule (with a leading 1 before c0 when ``monic``)."""
    y = x + coefs[0] if monic else np.full_like(x, coefs[0])
    for c in coefs[1:]:
        y = y * x + c
    return y


def erf(x: np.ndarray) -> np.ndarray:
    """The error function, element-wise, to double precision (computed in float64, returned in
    x's dtype).

    >>> float(erf(np.array([0.5]))[0]) == __import__("math").erf(0.5)
    True
    """
    x = np.asarray(x)
    v = x.astype(np.float64)
    a = np.abs(v)
    inner = np.clip(v, -1.0, 1.0)                    # each branch sees only its own range
    z = inner * inner
    small = inner * _poly(z, _T) / _poly(z, _U, monic=True)      # |x| <= 1: erf directly
    big = np.clip(a, 1.0, 30.0)                      # erfc(30) underflows to 0 anyway
    e = np.exp(-big * big)
    erfc = np.where(big < 8, e * _poly(big, _P) / _poly(big, _Q, monic=True),
                    e * _poly(big, _R) / _poly(big, _S, monic=True))
    out = np.where(a <= 1, small, np.sign(v) * (1.0 - erfc))
    return out.astype(x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64, copy=False)


class Erf(_Pointwise):
    """y = erf(x). Backward: dy * 2 / sqrt(pi) * exp(-x^2)."""

    def forward(self, x):
        self._x = x
        return erf(x)

    def backward(self, dy):
        """dx = dy * 2 / sqrt(pi) * exp(-x^2)."""
        x = self._x
        return dy * (np.exp(-x * x) * x.dtype.type(2 / math.sqrt(math.pi)))


class Gelu(_Pointwise):
    """y = x * Phi(x), Phi the standard normal CDF 0.5 (1 + erf(x / sqrt 2)) ("none"), or
    its tanh approximation 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) ("tanh").
    Backward: dy * (Phi(x) + x phi(x)) with phi the normal density (or the derivative of
    the tanh form)."""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        self.approximate = check_choice(approximate, "Gelu: approximate", ("none", "tanh"))

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"

    def forward(self, x):
        self._x = x
        t = x.dtype.type
        if self.approximate == "tanh":
            self._th = np.tanh(t(math.sqrt(2 / math.pi)) * (x + t(0.044715) * x ** 3))
            return t(0.5) * x * (1 + self._th)
        return t(0.5) * x * (1 + erf(x / t(math.sqrt(2))))

    def backward(self, dy):
        """dx = dy * (Phi(x) + x phi(x)), or the derivative of the tanh form."""
        x = self._x
        t = x.dtype.type
        if self.approximate == "tanh":
            th, k = self._th, t(math.sqrt(2 / math.pi))
            inner = k * (1 + t(3 * 0.044715) * x * x)
            return dy * (t(0.5) * (1 + th) + t(0.5) * x * (1 - th * th) * inner)
        cdf = t(0.5) * (1 + erf(x / t(math.sqrt(2))))
        pdf = np.exp(-x * x / t(2)) * t(1 / math.sqrt(2 * math.pi))
        return dy * (cdf + x * pdf)


class Sqrt(_Pointwise):
    """y = sqrt(x). Backward: dy / (2 y)."""

    def forward(self, x):
        self._y = np.sqrt(x)
        return self._y

    def backward(self, dy):
        """dx = dy / (2 y)."""
        return dy / (2 * self._y)


class Pow(_Pointwise):
    """y = x ** exponent, a constant exponent. Backward: dy * exponent * x ** (exponent - 1)."""

    def __init__(self, exponent: float) -> None:
        super().__init__()
        self.exponent = check_real(exponent, "Pow: exponent")

    def extra_repr(self) -> str:
        return f"exponent={self.exponent}"

    def forward(self, x):
        self._x = x
        p = self.exponent
        return x * x if p == 2 else x ** x.dtype.type(p)

    def backward(self, dy):
        """dx = dy * p * x^(p - 1)."""
        x, p = self._x, self.exponent
        t = x.dtype.type
        return dy * (t(2) * x if p == 2 else t(p) * x ** t(p - 1))


class Exp(_Pointwise):
    """y = exp(x). Backward: dy * y."""

    def forward(self, x):
        self._y = np.exp(x)
        return self._y

    def backward(self, dy):
        """dx = dy * y."""
        return dy * self._y


class Neg(_Pointwise):
    """y = -x. Backward: -dy."""

    def forward(self, x):
        return -x

    def backward(self, dy):
        """dx = -dy."""
        return -dy


class Reciprocal(_Pointwise):
    """y = 1 / x. Backward: -dy * y^2."""

    def forward(self, x):
        self._y = 1 / x
        return self._y

    def backward(self, dy):
        """dx = -dy * y^2."""
        return -dy * self._y * self._y
