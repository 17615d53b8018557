"""Parse m2sh's config language into a syntax tree (``tree``), never executing anything.

The grammar is m2sh's (``parser.y``)::

    config     := assignment+
    assignment := NAME '=' value
    value      := STRING | NUMBER | CLASS '(' [','] param ([','] param)* ')'
                | '[' [','] value ([','] value)* ']' | '{' [','] pair ([','] pair)* '}' | NAME
    param      := NAME '=' value
    pair       := STRING ':' value

Commas between elements are optional, one may even come first, but a trailing comma or two
commas in a row are syntax errors for m2sh, so they are errors here too. A key repeated in one
call, hash or at the top level is an error (m2sh silently keeps the last one).

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from mongrel2_conf.errors import ConfigError, Position
from mongrel2_conf.lexer import Kind, Token, tokenize
from mongrel2_conf.tree import (
    Assignment,
    Call,
    Document,
    Hash,
    ListNode,
    Node,
    Number,
    Pair,
    Param,
    Ref,
    String,
)

T = TypeVar("T", Assignment, Param, Pair, Node)

_CLOSER = {Kind.RPAREN: "')'", Kind.RBRACKET: "']'", Kind.RBRACE: "'}'"}
VALUE_KINDS = "a string, a number, Class(...), [list], {hash} or a name"
MAX_DEPTH = 64


def parse(text: str, file: str = "<string>") -> Document:
    """Parse config ``text`` (read from ``file``, used in positions) into a Document.

    Raises:
        ConfigError: a lexical or syntax error, or a repeated key, with its position.
    """
    return _Parser(text, file).document()


def describe(token: Token) -> str:
    """How an error message names a token: ``name 'foo'``, ``')'``, ``the end of the file``."""
    if token.kind in (Kind.STRING, Kind.NUMBER, Kind.CLASS, Kind.NAME):
        return f"{token.kind.value} {token.text!r}"
    return str(token.kind.value)


class _Parser:
    def __init__(self, text: str, file: str) -> None:
        self.file = file
        # Lazily, so that a syntax error is reported before a bad character further on.
        self.tokens = tokenize(text, file)
        self.next: Token | None = None
        self.depth = 0

    @property
    def peek(self) -> Token:
        if self.next is None:
            self.next = next(self.tokens)
        return self.next

    def advance(self) -> Token:
        token = self.peek
        if token.kind is not Kind.END:
            self.next = None
        return token

    def expect(self, kind: Kind, what: str) -> Token:
        token = self.advance()
        if token.kind is not kind:
            raise ConfigError(f"expected {what}, found {describe(token)}", token.pos)
        return token

    def document(self) -> Document:
        assignments: list[Assignment] = []
        while self.peek.kind is not Kind.END:
            assignments.append(self.assignment())
        if not assignments:
            raise ConfigError(
                "the config is empty: it needs at least 'servers = [...]'", self.peek.pos
            )
        _no_repeats([(a.name, a.pos) for a in assignments], "name")
        return Document(self.file, tuple(assignments))

    def assignment(self) -> Assignment:
        name = self._name("a name to assign (NAME = value)")
        self.expect(Kind.EQUALS, f"'=' after {name.text!r}")
        return Assignment(name.text, self.value(), name.pos)

    def _name(self, what: str) -> Token:
        token = self.advance()
        if token.kind is Kind.CLASS:
            raise ConfigError(
                f"expected {what}, found class name {token.text!r} (a capital letter followed "
                "only by letters makes a class name; use lower case or add '_' or a digit)",
                token.pos,
            )
        if token.kind is not Kind.NAME:
            raise ConfigError(f"expected {what}, found {describe(token)}", token.pos)
        return token

    def value(self) -> Node:
        token = self.advance()
        if token.kind in (Kind.CLASS, Kind.LBRACKET, Kind.LBRACE):
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise ConfigError(f"values nest deeper than {MAX_DEPTH} levels", token.pos)
            try:
                return self._compound(token)
            finally:
                self.depth -= 1
        if token.kind is Kind.STRING:
            return String(token.text, token.pos)
        if token.kind is Kind.NUMBER:
            return Number(token.text, token.pos)
        if token.kind is Kind.NAME:
            return Ref(token.text, token.pos)
        raise ConfigError(f"expected a value ({VALUE_KINDS}), found {describe(token)}", token.pos)

    def _compound(self, token: Token) -> Node:
        if token.kind is Kind.CLASS:
            return self.call(token)
        if token.kind is Kind.LBRACKET:
            return ListNode(tuple(self.sequence(token, Kind.RBRACKET, self.value)), token.pos)
        pairs = self.sequence(token, Kind.RBRACE, self.pair)
        _no_repeats([(p.key, p.pos) for p in pairs], "key")
        return Hash(tuple(pairs), token.pos)

    def call(self, cls: Token) -> Call:
        opener = self.expect(Kind.LPAREN, f"'(' after class name {cls.text!r}")
        params = self.sequence(opener, Kind.RPAREN, self.param)
        _no_repeats([(p.name, p.pos) for p in params], "parameter")
        return Call(cls.text, tuple(params), cls.pos)

    def param(self) -> Param:
        name = self._name("a parameter name (name=value)")
        self.expect(Kind.EQUALS, f"'=' after parameter {name.text!r}")
        return Param(name.text, self.value(), name.pos)

    def pair(self) -> Pair:
        key = self.advance()
        if key.kind is not Kind.STRING:
            raise ConfigError(
                f'expected a quoted key ("key": value), found {describe(key)}', key.pos
            )
        self.expect(Kind.COLON, f"':' after key {key.text!r}")
        return Pair(key.text, self.value(), key.pos)

    def sequence(self, opener: Token, close: Kind, element: Callable[[], T]) -> list[T]:
        items: list[T] = []
        while True:
            token = self.peek
            if token.kind is close:
                self.advance()
                return items
            if token.kind is Kind.COMMA:
                self.advance()
                self._after_comma(token, close)
            elif token.kind is Kind.END:
                at = opener.pos
                closer = _CLOSER[close]
                message = f"missing {closer} to close the {opener.text!r} at {at.line}:{at.column}"
                raise ConfigError(message, token.pos)
            items.append(element())

    def _after_comma(self, comma: Token, close: Kind) -> None:
        token = self.peek
        if token.kind is close:
            raise ConfigError(
                f"trailing comma before {_CLOSER[close]} (m2sh rejects trailing commas)", comma.pos
            )
        if token.kind is Kind.COMMA:
            raise ConfigError("two commas in a row", token.pos)


def _no_repeats(keys: list[tuple[str, Position]], what: str) -> None:
    seen: dict[str, Position] = {}
    for key, pos in keys:
        if key in seen:
            first = seen[key]
            raise ConfigError(f"{what} {key!r} is repeated (first at line {first.line})", pos)
        seen[key] = pos
