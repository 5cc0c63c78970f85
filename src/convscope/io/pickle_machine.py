"""A pickle virtual machine that builds plain data and never runs code, for untrusted files.

:mod:`pickle` executes whatever a file names: ``os.system``, ``builtins.eval``, any
``__reduce__``. :class:`PickleMachine` walks a pickle's opcodes instead (parsed by
:func:`pickletools.genops`, which executes nothing) and keeps to what a :class:`Grammar`
allows: the plain containers and scalars every pickle of data uses (dicts, lists, tuples,
ints, floats, strings, bytes, None, bools) and a table of *globals*, each a name mapped to a
role. A global is never imported or called: when the pickle "calls" it (``REDUCE``) or sets
its state (``BUILD``), the grammar's ``call`` / ``build`` compute the result from the
arguments, or refuse. ``BINPERSID`` (a reference to data outside the pickle, how PyTorch
points at its tensor storages) goes to the grammar's ``persistent_load``.

Two grammars use it: CIFAR-10 batches (:mod:`convscope.data.cifar`: NumPy's uint8 array
reconstruction) and PyTorch state_dict files (:mod:`convscope.interop.torchfile`:
``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2``, storage types).

Its work is linear in the pickle's size: at most one stack entry, one memo entry and one
tree node per opcode, nesting at most ``max_depth`` deep, dict keys only scalars (no tuple
is ever hashed), and an object tree with more nodes than the pickle has opcodes (containers
shared through the memo, a "billion laughs" pickle) is refused. Anything else is a one-line
:class:`PickleRefused` (``corrupt`` when the bytes are not even a pickle).
"""

from __future__ import annotations

import io
import pickletools
from dataclasses import dataclass
from typing import Callable, Mapping

__all__ = ["PickleRefused", "Global", "Grammar", "PickleMachine", "unpickle"]

MAX_DEPTH = 64                 # real data pickles nest 3-6 deep
MAX_MEMO = 2 ** 20             # a CIFAR batch stores ~20,000 memo entries, ResNet-152's state_dict ~6,000


class PickleRefused(ValueError):
    """The pickle does something its grammar does not allow (``corrupt``: it is not even a pickle)."""

    def __init__(self, reason: str, corrupt: bool = False):
        super().__init__(reason)
        self.corrupt = corrupt


class Global:
    """A global the pickle named: ``role`` from the grammar's table and the ``name``; never imported."""

    def __init__(self, role: str, name: str):
        self.role, self.name = role, name

    def __repr__(self) -> str:
        return f"Global({self.name})"


def _no_build(target, state):
    return None


@dataclass(frozen=True)
class Grammar:
    """What one kind of file may contain.

    ``what`` names the kind in messages ("a CIFAR-10 batch"); ``allowed`` says what it may
    hold ("only dicts, lists, ..."). ``globals`` maps "module.name" to a role. ``call(g, args)``
    is the value of calling the :class:`Global` ``g`` with the tuple ``args`` (or a
    :class:`PickleRefused`). ``build(target, state)`` is the object that replaces ``target``
    after ``BUILD`` with ``state``, or None to refuse. ``persistent_load(pid)`` the object a
    persistent id stands for (None: ``BINPERSID`` is refused). ``unfinished(obj)`` is true for
    a placeholder that must not be left in the result.
    """

    what: str
    allowed: str
    globals: Mapping[str, str]
    call: Callable[[Global, tuple], object]
    build: Callable[[object, object], object] = _no_build
    persistent_load: Callable[[object], object] | None = None
    unfinished: Callable[[object], bool] = lambda obj: False
    max_depth: int = MAX_DEPTH
    max_memo: int = MAX_MEMO


class PickleMachine:
    """The pickle virtual machine, cut down to the opcodes of plain data and a grammar's globals."""

    def __init__(self, grammar: Grammar):
        self.grammar = grammar
        self.stack: list = []
        self.marks: list[int] = []            # stack lengths at each MARK
        self.memo: dict[int, object] = {}

    def run(self, data, start: int = 0) -> tuple[object, int]:
        """(the object pickled in ``data`` from byte ``start``, the offset just past its STOP).

        Raises :class:`PickleRefused` for anything the grammar does not allow.
        """
        stream = io.BytesIO(data)
        stream.seek(start)
        ops, result, end = 0, None, None
        try:
            for op, arg, pos in pickletools.genops(stream):
                ops += 1
                if op.name == "STOP":
                    result, end = self._pop(), pos + 1
                    break
                handler = _HANDLERS.get(op.name)
                if handler is None or (op.name == "BINPERSID" and self.grammar.persistent_load is None):
                    raise PickleRefused(f"it uses the pickle opcode {op.name} (at byte {pos}), which "
                                        f"{self.grammar.what} never contains")
                handler(self, arg)
        except (ValueError, EOFError) as err:     # what genops raises for a truncated or unknown opcode
            if isinstance(err, PickleRefused):
                raise
            raise PickleRefused(str(err).splitlines()[0] if str(err) else "unreadable pickle", corrupt=True) from None
        if end is None:
            raise PickleRefused("its pickle ends without a STOP (truncated?)", corrupt=True)
        if self.stack or self.marks:
            raise PickleRefused("its pickle stops with objects left on the stack", corrupt=True)
        self._check_tree(result, budget=ops)
        return result, end

    # --- the stack -----------------------------------------------------------------------------
    def _pop(self):
        if len(self.stack) <= (self.marks[-1] if self.marks else 0):
            raise PickleRefused("its pickle pops an empty stack", corrupt=True)
        return self.stack.pop()

    def _pop_mark(self) -> list:
        if not self.marks:
            raise PickleRefused("its pickle closes a MARK it never opened", corrupt=True)
        start = self.marks.pop()
        items = self.stack[start:]
        del self.stack[start:]
        return items

    def _top(self, kind: type, what: str):
        if len(self.stack) <= (self.marks[-1] if self.marks else 0) or not isinstance(self.stack[-1], kind):
            raise PickleRefused(f"its pickle applies {what} to something that is not a {kind.__name__}",
                                corrupt=True)
        return self.stack[-1]

    def _proto(self, protocol: int):
        if not 2 <= protocol <= 5:
            raise PickleRefused(f"it is a pickle of protocol {protocol}; {self.grammar.what} uses "
                                f"protocols 2 to 5")

    def _mark(self, _):
        if len(self.marks) >= self.grammar.max_depth:
            raise PickleRefused(f"its pickle nests deeper than {self.grammar.max_depth} levels")
        self.marks.append(len(self.stack))

    def _push(self, value):
        self.stack.append(value)

    # --- the memo ------------------------------------------------------------------------------
    def _put(self, index):
        if len(self.memo) >= self.grammar.max_memo:
            raise PickleRefused(f"its pickle stores more than {self.grammar.max_memo} memo entries")
        if not self.stack:
            raise PickleRefused("its pickle memoizes an empty stack", corrupt=True)
        self.memo[len(self.memo) if index is None else index] = self.stack[-1]

    def _get(self, index):
        if index not in self.memo:
            raise PickleRefused(f"its pickle refers to memo entry {index}, which it never stored", corrupt=True)
        self.stack.append(self.memo[index])

    # --- containers ----------------------------------------------------------------------------
    def _tuple(self, n):
        items = self._pop_mark() if n is None else [self._pop() for _ in range(n)][::-1]
        self.stack.append(tuple(items))

    def _list(self, _):
        self.stack.append(self._pop_mark())

    def _dict(self, _):
        items = self._pop_mark()
        self.stack.append({})
        self._set_pairs(items)

    def _append(self, many):
        items = self._pop_mark() if many else [self._pop()]
        self._top(list, "APPEND").extend(items)

    def _setitems(self, many):
        self._set_pairs(self._pop_mark() if many else [self._pop() for _ in range(2)][::-1])

    def _set_pairs(self, items: list):
        if len(items) % 2:
            raise PickleRefused("its pickle sets a dict item without a value", corrupt=True)
        target = self._top(dict, "SETITEM")
        for key, value in zip(items[::2], items[1::2]):
            if type(key) not in (str, bytes, int):
                raise PickleRefused(f"a dict key is a {type(key).__name__} (only str, bytes or int keys "
                                    f"are allowed)")
            target[key] = value

    # --- globals, calls, BUILD and persistent ids ----------------------------------------------
    def _global(self, name: str):
        role = self.grammar.globals.get(name)
        if role is None:
            raise PickleRefused(f"its pickle asks for {ascii(name[:80])[1:-1]}, which {self.grammar.what} "
                                f"never contains ({self.grammar.allowed})")
        self.stack.append(Global(role, name))

    def _stack_global(self, _):
        name, module = self._pop(), self._pop()
        if not isinstance(module, str) or not isinstance(name, str):
            raise PickleRefused("its pickle names a global with something other than strings", corrupt=True)
        self._global(f"{module}.{name}")

    def _reduce(self, _):
        args, func = self._pop(), self._pop()
        if not isinstance(func, Global) or not isinstance(args, tuple):
            raise PickleRefused(f"its pickle calls a {type(func).__name__}, which {self.grammar.what} never does")
        self.stack.append(self.grammar.call(func, args))

    def _build(self, _):
        state = self._pop()
        target = self._top(object, "BUILD")
        built = None if isinstance(target, Global) else self.grammar.build(target, state)
        if built is None:
            raise PickleRefused(f"its pickle sets the state of a {type(target).__name__}, which "
                                f"{self.grammar.what} never does")
        self.stack[-1] = built

    def _persistent(self, _):
        self.stack.append(self.grammar.persistent_load(self._pop()))

    # --- the result ----------------------------------------------------------------------------
    def _check_tree(self, root, budget: int) -> None:
        """Refuse deep nesting, unfinished objects, and sharing that makes the tree bigger than the pickle.

        Each node of real data comes from its own opcode, so a tree with more nodes than the
        pickle has opcodes reuses containers through the memo (a "billion laughs" pickle).
        """
        todo, nodes, depth_limit = [(root, 1)], 0, self.grammar.max_depth
        while todo:
            obj, depth = todo.pop()
            nodes += 1
            if nodes > budget:
                raise PickleRefused("its pickle reuses containers so that its object tree outgrows the file")
            if depth > depth_limit:
                raise PickleRefused(f"its pickle nests deeper than {depth_limit} levels")
            if isinstance(obj, (list, tuple)):
                todo.extend((child, depth + 1) for child in obj)
            elif isinstance(obj, dict):
                todo.extend((child, depth + 1) for child in obj.values())
            elif isinstance(obj, Global) or self.grammar.unfinished(obj):
                raise PickleRefused(f"its pickle leaves an unfinished object in {self.grammar.what} "
                                    f"({self.grammar.allowed})")


def unpickle(data: bytes, grammar: Grammar) -> object:
    """The one object pickled in ``data`` (nothing may follow its STOP), read by :class:`PickleMachine`."""
    obj, end = PickleMachine(grammar).run(data)
    if end != len(data):
        raise PickleRefused(f"{len(data) - end} bytes follow the end of its pickle", corrupt=True)
    return obj


_HANDLERS = {
    "PROTO": PickleMachine._proto,
    "FRAME": lambda m, _: None,                               # (STOP is handled in run)
    "MARK": PickleMachine._mark,
    "NONE": lambda m, _: m._push(None), "NEWTRUE": lambda m, _: m._push(True),
    "NEWFALSE": lambda m, _: m._push(False), "EMPTY_DICT": lambda m, _: m._push({}),
    "EMPTY_LIST": lambda m, _: m._push([]), "EMPTY_TUPLE": lambda m, _: m._push(()),
    "TUPLE": lambda m, _: m._tuple(None), "TUPLE1": lambda m, _: m._tuple(1),
    "TUPLE2": lambda m, _: m._tuple(2), "TUPLE3": lambda m, _: m._tuple(3),
    "LIST": PickleMachine._list, "DICT": PickleMachine._dict,
    "APPEND": lambda m, _: m._append(False), "APPENDS": lambda m, _: m._append(True),
    "SETITEM": lambda m, _: m._setitems(False), "SETITEMS": lambda m, _: m._setitems(True),
    "BINPUT": PickleMachine._put, "LONG_BINPUT": PickleMachine._put,
    "MEMOIZE": PickleMachine._put,                            # arg None: the next free index
    "BINGET": PickleMachine._get, "LONG_BINGET": PickleMachine._get,
    "GLOBAL": lambda m, arg: m._global(".".join(arg.split(" ", 1))),
    "STACK_GLOBAL": PickleMachine._stack_global,
    "REDUCE": PickleMachine._reduce,
    "BUILD": PickleMachine._build,
    "BINPERSID": PickleMachine._persistent,                   # only where the grammar resolves them
    # Python 2 byte strings (genops hands them over as latin-1 text) become bytes.
    "SHORT_BINSTRING": lambda m, arg: m._push(arg.encode("latin-1")),
    "BINSTRING": lambda m, arg: m._push(arg.encode("latin-1")),
}
for _name in ("BININT", "BININT1", "BININT2", "BINFLOAT", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8",
              "SHORT_BINBYTES", "BINBYTES", "BINBYTES8", "BYTEARRAY8"):
    _HANDLERS[_name] = PickleMachine._push
_HANDLERS["LONG1"] = lambda m, arg: m._push(arg)              # at most 255 bytes: a bounded int
