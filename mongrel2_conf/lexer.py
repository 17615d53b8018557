"""Split m2sh config text into tokens, the way m2sh's own lexer (``lexer.rl``) does.

Tokens: quoted strings (single or double quotes; a backslash keeps the next character, and the
text is kept raw, escapes and all, as m2sh keeps it), numbers (``digit+``), class names (a
capital letter then letters only, such as ``Server``), other names, and ``= { } [ ] ( ) , :``.
``#`` starts a comment that runs to the end of the line. Anything else is an error.

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

from mongrel2_conf.errors import ConfigError, Position


class Kind(Enum):
    """The kind of a token (m2sh's token names in the comments)."""

    STRING = "a string"  # QSTRING
    NUMBER = "a number"  # NUMBER
    CLASS = "a class name"  # CLASS
    NAME = "a name"  # IDENT
    EQUALS = "'='"
    LBRACE = "'{'"
    RBRACE = "'}'"
    LBRACKET = "'['"
    RBRACKET = "']'"
    LPAREN = "'('"
    RPAREN = "')'"
    COMMA = "','"
    COLON = "':'"
    END = "the end of the file"


@dataclass(frozen=True)
class Token:
    """One token: its kind, its text (a string's text has no quotes), and where it starts."""

    kind: Kind
    text: str
    pos: Position


PUNCTUATION = {
    "=": Kind.EQUALS,
    "{": Kind.LBRACE,
    "}": Kind.RBRACE,
    "[": Kind.LBRACKET,
    "]": Kind.RBRACKET,
    "(": Kind.LPAREN,
    ")": Kind.RPAREN,
    ",": Kind.COMMA,
    ":": Kind.COLON,
}
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CLASS = re.compile(r"[A-Z][A-Za-z]+")
_NUMBER = re.compile(r"[0-9]+")
_SPACE = " \t\v\f\r"
MAX_DIGITS = 18  # every number fits a signed 64-bit integer, as m2sh's strtol wants


def tokenize(text: str, file: str = "<string>") -> Iterator[Token]:
    """Yield the tokens of ``text``, then one ``Kind.END`` token.

    Raises:
        ConfigError: an unterminated string or a character m2sh does not accept.
    """
    scanner = _Scanner(text, file)
    while (token := scanner.next_token()) is not None:
        yield token
    yield Token(Kind.END, "", scanner.position(len(text)))


class _Scanner:
    def __init__(self, text: str, file: str) -> None:
        self.text = text
        self.file = file
        self.offset = 0
        self.line = 1
        self.line_start = 0
        self.counted = 0

    def position(self, offset: int) -> Position:
        """The position of ``offset``; offsets must not decrease from call to call."""
        newlines = self.text.count("\n", self.counted, offset)
        if newlines:
            self.line += newlines
            self.line_start = self.text.rfind("\n", self.counted, offset) + 1
        self.counted = offset
        return Position(self.file, self.line, offset - self.line_start + 1)

    def next_token(self) -> Token | None:
        text = self.text
        while self.offset < len(text):
            char = text[self.offset]
            if char in _SPACE or char == "\n":
                self.offset += 1
            elif char == "#":
                end = text.find("\n", self.offset)
                self.offset = len(text) if end < 0 else end
            else:
                return self._token(char)
        return None

    def _token(self, char: str) -> Token:
        start = self.offset
        if char in PUNCTUATION:
            self.offset += 1
            return Token(PUNCTUATION[char], char, self.position(start))
        if char in "\"'":
            return self._string(char)
        if match := _NUMBER.match(self.text, start):
            if len(match.group().lstrip("0")) > MAX_DIGITS:
                raise ConfigError(f"number longer than {MAX_DIGITS} digits", self.position(start))
            return self._take(Kind.NUMBER, match.group())
        if match := _WORD.match(self.text, start):
            word = match.group()
            as_class = _CLASS.match(word)
            is_class = as_class is not None and as_class.end() == len(word)
            return self._take(Kind.CLASS if is_class else Kind.NAME, word)
        raise ConfigError(f"invalid character {char!r}", self.position(start))

    def _take(self, kind: Kind, word: str) -> Token:
        start = self.offset
        self.offset += len(word)
        return Token(kind, word, self.position(start))

    def _string(self, quote: str) -> Token:
        start = self.offset
        index = start + 1
        while index < len(self.text):
            char = self.text[index]
            if char == "\\":
                index += 2
                continue
            if char == quote:
                self.offset = index + 1
                return Token(Kind.STRING, self.text[start + 1 : index], self.position(start))
            index += 1
        raise ConfigError(f"unterminated string (opened with {quote})", self.position(start))
