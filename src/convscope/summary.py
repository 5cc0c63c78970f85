"""Layer-by-layer summary of a model: output shapes, parameters, receptive fields, MACs.

``summarize(model, (C, H, W))`` walks the module tree in forward order and gives one row
per *leaf* layer (a module with no children), named by the dotted name of
:meth:`~convscope.layers.Module.named_modules`, so other tools can address the same layer.
It makes the arguments of notes §2 checkable: weights per layer, how far each unit sees,
how much work each layer does.

Receptive field. Per spatial axis, the standard recurrence (Araujo, Norris & Sim,
"Computing Receptive Fields of Convolutional Neural Networks", Distill 2019) through a
layer with kernel k, stride s, padding p and dilation d (k' = d (k - 1) + 1 taps) is::

    r_out     = r_in + (k' - 1) * j_in          # receptive field, in input pixels
    j_out     = j_in * s                        # jump: input pixels between adjacent units
    start_out = start_in + ((k' - 1) / 2 - p) * j_in   # centre of unit 0's field

starting from r = j = 1, start = 0 (the centre of input pixel 0). Conv2d and the spatial
pools follow it, as does any leaf with ``kernel_size`` or ``stride`` attributes (a strided
subsampling without a kernel, such as ZeroPadShortcut, is a 1x1 window). A leaf that keeps
the spatial size without such attributes (activations, batch norm, LRN, cross-channel
pooling, dropout, identity) acts per position and leaves the field as it is.
The values are the theoretical field, which may exceed the image and include padding.

Containers: :class:`Sequential` composes its children; :class:`Residual` and
:class:`Concat` run paths on the same input, and their output's field is the union of the
paths' fields (the largest one when, as usual, the paths are centred alike) with the
largest jump; Residual's ``post`` then follows. An :class:`AuxiliaryClassifier` (GoogLeNet's
training-only side heads) lists its head's rows and passes its input on unchanged; its
parameters and multiply-adds count in the totals. Any other container is an error: its data
flow is unknown. Sub-classes of these are handled as their base.

Graphs. A :class:`~convscope.layers.Graph` (an imported network) is walked node by node,
each tensor carrying its field: a node reading several tensors (Add, Mul, Cat) takes the
union of their fields, as Residual and Concat do; element-wise and per-position layers pass
it through; a Transpose moves the spatial axes with it (a channels-last block keeps its
field), as does a reshape that keeps them trailing (ShuffleNet's channel shuffle); a spatial
Slice or Pad moves the field's start (and a strided slice its jump); a reduction over H and
W makes it the whole image. Where no rule applies (a constant, a reshape that scrambles the
map) the field is undefined: the row's ``receptive_field``, ``jump`` and ``start`` are None
(``-`` in the table, null in JSON), and they stay undefined downstream until the output has
no spatial axes. A squeeze-and-excitation gate sees the whole image, so the maps it scales do.

Global layers. Once a layer's output has no spatial axes (Flatten, GlobalAvgPool2d, and
everything after them, such as Linear), each unit sees the whole image: receptive field and
jump are both reported as the input's (H, W).

MACs are multiply-accumulates for one image, for convolutions and fully connected layers
only, as fvcore counts them: Conv2d does (output elements) x (C / groups) x KH x KW, Linear
does in x out; bias additions are not counted. Every other layer (pooling, activations,
normalisation, ...) counts 0. These totals match torchvision's published GFLOPS figures
(e.g. VGG-16 15.47 G, ResNet-50 4.09 G at 3x224x224).

JSON (:meth:`Summary.to_dict`): ``receptive_field`` and ``jump`` are an int when the two
axes agree and ``[h, w]`` otherwise. In Python, rows hold them as (h, w) pairs.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

from dataclasses import replace

from .layers import (AuxiliaryClassifier, Concat, Conv2d, Flatten, Graph, LayerNorm, Linear, LinearND,
                     Module, Pad, ReduceMax, ReduceMean, ReduceSum, Reshape, Residual, Sequential, Slice,
                     Softmax, Transpose)
from .layers.graph import INPUT, num_inputs
from .validation import is_int

__all__ = ["LayerRow", "Summary", "summarize"]

Pair = tuple[int, int]


@dataclass(frozen=True)
class _Field:
    """Receptive-field geometry of a layer's output units, per axis (rows, columns)."""

    size: Pair
    jump: Pair
    start: tuple[float, float]
    whole: bool = False      # output has no spatial axes: every unit sees the whole input
    axes: Pair = (1, 2)      # which per-sample axes are the rows and columns ((C, H, W): 1, 2)


@dataclass(frozen=True)
class LayerRow:
    """One leaf layer: where it sits, what it outputs, what it holds and sees.

    ``receptive_field`` and ``jump`` are (h, w) in input pixels; ``start`` is the (row,
    column) input coordinate of the centre of output unit (0, 0)'s field (pixel centres are
    at integers; it may be negative when the field reaches into the padding). All three are
    None where the field is undefined (some graph nodes, see the module docstring).
    """

    name: str
    type: str
    output_shape: tuple[int, ...]
    params: int
    receptive_field: Pair | None
    jump: Pair | None
    start: tuple[float, float] | None
    macs: int

    def to_dict(self) -> dict:
        return {"name": self.name, "type": self.type, "output_shape": list(self.output_shape),
                "params": self.params, "receptive_field": _json_pair(self.receptive_field),
                "jump": _json_pair(self.jump), "macs": self.macs}


def _json_pair(pair: Pair | None):
    if pair is None:
        return None
    return pair[0] if pair[0] == pair[1] else [pair[0], pair[1]]


def _short(n: int) -> str:
    """1234567 -> '1.23 M'."""
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return str(n)


def _text_pair(pair: Pair | None) -> str:
    if pair is None:
        return "-"
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"


@dataclass(frozen=True)
class Summary:
    """The rows of :func:`summarize` and their totals (parameters and MACs for one image)."""

    model: str
    input_shape: tuple[int, int, int]
    rows: tuple[LayerRow, ...]
    total_params: int
    total_macs: int

    def row(self, name: str) -> LayerRow:
        """The row of the leaf layer with dotted ``name``; ValueError listing the names if absent."""
        for r in self.rows:
            if r.name == name:
                return r
        raise ValueError(f"no leaf layer named {name!r}; known: {', '.join(r.name for r in self.rows)}")

    def to_dict(self) -> dict:
        """JSON-ready: {"model", "input_shape", "total_params", "total_macs", "layers": [...]}."""
        return {"model": self.model, "input_shape": list(self.input_shape),
                "total_params": self.total_params, "total_macs": self.total_macs,
                "layers": [r.to_dict() for r in self.rows]}

    def format_table(self) -> str:
        """An aligned text table, one line per leaf layer, then the totals."""
        head = ("layer", "type", "output shape", "params", "RF", "jump", "MACs")
        body = [(r.name or "(model)", r.type, "x".join(map(str, r.output_shape)), f"{r.params:,}",
                 _text_pair(r.receptive_field), _text_pair(r.jump), f"{r.macs:,}") for r in self.rows]
        widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head))]
        left = (True, True, True, False, False, False, False)

        def fmt(line):
            cells = [c.ljust(w) if lj else c.rjust(w) for c, w, lj in zip(line, widths, left)]
            return "  ".join(cells).rstrip()

        rule = "-" * len(fmt(head))
        shape = "x".join(map(str, self.input_shape))
        return "\n".join([
            f"{self.model} on {shape} inputs", rule, fmt(head), rule, *map(fmt, body), rule,
            f"total params: {self.total_params:,}",
            f"total MACs:   {self.total_macs:,} ({_short(self.total_macs)}, conv + linear, one image)",
            f"input shape:  {shape}",
            "RF and jump in input pixels; after a flatten or global pool they are the input size; "
            "- where undefined.",
        ])


def summarize(model: Module, input_shape, name: str | None = None) -> Summary:
    """Summarise ``model`` for one (C, H, W) input: one :class:`LayerRow` per leaf layer.

    ``name`` defaults to the registry name in ``model.config`` (set by ``build_model``), or
    the class name. Raises ValueError for a malformed ``input_shape``, an input the model
    cannot take (naming the layer), or a container whose data flow is not known.
    """
    if not isinstance(model, Module):
        raise TypeError(f"summarize: model must be a convscope Module, got {type(model).__name__}")
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else (input_shape,)
    if len(shape) != 3 or not all(is_int(s) and s > 0 for s in shape):
        raise ValueError(f"summarize: input_shape must be (C, H, W) with positive ints, got {input_shape!r}")
    shape = tuple(int(s) for s in shape)
    if name is None:
        name = (getattr(model, "config", None) or {}).get("name") or type(model).__name__
    walker = _Walker(model, shape[1:])
    walker.walk(model, shape, _Field((1, 1), (1, 1), (0.0, 0.0)))
    rows = tuple(walker.rows)
    return Summary(model=name, input_shape=shape, rows=rows, total_params=model.num_parameters(),
                   total_macs=sum(r.macs for r in rows))


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _window(module: Module):
    """(kernel, stride, padding, dilation) pairs of a sliding-window leaf, or None.

    A leaf with a ``stride`` but no ``kernel_size`` (a strided subsampling such as
    ZeroPadShortcut) is a 1x1 window; missing padding is 0 and missing dilation 1.
    """
    if not (hasattr(module, "kernel_size") or hasattr(module, "stride")):
        return None
    pairs = []
    for attr, default in (("kernel_size", 1), ("stride", 1), ("padding", 0), ("dilation", 1)):
        value = getattr(module, attr, default)
        pairs.append(tuple(int(v) for v in value) if isinstance(value, (tuple, list)) else (int(value),) * 2)
    return pairs


def _through_window(field: _Field, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair) -> _Field:
    """One step of the recurrence r += (k'-1) j, start += ((k'-1)/2 - p) j, j *= s, per axis."""
    size, jump, start = [], [], []
    for a in range(2):
        taps = dilation[a] * (kernel[a] - 1) + 1
        size.append(field.size[a] + (taps - 1) * field.jump[a])
        start.append(field.start[a] + ((taps - 1) / 2 - padding[a]) * field.jump[a])
        jump.append(field.jump[a] * stride[a])
    return _Field(tuple(size), tuple(jump), tuple(start))


def _union(fields: list[_Field], image: Pair) -> _Field:
    """The field covering every path's field of unit 0; the largest jump."""
    if any(f.whole for f in fields):
        return _whole(image)
    size, jump, start = [], [], []
    for a in range(2):
        lo = min(f.start[a] - (f.size[a] - 1) / 2 for f in fields)
        hi = max(f.start[a] + (f.size[a] - 1) / 2 for f in fields)
        size.append(int(round(hi - lo)) + 1)
        start.append((lo + hi) / 2)
        jump.append(max(f.jump[a] for f in fields))
    return _Field(tuple(size), tuple(jump), tuple(start), axes=fields[0].axes)


def _whole(image: Pair) -> _Field:
    return _Field(tuple(image), tuple(image), ((image[0] - 1) / 2, (image[1] - 1) / 2), whole=True)


def _macs(module: Module, output_shape: tuple[int, ...]) -> int:
    """Multiply-adds for one image: conv and linear only, biases not counted (fvcore's rule)."""
    if isinstance(module, Conv2d):
        kh, kw = module.kernel_size
        return prod(output_shape) * (module.in_channels // module.groups) * kh * kw
    if isinstance(module, Linear):
        return module.in_features * module.out_features
    if isinstance(module, LinearND):             # the same matrix at every position
        return prod(output_shape[:-1]) * module.in_features * module.out_features
    return 0


class _Walker:
    """Recursive traversal that propagates (shape, field) and records one row per leaf.

    Names come from the root's ``named_modules()``, matched by identity, so they are the
    names other tools use even where a block lists its body's layers as its own children.
    """

    def __init__(self, root: Module, image: Pair) -> None:
        self.image = tuple(image)
        self.rows: list[LayerRow] = []
        self.names: dict[int, str] = {}
        for name, module in root.named_modules():
            self.names.setdefault(id(module), name)

    def _name(self, module: Module, where: str) -> str:
        return self.names.get(id(module), where)

    def walk(self, module: Module, shape: tuple, field: _Field, where: str = "") -> tuple[tuple, _Field]:
        """Rows for ``module``'s leaves; returns its output shape and field. ``where`` names
        the nearest enclosing named module, for a container hidden from named_modules."""
        where = self._name(module, where)
        if isinstance(module, Graph):
            return self._graph(module, shape, field, where)
        if not module.children():
            return self._leaf(module, shape, field, where)
        if isinstance(module, Residual):
            a_shape, a = self.walk(module.body, shape, field, where)
            b_shape, b = self.walk(module.shortcut, shape, field, where)
            if a_shape != b_shape:
                raise ValueError(f"layer {where or '(model)'!r}: residual paths disagree: body gives "
                                 f"{a_shape}, shortcut gives {b_shape} for input {tuple(shape)}")
            merged = _union([a, b], self.image)
            if module.post is None:
                return a_shape, merged
            return self.walk(module.post, a_shape, merged, where)
        if isinstance(module, Concat):
            fields = [self.walk(child, shape, field, where)[1] for _, child in module.children()]
            return _checked_shape(module, shape, where), _union(fields, self.image)
        if isinstance(module, Sequential):
            for _, child in module.children():
                shape, field = self.walk(child, shape, field, where)
            return shape, field
        if isinstance(module, AuxiliaryClassifier):
            self.walk(module.head, shape, field, where)
            return tuple(shape), field
        raise ValueError(f"summary: layer {where or '(model)'!r} is a {type(module).__name__}, a container "
                         f"whose data flow summary does not know; it handles Sequential, Residual, Concat, "
                         f"AuxiliaryClassifier and their sub-classes")

    def _graph(self, graph: Graph, shape: tuple, field: _Field, where: str):
        """Each node reads its inputs' (shape, field) pairs; returns the output node's."""
        state = {INPUT: (tuple(shape), field)}
        for name, module, inputs in graph.nodes:
            ins = [state[src] for src in inputs]
            if module.children() and len(ins) == 1:
                state[name] = self.walk(module, *ins[0], where)
                continue
            node = self._name(module, where)
            shapes = [s for s, _ in ins]
            out = _checked_shape(module, shapes[0] if num_inputs(module) == 1 else tuple(shapes), node)
            new = _node_field(module, shapes, [f for _, f in ins], out, self.image)
            self._row(module, node, out, new)
            state[name] = (out, new)
        return state[graph.output]

    def _row(self, module: Module, name: str, out: tuple, field: _Field | None) -> None:
        params = int(sum(p.size for p in module.params.values()))
        size, jump, start = (field.size, field.jump, field.start) if field is not None else (None, None, None)
        self.rows.append(LayerRow(name, type(module).__name__, out, params, size, jump, start,
                                  int(_macs(module, out))))

    def _leaf(self, module: Module, shape: tuple, field: _Field, name: str):
        if id(module) not in self.names:
            raise ValueError(f"summary: a {type(module).__name__} inside {name or '(model)'!r} is run "
                             f"by the forward pass but not listed by children(), so it has no name")
        out = _checked_shape(module, shape, name)
        if field.whole or len(out) != 3:
            new = _whole(self.image)
        elif (window := _window(module)) is not None:
            new = _through_window(field, *window)
        elif len(shape) == 3 and out[1:] == tuple(shape[1:]):
            new = field                                   # acts per position
        else:
            raise ValueError(f"summary: leaf layer {name or '(model)'!r} ({type(module).__name__}) maps "
                             f"{tuple(shape)} to {out} but has no kernel_size or stride to say "
                             f"which inputs each output sees")
        self._row(module, name, out, new)
        return out, new


def _checked_shape(module: Module, shape: tuple, name: str) -> tuple:
    try:
        return tuple(module.output_shape(shape))
    except ValueError as err:
        raise ValueError(f"layer {name or '(model)'!r}: {err}") from None


def _node_field(module: Module, shapes: list, fields: list, out: tuple, image: Pair) -> _Field | None:
    """The field of a graph node's output from its inputs' (see the module docstring); None
    where it is undefined."""
    known = [f for f in fields if f is not None]
    if not known:
        return None                                  # a constant, or no field upstream
    if len(fields) > 1:                              # Add, Mul, Cat, ...: the union (constants add none)
        if any(f.whole for f in known) or len(out) < 2:
            return _whole(image)
        if len({f.axes for f in known}) != 1 or getattr(module, "axis", -1) in known[0].axes:
            return None
        return _union(known, image)
    f, shape = known[0], shapes[0]
    if f.whole or len(out) < 2:
        return _whole(image)
    if (window := _window(module)) is not None and not isinstance(module, Slice):
        return _through_window(f, *window) if f.axes == (1, 2) and len(shape) == 3 else None
    spatial = [shape[a] for a in f.axes]
    if isinstance(module, Transpose):
        return replace(f, axes=tuple(module.perm.index(a) for a in f.axes))
    if isinstance(module, (Reshape, Flatten)):
        trailing = f.axes == (len(shape) - 2, len(shape) - 1) and list(out[-2:]) == spatial
        return replace(f, axes=(len(out) - 2, len(out) - 1)) if trailing else None
    if isinstance(module, (ReduceMean, ReduceMax, ReduceSum)):
        hit = set(module.axes) & set(f.axes)
        if hit:
            return _whole(image) if len(hit) == 2 else None
        return f if module.keepdims else replace(
            f, axes=tuple(a - sum(r < a for r in module.axes) for a in f.axes))
    if isinstance(module, Slice):
        return _sliced(f, module)
    if isinstance(module, Pad):
        return replace(f, start=tuple(st - module.pads[a][0] * j for st, a, j in zip(f.start, f.axes, f.jump)))
    mixes = (isinstance(module, Softmax) and module.axis in f.axes) or \
        (isinstance(module, LayerNorm) and max(f.axes) >= len(shape) - len(module.normalized_shape)) or \
        (isinstance(module, LinearND) and max(f.axes) == len(shape) - 1)
    if not mixes and len(out) == len(shape) and [out[a] for a in f.axes] == spatial:
        return f                                     # acts per position
    return None


def _sliced(f: _Field, module: Slice) -> _Field | None:
    """A spatial slice start:stop:step moves the field's start by start * jump and
    multiplies its jump by step (positive steps only)."""
    size, jump, start = list(f.size), list(f.jump), list(f.start)
    for axis, first, _, step in zip(module.axes, module.starts, module.stops, module.steps):
        if axis in f.axes:
            i = f.axes.index(axis)
            if step < 1 or first < 0:
                return None
            start[i] += first * jump[i]
            jump[i] *= step
    return replace(f, size=tuple(size), jump=tuple(jump), start=tuple(start))
