"""YAML text as the service's ``sigs.k8s.io/yaml`` writes it (go-yaml v2 underneath).

The service marshals a RemediationRequest to JSON, decodes that into generic values and
encodes them with go-yaml v2: map keys in go-yaml's "natural" order, each string in the first
style that keeps its meaning (plain, then single-quoted, then double-quoted, a literal block for
multi-line text), long lines folded at 80 columns, sequences inside mappings not indented.
This module writes the same bytes for the values JSON can hold (mappings with string keys,
sequences, strings, numbers, booleans, null). PyYAML is not used: its emitter writes some
characters (astral-plane ones, NEL) differently.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

_BEST_INDENT = 2
_BEST_WIDTH = 80
_SIMPLE_KEY_MAX_BYTES = 128

_PLAIN, _SINGLE, _DOUBLE, _LITERAL = "plain", "single", "double", "literal"

#: Plain scalars that go-yaml's resolver reads as something other than a string.
_RESOLVED_WORDS = frozenset(
    [
        "y",
        "Y",
        "yes",
        "Yes",
        "YES",
        "true",
        "True",
        "TRUE",
        "on",
        "On",
        "ON",
        "n",
        "N",
        "no",
        "No",
        "NO",
        "false",
        "False",
        "FALSE",
        "off",
        "Off",
        "OFF",
        "~",
        "null",
        "Null",
        "NULL",
        ".nan",
        ".NaN",
        ".NAN",
        ".inf",
        ".Inf",
        ".INF",
        "+.inf",
        "+.Inf",
        "+.INF",
        "-.inf",
        "-.Inf",
        "-.INF",
    ]
)
_HINTED = frozenset("+-0123456789.")
_YAML_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_GO_DECIMAL_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
_GO_SPECIAL_FLOAT = re.compile(r"[-+]?(inf|infinity|nan)", re.IGNORECASE)
_BASE60_FLOAT = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?")
_STAMP_T = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})[Tt](\d{1,2}):(\d{1,2}):(\d{1,2})([.,]\d+)?(Z|[+-]\d{2}:\d{2})"
)
_STAMP_SPACE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2}) (\d{1,2}):(\d{1,2}):(\d{1,2})([.,]\d+)?")
_STAMP_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_BREAKS = frozenset("\r\n\x85\u2028\u2029")
_ESCAPES = {
    0x00: "0",
    0x07: "a",
    0x08: "b",
    0x09: "t",
    0x0A: "n",
    0x0B: "v",
    0x0C: "f",
    0x0D: "r",
    0x1B: "e",
    0x22: '"',
    0x5C: "\\",
    0x85: "N",
    0xA0: "_",
    0x2028: "L",
    0x2029: "P",
}


def dump(value: Any) -> str:
    """YAML for a JSON-like value, byte for byte as go-yaml v2 marshals it."""
    emitter = _Emitter()
    emitter.node(value, root=True)
    emitter.write_indent()  # the implicit document end
    if emitter.open_ended:
        emitter.write_indicator("...", need_whitespace=True)
        emitter.write_indent()
    return "".join(emitter.out)


# -- what a plain scalar would mean ----------------------------------------------------------


def _go_int(text: str, *, signed: bool) -> bool:
    """Whether Go's strconv.ParseInt/ParseUint(text, 0, 64) accepts ``text``."""
    body = text
    negative = False
    if body and body[0] in "+-":
        if not signed:
            return False
        negative = body[0] == "-"
        body = body[1:]
    base, digits = 10, body
    lower = body[:2].lower()
    if lower in ("0x", "0b", "0o"):
        base, digits = {"0x": 16, "0b": 2, "0o": 8}[lower], body[2:]
    elif len(body) > 1 and body[0] == "0":
        base, digits = 8, body[1:]
    if not digits:
        return False
    try:
        number = int(digits, base)
    except ValueError:
        return False
    if digits[0] in "+-_" or "_" in digits:
        return False
    if not signed:
        return number < 2**64
    return -(2**63) <= (-number if negative else number) < 2**63


def _go_float(text: str) -> bool:
    """Whether Go's strconv.ParseFloat(text, 64) accepts ``text`` (in range)."""
    if _GO_SPECIAL_FLOAT.fullmatch(text):
        return True
    if not _GO_DECIMAL_FLOAT.fullmatch(text):
        return False
    return math.isfinite(float(text))


def _days_in(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _valid_date(year: str, month: str, day: str) -> bool:
    m, d = int(month), int(day)
    return 1 <= m <= 12 and 1 <= d <= _days_in(int(year), m)


def _timestamp(text: str) -> bool:
    """Whether go-yaml's resolver reads ``text`` as a timestamp."""
    if len(text) < 5 or not text[:4].isdigit() or not text[:4].isascii() or text[4] != "-":
        return False
    for pattern in (_STAMP_T, _STAMP_SPACE):
        match = pattern.fullmatch(text)
        if match is not None:
            y, mo, d, h, mi, s = match.groups()[:6]
            return _valid_date(y, mo, d) and int(h) < 24 and int(mi) < 60 and int(s) < 60
    match = _STAMP_DATE.fullmatch(text)
    return match is not None and _valid_date(*match.groups())


def _resolves_to_string(text: str) -> bool:
    """Whether ``text``, written plain, reads back as the same string (go-yaml's resolve)."""
    if text == "" or text in _RESOLVED_WORDS:
        return False
    first = text[0]
    if first == ".":
        return not _go_float(text)
    if first not in _HINTED:
        return True
    if _timestamp(text):
        return False
    plain = text.replace("_", "")
    if _go_int(plain, signed=True) or _go_int(plain, signed=False):
        return False
    if _YAML_FLOAT.fullmatch(plain) and _go_float(plain):
        return False
    for prefix in ("0b", "-0b"):
        if plain.startswith(prefix) and _go_int(
            ("-" if prefix == "-0b" else "") + "0b" + plain[len(prefix) :], signed=True
        ):
            return False
    return True


def _base60_float(text: str) -> bool:
    if not text or not (text[0] in "+-" or "0" <= text[0] <= "9") or ":" not in text:
        return False
    return _BASE60_FLOAT.fullmatch(text) is not None


# -- key order -------------------------------------------------------------------------------


def _is_digit(char: str) -> bool:
    return unicodedata.category(char) == "Nd"


def _int64(value: int) -> int:
    """Wrap to a signed 64-bit integer, as Go's arithmetic does on overflow."""
    return (value + 2**63) % 2**64 - 2**63


def _key_less(a: str, b: str) -> bool:
    """go-yaml v2's order of string keys: letters by code point, runs of digits by value."""
    for i in range(min(len(a), len(b))):
        ca, cb = a[i], b[i]
        if ca == cb:
            continue
        la, lb = ca.isalpha(), cb.isalpha()
        if la and lb:
            return ca < cb
        if la or lb:
            return lb
        an = bn = 0
        if ca == "0" or cb == "0":
            j = i - 1
            while j >= 0 and _is_digit(a[j]):
                if a[j] != "0":
                    an = bn = 1
                    break
                j -= 1
        ai = i
        while ai < len(a) and _is_digit(a[ai]):
            an = _int64(an * 10 + ord(a[ai]) - 48)
            ai += 1
        bi = i
        while bi < len(b) and _is_digit(b[bi]):
            bn = _int64(bn * 10 + ord(b[bi]) - 48)
            bi += 1
        if an != bn:
            return an < bn
        if ai != bi:
            return ai < bi
        return ca < cb
    return len(a) < len(b)


def _compare(a: str, b: str) -> int:
    return -1 if _key_less(a, b) else 1 if _key_less(b, a) else 0


_KEY = functools.cmp_to_key(_compare)


# -- the emitter -----------------------------------------------------------------------------


def _printable(char: str) -> bool:
    code = ord(char)
    return (
        code == 0x0A
        or 0x20 <= code <= 0x7E
        or 0xA0 <= code <= 0xD7FF
        or (0xE000 <= code <= 0xFFFD and code != 0xFEFF)
    )


class _Analysis:
    __slots__ = ("block", "block_plain", "multiline", "single")

    def __init__(self, value: str) -> None:
        if not value:
            self.multiline, self.block_plain, self.single, self.block = False, True, True, False
            return
        block_indicators = value.startswith(("---", "..."))
        line_breaks = special = False
        leading_space = leading_break = trailing_space = trailing_break = False
        break_space = space_break = False
        previous_space = previous_break = False
        preceded_by_whitespace = True
        last = len(value) - 1
        for i, char in enumerate(value):
            followed_by_whitespace = i == last or value[i + 1] in " \t"
            if i == 0:
                if char in "#,[]{}&*!|>'\"%@`" or (char in "?:-" and followed_by_whitespace):
                    block_indicators = True
            elif (char == ":" and followed_by_whitespace) or (
                char == "#" and preceded_by_whitespace
            ):
                block_indicators = True
            if not _printable(char):
                special = True
            if char == " ":
                leading_space = leading_space or i == 0
                trailing_space = trailing_space or i == last
                break_space = break_space or previous_break
                previous_space, previous_break = True, False
            elif char in _BREAKS:
                line_breaks = True
                leading_break = leading_break or i == 0
                trailing_break = trailing_break or i == last
                space_break = space_break or previous_space
                previous_space, previous_break = False, True
            else:
                previous_space = previous_break = False
            preceded_by_whitespace = char in " \t" or char in _BREAKS or char == "\x00"
        self.multiline = line_breaks
        self.block_plain = self.single = self.block = True
        if leading_space or leading_break or trailing_space or trailing_break:
            self.block_plain = False
        if trailing_space:
            self.block = False
        if break_space:
            self.block_plain = self.single = False
        if space_break or special:
            self.block_plain = self.single = self.block = False
        if line_breaks or block_indicators:
            self.block_plain = False


class _Emitter:
    def __init__(self) -> None:
        self.out: list[str] = []
        self.column = 0
        self.whitespace = True
        self.indention = True
        self.open_ended = False
        self.indent = -1
        self.indents: list[int] = []
        self.mapping_context = False

    # -- low-level writes

    def put(self, text: str) -> None:
        self.out.append(text)
        self.column += len(text)

    def put_break(self) -> None:
        self.out.append("\n")
        self.column = 0

    def write_break(self, char: str) -> None:
        if char == "\n":
            self.put_break()
        else:
            self.out.append(char)
            self.column = 0

    def write_indent(self) -> None:
        indent = max(self.indent, 0)
        if (
            not self.indention
            or self.column > indent
            or (self.column == indent and not self.whitespace)
        ):
            self.put_break()
        if self.column < indent:
            self.put(" " * (indent - self.column))
        self.whitespace = self.indention = True

    def write_indicator(
        self,
        indicator: str,
        *,
        need_whitespace: bool,
        is_whitespace: bool = False,
        is_indention: bool = False,
    ) -> None:
        if need_whitespace and not self.whitespace:
            self.put(" ")
        self.put(indicator)
        self.whitespace = is_whitespace
        self.indention = self.indention and is_indention
        self.open_ended = False

    def increase_indent(self, *, flow: bool, indentless: bool) -> None:
        self.indents.append(self.indent)
        if self.indent < 0:
            self.indent = _BEST_INDENT if flow else 0
        elif not indentless:
            self.indent += _BEST_INDENT

    def decrease_indent(self) -> None:
        self.indent = self.indents.pop()

    # -- nodes

    def node(
        self,
        value: Any,
        *,
        root: bool = False,
        mapping: bool = False,
        simple_key: bool = False,
    ) -> None:
        self.mapping_context = mapping
        if isinstance(value, Mapping):
            self.mapping(value)
        elif isinstance(value, Sequence) and not isinstance(value, str):
            self.sequence(value)
        else:
            self.scalar(value, root=root, simple_key=simple_key)

    def mapping(self, value: Mapping[str, Any]) -> None:
        if not value:
            self.write_indicator("{", need_whitespace=True, is_whitespace=True)
            self.write_indicator("}", need_whitespace=False)
            return
        self.increase_indent(flow=False, indentless=False)
        for key in sorted(value, key=_KEY):
            self.write_indent()
            text = _scalar_text(key)
            if len(text[0].encode()) <= _SIMPLE_KEY_MAX_BYTES and not _Analysis(text[0]).multiline:
                self.node(key, mapping=True, simple_key=True)
                self.write_indicator(":", need_whitespace=False)
            else:
                self.write_indicator("?", need_whitespace=True, is_indention=True)
                self.node(key, mapping=True)
                self.write_indent()
                self.write_indicator(":", need_whitespace=True, is_indention=True)
            self.node(value[key], mapping=True)
        self.decrease_indent()

    def sequence(self, value: Sequence[Any]) -> None:
        if not value:
            self.write_indicator("[", need_whitespace=True, is_whitespace=True)
            self.write_indicator("]", need_whitespace=False)
            return
        self.increase_indent(flow=False, indentless=self.mapping_context and not self.indention)
        for item in value:
            self.write_indent()
            self.write_indicator("-", need_whitespace=True, is_indention=True)
            self.node(item)
        self.decrease_indent()

    def scalar(self, value: Any, *, root: bool, simple_key: bool) -> None:
        text, requested = _scalar_text(value)
        analysis = _Analysis(text)
        style = requested
        if simple_key and analysis.multiline:
            style = _DOUBLE
        if style == _PLAIN and (not analysis.block_plain or (not text and simple_key)):
            style = _SINGLE
        if style == _SINGLE and not analysis.single:
            style = _DOUBLE
        if style == _LITERAL and (not analysis.block or simple_key):
            style = _DOUBLE
        self.increase_indent(flow=True, indentless=False)
        breaks_allowed = not simple_key
        if style == _PLAIN:
            self.write_plain(text, breaks_allowed)
            if root:
                self.open_ended = True
        elif style == _SINGLE:
            self.write_single(text, breaks_allowed)
        elif style == _DOUBLE:
            self.write_double(text, breaks_allowed)
        else:
            self.write_literal(text)
        self.decrease_indent()

    # -- scalar writers

    def write_plain(self, text: str, breaks_allowed: bool) -> None:
        if not self.whitespace:
            self.put(" ")
        spaces = breaks = False
        for i, char in enumerate(text):
            if char == " ":
                if (
                    breaks_allowed
                    and not spaces
                    and self.column > _BEST_WIDTH
                    and text[i + 1 : i + 2] != " "
                ):
                    self.write_indent()
                else:
                    self.put(char)
                spaces = True
            elif char in _BREAKS:
                if not breaks and char == "\n":
                    self.put_break()
                self.write_break(char)
                self.indention = breaks = True
            else:
                if breaks:
                    self.write_indent()
                self.put(char)
                self.indention = spaces = breaks = False
        self.whitespace = self.indention = False

    def write_single(self, text: str, breaks_allowed: bool) -> None:
        self.write_indicator("'", need_whitespace=True)
        spaces = breaks = False
        last = len(text) - 1
        for i, char in enumerate(text):
            if char == " ":
                if (
                    breaks_allowed
                    and not spaces
                    and self.column > _BEST_WIDTH
                    and 0 < i < last
                    and text[i + 1] != " "
                ):
                    self.write_indent()
                else:
                    self.put(char)
                spaces = True
            elif char in _BREAKS:
                if not breaks and char == "\n":
                    self.put_break()
                self.write_break(char)
                self.indention = breaks = True
            else:
                if breaks:
                    self.write_indent()
                if char == "'":
                    self.put("'")
                self.put(char)
                self.indention = spaces = breaks = False
        self.write_indicator("'", need_whitespace=False)
        self.whitespace = self.indention = False

    def write_double(self, text: str, breaks_allowed: bool) -> None:
        self.write_indicator('"', need_whitespace=True)
        spaces = False
        last = len(text) - 1
        for i, char in enumerate(text):
            code = ord(char)
            if not _printable(char) or code == 0xFEFF or char in _BREAKS or char in '"\\':
                short = _ESCAPES.get(code)
                if short is not None:
                    self.put("\\" + short)
                elif code <= 0xFF:
                    self.put(f"\\x{code:02X}")
                elif code <= 0xFFFF:
                    self.put(f"\\u{code:04X}")
                else:
                    self.put(f"\\U{code:08X}")
                spaces = False
            elif char == " ":
                if breaks_allowed and not spaces and self.column > _BEST_WIDTH and 0 < i < last:
                    self.write_indent()
                    if text[i + 1] == " ":
                        self.put("\\")
                else:
                    self.put(char)
                spaces = True
            else:
                self.put(char)
                spaces = False
        self.write_indicator('"', need_whitespace=False)
        self.whitespace = self.indention = False

    def write_literal(self, text: str) -> None:
        self.write_indicator("|", need_whitespace=True)
        if text[:1] == " " or text[:1] in _BREAKS:
            self.write_indicator(str(_BEST_INDENT), need_whitespace=False)
        chomp = ""
        if text[-1:] not in _BREAKS:
            chomp = "-"
        elif len(text) == 1 or text[-2] in _BREAKS:
            chomp = "+"
        if chomp:
            self.write_indicator(chomp, need_whitespace=False)
        self.put_break()
        self.indention = self.whitespace = True
        breaks = True
        for char in text:
            if char in _BREAKS:
                self.write_break(char)
                self.indention = breaks = True
            else:
                if breaks:
                    self.write_indent()
                self.put(char)
                self.indention = breaks = False


def _scalar_text(value: Any) -> tuple[str, str]:
    """The text of a scalar and the style go-yaml's encoder asks for."""
    if value is None:
        return "null", _PLAIN
    if value is True or value is False:
        return ("true" if value else "false"), _PLAIN
    if isinstance(value, int):
        return str(value), _PLAIN
    if isinstance(value, float):
        return _float_text(value), _PLAIN
    if not isinstance(value, str):
        raise TypeError(f"{type(value).__name__} is not a JSON value")
    if "\n" in value:
        return value, _LITERAL
    if _resolves_to_string(value) and not _base60_float(value):
        return value, _PLAIN
    return value, _DOUBLE


def _float_text(value: float) -> str:
    """go-yaml's float: strconv.FormatFloat(f, 'g', -1, 64), and its words for the specials."""
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits))
    head = "-" if sign else ""
    power = len(text) + exponent - 1
    if power < -4 or power >= 6:  # 'g' with the shortest digits decides at precision 6
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{head}{mantissa}e{'-' if power < 0 else '+'}{abs(power):02d}"
    point = power + 1
    if point <= 0:
        return f"{head}0.{'0' * -point}{text}"
    if point >= len(text):
        return head + text + "0" * (point - len(text))
    return f"{head}{text[:point]}.{text[point:]}"
