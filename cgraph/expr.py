"""Expressions: a node written as a formula (``f: (x + y) * z``), read into nodes of registered ops.

The text is bounded in length, operators and bracket depth, then parsed by Python's ``ast``
module in eval mode (never evaluated) and walked with a whitelist: names, numbers, the
operators ``+ - * / ** @`` and unary minus, calls of ops by name with literal keyword
attributes, and indexing with literal keys. Anything else is an error at its token.

A ``#`` starts a comment, which ends at its line. Numbers are written in decimal
(NUMBER below); Python's other spellings (``0x10``, ``1_000``, ``1j``) are errors.

Each sub-expression that is not a bare name or number becomes a node of its own (a
``Part``), named by its text as ``ast.unparse`` writes it: ``x @ W1`` for an operator,
``exp(-z)`` for a call, ``w[0]`` for indexing; where that text is longer than NAME_LIMIT
characters, by the node's name and a number (``f#2``). Numbers become constants named by
their text (``2``, ``0.5``, ``-1``), and so does a sub-expression of numbers alone, computed
as the graph would compute it (``2 * 1`` is the constant ``2``). None of these names is an
identifier, so they never collide with the names of a file's inputs and nodes; the same
text anywhere in a graph is the same node. The root of a formula (unary ``+`` aside) is
the node itself, named by the node's name.
"""

from __future__ import annotations

import ast
import functools
import keyword
import math
import re
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .arrays import suggest
from .errors import CgraphError, Position, TextPosition
from .layers import REGISTRY, read_key
from .yamlsafe import YMap, YSeq

MAX_LENGTH = 10_000  # characters in one expression
MAX_OPERATORS = 1_000  # operator characters in one expression: bounds the depth of the parse
MAX_BRACKETS = 64  # brackets open at once
MAX_DEPTH = 100  # operations inside one another
NAME_LIMIT = 60  # longer sub-expressions are named NODE#N
MAX_DIGITS = 100  # in one number

BINARY_OPS: dict[type, str] = {
    ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.Pow: "pow", ast.MatMult: "matmul",
}
OPERATOR_TEXT: dict[type, str] = {
    ast.FloorDiv: "//", ast.Mod: "%", ast.LShift: "<<", ast.RShift: ">>", ast.BitOr: "|", ast.BitXor: "^",
    ast.BitAnd: "&", ast.Invert: "~", ast.Not: "not",
}
LITERAL_WORDS = {"true": True, "false": False, "null": None}  # as in YAML, besides Python's True, False, None
REFUSED: dict[type, str] = {
    ast.Attribute: "attribute access ('.') is not allowed",
    ast.Lambda: "lambda is not allowed",
    ast.Compare: "comparisons are not allowed",
    ast.BoolOp: "'and' and 'or' are not allowed",
    ast.IfExp: "'if ... else' is not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "comprehensions are not allowed",
    ast.JoinedStr: "strings are not allowed",
    ast.NamedExpr: "':=' is not allowed",
    ast.Starred: "'*' unpacking is not allowed",
    ast.Dict: "mappings are not allowed",
    ast.Set: "sets are not allowed",
}
ALLOWED = "names, numbers, + - * / ** @, calls of ops like exp(x) or sum(x, axis=0), and indexing like x[0]"

_NAME = r"[A-Za-z_]\w*"
_NUMBER = r"(?:(?:0|[1-9][0-9]*)(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
NUMBER = re.compile(_NUMBER + r"\Z", re.ASCII)  # the numbers a formula may hold: 0, 16, 2.5, .5, 5., 1e-3, 2E+10
NUMBER_RULE = "digits with an optional fraction and exponent, such as 16, 0.5, .5, 1e-3"
_ATOM = f"(?:{_NAME}|{_NUMBER})"
_SIMPLE_BINARY = re.compile(rf" *({_ATOM}) *(\*\*|[-+*/@]) *({_ATOM}) *\Z", re.ASCII)
_SIMPLE_CALL = re.compile(rf" *({_NAME})\( *({_NAME}) *(?:, *({_NAME}) *)?\) *\Z", re.ASCII)
_SYMBOLS = {"+": "add", "-": "sub", "*": "mul", "/": "div", "**": "pow", "@": "matmul"}
_OPERATOR_CHARS = re.compile(r"[-+*/@%&|^~<>=!]")
_LONG_NUMBER = re.compile(rf"[0-9]{{{MAX_DIGITS + 1},}}")
_COMMENT = re.compile(r"#[^\n\r]*")


@dataclass
class Part:
    """One node of an expression: its name, a body like a mapping node's (``{op, inputs, attrs...}``,
    with the positions of its pieces), and the position of its operator or op name."""

    name: str
    body: YMap
    pos: Position


@dataclass
class Expansion:
    """The nodes an expression becomes (the node itself last) and the constants it uses."""

    parts: list[Part]
    constants: dict[str, float] = field(default_factory=dict)

    def names_used(self) -> list[str]:
        """The names of inputs and nodes the expression refers to, in order of first use."""
        made = {part.name for part in self.parts}
        used = [arg for part in self.parts for arg in part.body["inputs"]]
        return [name for name in dict.fromkeys(used) if name not in made and name not in self.constants]


def simple(text: str) -> tuple[str, tuple[str, ...], dict[str, float], int] | None:
    """``(op, args, constants, where the op is)`` of an expression of one operator between two
    names or numbers, or of a call of an op with one or two names (``a * b``, ``x + 1``,
    ``exp(x)``); else None. Where the op is: the offset of its operator or name in the text.

    The fast path: the same result as :func:`expand`, without parsing.
    """
    match = _SIMPLE_BINARY.match(text)
    if match:
        left, symbol, right = match.groups()
        args, constants = [], {}
        for atom in (left, right):
            if not atom[0].isalpha() and atom[0] != "_":
                value = float(atom)
                if len(atom) > MAX_DIGITS or not math.isfinite(value):
                    return None  # for the error the full reading gives
                atom = repr(int(atom) if atom.isdigit() else value)
                constants[atom] = value
            elif keyword.iskeyword(atom):
                return None
            args.append(atom)
        return _SYMBOLS[symbol], tuple(args), constants, match.start(2)
    match = _SIMPLE_CALL.match(text)
    if match:
        names = tuple(name for name in match.groups() if name is not None)
        if any(keyword.iskeyword(name) for name in names):
            return None
        return names[0], names[1:], {}, match.start(1)
    return None


def expand(name: str, text: str, pos: Position, texts: dict[str, str] | None = None) -> Expansion:
    """The nodes that node ``name``'s expression ``text`` becomes. ``pos`` is where the text stood
    (a TextPosition locates errors inside it); ``texts`` maps the sub-expressions already made
    elsewhere in the graph to their names, and is added to."""
    return _Reader(name, text, pos, {} if texts is None else texts).read()


def split_assignment(text: str, number: int) -> tuple[str, Position, str, TextPosition]:
    """``NAME = EXPR`` from the command line as NAME, where it is, EXPR and where that is
    (``<expr N>:1:COL``); a bare EXPR is named ``out``."""
    source = f"<expr {number}>"
    match = re.match(r"\s*([^\W\d]\w*)\s*=(?!=)\s*", text)
    name, name_col, start = (match.group(1), match.start(1), match.end()) if match else ("out", 0, 0)
    lines = tuple((index + 1, (start if index == 0 else 0) + 1) for index in range(text[start:].count("\n") + 1))
    return name, Position(source, 1, name_col + 1), text[start:], TextPosition(source, 1, start + 1, lines)


class _Reader:
    """Reads one expression into Parts; errors are CgraphErrors at the offending token."""

    def __init__(self, name: str, text: str, pos: Position, texts: dict[str, str]) -> None:
        self.name = name
        self.text = _COMMENT.sub(lambda match: " " * len(match.group()), text)  # offsets kept for positions
        self.pos = pos
        self.texts = texts
        self.expansion = Expansion([])
        self.count = 0  # parts named NAME#N so far
        self.root: ast.AST | None = None
        flat = self.text.replace("\n", " ").replace("\r", " ").replace("\t", " ")
        self.source = flat.lstrip(" ")
        self.lead = len(flat) - len(self.source)
        self.encoded = None if self.source.isascii() else self.source.encode()

    # --- positions ---

    def at(self, offset: int) -> Position:
        """The position of character ``offset`` of the text."""
        if not isinstance(self.pos, TextPosition) or not self.pos.lines:
            return self.pos
        line = self.text.count("\n", 0, offset) + 1
        return self.pos.at(line, offset - (self.text.rfind("\n", 0, offset) + 1))

    def offset(self, col_offset: int) -> int:
        """The text's character offset of a column ``ast`` gives (UTF-8 bytes into the parsed line)."""
        if self.encoded is not None:
            col_offset = len(self.encoded[:col_offset].decode("utf-8", errors="ignore"))
        return self.lead + col_offset

    def where(self, node: ast.AST) -> Position:
        return self.at(self.offset(node.col_offset))

    def fail(self, message: str, at: ast.AST | Position) -> CgraphError:
        pos = at if isinstance(at, Position) else self.where(at)
        return CgraphError(f"node '{self.name}': {message}", pos)

    def source_of(self, node: ast.AST) -> str:
        start, end = self.offset(node.col_offset), self.offset(node.end_col_offset)
        return self.text[start:end]

    # --- reading ---

    def read(self) -> Expansion:
        if not self.source.strip():
            raise self.fail("the expression is empty", self.pos)
        self._bound()
        try:
            with warnings.catch_warnings():  # Python's warnings about odd text are errors here, or nothing
                warnings.simplefilter("ignore")
                tree = ast.parse(self.source, mode="eval")
        except SyntaxError as error:
            column = error.offset - 1 if error.lineno == 1 and error.offset else len(self.source)
            if "leading zeros" in error.msg:  # Python's own advice (an 0o prefix) is refused here too
                number = re.match(r"[\w.]*", self.source[column:]).group()
                raise self.fail(f"'{number[:40]}' is not a number as formulas write them: {NUMBER_RULE}",
                                self.at(self.lead + column)) from None
            raise self.fail(f"invalid expression: {error.msg}", self.at(self.lead + column)) from None
        except (ValueError, MemoryError, RecursionError):
            raise self.fail("invalid expression: too complex", self.pos) from None
        root = tree.body
        while isinstance(root, ast.UnaryOp) and isinstance(root.op, ast.UAdd):
            root = root.operand  # +f is f: the node is what it applies to
        self.root = root
        self._bound_depth(root)
        self._check_numbers(root)
        if isinstance(root, ast.Name):
            name = self.source_of(root)
            raise self.fail(f"the expression is only the name '{name}': a node applies an op "
                            f"(such as exp({name}) or {name} * 2)", root)
        if isinstance(root, ast.Constant) and _is_number(root.value):
            raise self.fail("the expression is only a number: make it an input", root)
        self.visit(root)
        expansion = self.expansion
        used = {arg for part in expansion.parts for arg in part.body["inputs"]}
        expansion.constants = {name: value for name, value in expansion.constants.items() if name in used}  # not those folded away
        return expansion

    def _bound(self) -> None:
        """Refuse, before parsing, text too long, with too many operators or nested too deep."""
        if len(self.text) > MAX_LENGTH:
            raise self.fail(f"the expression has {len(self.text):,} characters, over the limit of {MAX_LENGTH:,}", self.pos)
        operators = _OPERATOR_CHARS.findall(self.text)
        if len(operators) > MAX_OPERATORS:
            raise self.fail(f"the expression has {len(operators):,} operators, over the limit of {MAX_OPERATORS:,}",
                            self.pos)
        digits = _LONG_NUMBER.search(self.text)
        if digits:
            raise self.fail(f"a number has more than {MAX_DIGITS} digits", self.at(digits.start()))
        depth = 0
        for index, char in enumerate(self.text):
            if char < " " and char not in "\n\r\t":
                raise self.fail(f"the expression holds the control character U+{ord(char):04X}", self.at(index))
            if char in "([{":
                depth += 1
                if depth > MAX_BRACKETS:
                    raise self.fail(f"the expression is nested more than {MAX_BRACKETS} brackets deep", self.at(index))
            elif char in ")]}":
                depth -= 1

    def _bound_depth(self, root: ast.AST) -> None:
        """Refuse a tree deeper than MAX_DEPTH, at its first node too deep, before anything recurses over it."""
        stack = [(root, 0)]
        while stack:
            node, depth = stack.pop()
            if depth > MAX_DEPTH:
                raise self.fail(f"the expression nests more than {MAX_DEPTH} operations inside one another", node)
            stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node) if hasattr(child, "col_offset"))

    def _check_numbers(self, root: ast.AST) -> None:
        """Refuse a number not written as NUMBER (``0x10``, ``1_000``, ``1j``, ``007``), at its column."""
        for node in ast.walk(root):
            if isinstance(node, ast.Constant) and type(node.value) in (int, float, complex):
                text = self.source_of(node)
                if not NUMBER.match(text):
                    raise self.fail(f"'{text[:40]}' is not a number as formulas write them: {NUMBER_RULE}", node)

    def visit(self, node: ast.AST) -> str:
        """The name of the value ``node`` computes: an input's or node's, a constant's, or a new Part's."""
        if isinstance(node, ast.Name):
            return self.source_of(node)
        if isinstance(node, ast.Constant) or _is_number(_literal(node)):
            return self.constant(node)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd):
            return self.visit(node.operand)
        if node is not self.root:
            made = self.texts.get(_text(node))
            if made is not None:  # the same sub-expression, made already here or in another node
                return made
        if isinstance(node, ast.BinOp):
            op = BINARY_OPS.get(type(node.op))
            if op is None:
                raise self.fail(f"operator '{OPERATOR_TEXT.get(type(node.op), '?')}' is not supported; the operators "
                                "are + - * / ** @", self.operator_position(node))
            args = [(self.visit(node.left), node.left), (self.visit(node.right), node.right)]
            return self.part(node, op, self.operator_position(node), args, {})
        if isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, ast.USub):
                raise self.fail(f"operator '{OPERATOR_TEXT[type(node.op)]}' is not supported; the operators "
                                "are + - * / ** @", node)
            return self.part(node, "neg", self.where(node), [(self.visit(node.operand), node.operand)], {})
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Subscript):
            key = self.key(node.slice)
            return self.part(node, "index", self.where(node), [(self.visit(node.value), node.value)],
                             {"key": (key, node.slice)})
        raise self.fail(self.refusal(node), node)

    def refusal(self, node: ast.AST) -> str:
        if isinstance(node, (ast.List, ast.Tuple)):
            return f"a list is not a value here: lists go in keyword attributes (sum(x, axis=[0, 1])); use {ALLOWED}"
        return f"{REFUSED.get(type(node), type(node).__name__ + ' is not allowed')}; use {ALLOWED}"

    def constant(self, node: ast.AST) -> str:
        value = _literal(node)
        if not _is_number(value):
            if isinstance(value, str) or isinstance(value, bytes):
                raise self.fail(f"strings are not allowed; use {ALLOWED}", node)
            raise self.fail(f"{_shown(value)} is not a number; only numbers are constants", node)
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise self.fail(f"the number {self.source_of(node)[:20]} is too large", node)
        name = repr(value)
        self.expansion.constants[name] = number
        return name

    def call(self, node: ast.Call) -> str:
        if not isinstance(node.func, ast.Name):
            raise self.fail("only ops can be called, by their names (exp(x), sum(x, axis=0))", node.func)
        attrs: dict[str, tuple[Any, ast.AST]] = {}
        for item in node.keywords:
            if item.arg is None:
                raise self.fail("'**' unpacking is not allowed", item)
            if item.arg in ("op", "inputs"):
                raise self.fail(f"'{item.arg}' is not an attribute; an op's inputs are its positional arguments", item)
            if item.arg in attrs:
                raise self.fail(f"the attribute '{item.arg}' is given twice", item)
            attrs[item.arg] = (self.literal(item.value), item)
        op = node.func.id
        layer = REGISTRY.get(op)
        if layer is None:
            attrs = {}  # the spec says the op is unknown, before anything about its keywords
        else:
            for key, (_, item) in attrs.items():
                if key not in layer.attrs:
                    known = ", ".join(layer.attrs) or "none"
                    raise self.fail(f"{op} has no attribute '{key}'{suggest(key, layer.attrs)}; its attributes: {known}",
                                    item)
            if len(node.args) > len(layer.args) and layer.attrs and not layer.variadic:
                raise self.fail(f"op '{op}' takes {layer.arity()}, got {len(node.args)}: attributes are keywords, "
                                f"such as {op}(x, {next(iter(layer.attrs))}=...)", node.args[len(layer.args)])
        args = []
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise self.fail(REFUSED[ast.Starred], arg)
            args.append((self.visit(arg), arg))
        return self.part(node, op, self.where(node.func), args, attrs)

    def literal(self, node: ast.AST) -> Any:
        """A keyword attribute's value: a number, true/false/null (or Python's spelling), or a list of them."""
        if isinstance(node, ast.Name) and node.id in LITERAL_WORDS:
            return LITERAL_WORDS[node.id]
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self.literal(item) for item in node.elts]
        value = _literal(node)
        if value is _NOT_LITERAL or isinstance(value, (str, bytes, complex)) or value is Ellipsis:
            raise self.fail("an attribute's value must be a number, a list of numbers, true, false or null", node)
        return value

    def key(self, node: ast.AST) -> str:
        """An index key's text, as the index op reads it."""
        items = node.elts if isinstance(node, ast.Tuple) else [node]
        parts = []
        for item in items:
            if isinstance(item, ast.Slice):
                bounds = [self.bound(bound) for bound in (item.lower, item.upper, item.step)]
                parts.append(":".join(bounds) if item.step is not None else ":".join(bounds[:2]))
            elif isinstance(item, ast.Constant) and item.value is Ellipsis:
                parts.append("...")
            else:
                parts.append(self.bound(item, required=True))
        try:
            return read_key(", ".join(parts))
        except ValueError as error:
            raise self.fail(f"index key {error}", node) from None

    def bound(self, node: ast.AST | None, required: bool = False) -> str:
        if node is None and not required:
            return ""
        value = _literal(node) if node is not None else _NOT_LITERAL
        if type(value) is not int:
            raise self.fail("an index must be an integer, a slice of integers like 1:3 or ::2, or ...", node)
        return str(value)

    def operator_position(self, node: ast.BinOp) -> Position:
        """Where a binary operator's symbol stands: the first character after its left operand
        that is not a space or a closing bracket."""
        index = self.offset(node.left.end_col_offset)
        while index < len(self.text) and self.text[index] in " )\n\t\r":
            index += 1
        return self.at(index)

    def part(self, node: ast.AST, op: str, op_pos: Position, args: list[tuple[str, ast.AST]],
             attrs: dict[str, tuple[Any, ast.AST]]) -> str:
        """A new Part for ``node``: the node itself where it is the whole expression, else named by its
        text; or, for a sub-expression of numbers alone, the constant it computes."""
        constants = self.expansion.constants
        if node is not self.root and all(arg in constants for arg, _ in args):
            value = fold(op, [constants[arg] for arg, _ in args], {key: value for key, (value, _) in attrs.items()})
            if value is not None:
                name = number_name(value)
                constants[name] = value
                return name
        pos = self.where(node)
        body = YMap(pos)
        body["op"] = op
        body.key_pos["op"] = body.value_pos["op"] = op_pos
        body["inputs"] = _sequence([arg for arg, _ in args], [self.where(arg_node) for _, arg_node in args], op_pos)
        body.key_pos["inputs"] = body.value_pos["inputs"] = op_pos
        for key, (value, key_node) in attrs.items():
            body[key] = value
            body.key_pos[key] = body.value_pos[key] = self.where(key_node)
        if node is self.root:
            name = self.name
        else:
            text = _text(node)
            if len(text) <= NAME_LIMIT:
                name = text
            else:
                self.count += 1
                name = f"{self.name}#{self.count}"
            self.texts[text] = name
        self.expansion.parts.append(Part(name, body, op_pos))
        return name


_NOT_LITERAL = object()


def fold(op: str, values: list[float], attrs: dict[str, Any]) -> float | None:
    """The value op ``op`` computes from the constants ``values``, as the graph's forward pass would
    compute it (Python floats through the layer); None where the op does not take them, or the
    value is not a finite number (the graph then says what is wrong, where it is)."""
    try:
        layer = REGISTRY[op](**attrs)
        if layer.out_shape(*[()] * len(values)) != ():
            return None
        with np.errstate(all="ignore"):
            number = float(layer.forward(*values))
    except (ValueError, TypeError, ArithmeticError):
        return None
    return number if math.isfinite(number) else None


def number_name(value: float) -> str:
    """A computed constant's name: its shortest text, as an integer where it is one (``2``, ``0.5``, ``-0.0``)."""
    if value.is_integer() and abs(value) < 2 ** 53 and not (value == 0 and math.copysign(1.0, value) < 0):
        return repr(int(value))
    return repr(value)


def _sequence(items: list[str], positions: list[Position], pos: Position) -> list[str]:
    """``items`` as a YSeq that remembers their ``positions``, or as a list where those are not known."""
    if any(item_pos.line is None for item_pos in positions):
        return items
    sequence = YSeq(pos)
    sequence.extend(items)
    sequence.item_lines.extend(item_pos.line for item_pos in positions)
    sequence.item_cols.extend(item_pos.col for item_pos in positions)
    return sequence


def _literal(node: ast.AST) -> Any:
    """The value of a number, a negated number, or a constant such as True; _NOT_LITERAL otherwise."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
        value = node.operand.value
        return -value if _is_number(value) else _NOT_LITERAL
    return _NOT_LITERAL


def _is_number(value: Any) -> bool:
    return type(value) in (int, float)


def _shown(value: Any) -> str:
    """A constant as YAML writes it: true, false, null."""
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else repr(value)


def _text(node: ast.AST) -> str:
    """A sub-expression's name: its text, written canonically."""
    return ast.unparse(node)


@functools.lru_cache(maxsize=4096)
def is_operation(name: str) -> bool:
    """Whether a node's name is the text of an operator's sub-expression (``x @ W1``, ``-dot``), which
    needs parentheses beside another operator; not a name, number, call or index."""
    if name.isidentifier():
        return False
    try:
        body = ast.parse(name, mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return isinstance(body, (ast.BinOp, ast.UnaryOp)) and not _is_number(_literal(body))
