"""mongrel2_conf lexer and parser: m2sh's tokens and grammar, positions, syntax errors."""

from __future__ import annotations

import pytest

from mongrel2_conf import ConfigError
from mongrel2_conf.lexer import Kind, tokenize
from mongrel2_conf.parser import parse
from mongrel2_conf.tree import Call, Document, Hash, ListNode, Node, Number, Ref, String


def value_of(doc: Document, name: str) -> Node:
    """The value assigned to ``name`` (which must be assigned)."""
    assignment = doc.lookup(name)
    assert assignment is not None, name
    return assignment.value


def param_value(call: Call, name: str) -> Node:
    """The value of ``call``'s parameter ``name`` (which must be given)."""
    param = call.param(name)
    assert param is not None, name
    return param.value


def kinds(text: str) -> list[tuple[Kind, str]]:
    return [(t.kind, t.text) for t in tokenize(text)][:-1]


@pytest.mark.parametrize(
    ("word", "kind"),
    [
        ("Server", Kind.CLASS),
        ("Dir", Kind.CLASS),
        ("A", Kind.NAME),  # a class name needs a second letter
        ("Handler2", Kind.NAME),  # digits make it a name
        ("Main_app", Kind.NAME),
        ("main", Kind.NAME),
        ("_x9", Kind.NAME),
    ],
)
def test_class_tokens_are_a_capital_then_only_letters(word, kind):
    assert kinds(word) == [(kind, word)]


def test_numbers_keep_their_text_and_split_from_following_letters():
    assert kinds("0080abc") == [(Kind.NUMBER, "0080"), (Kind.NAME, "abc")]


def test_strings_are_raw_between_either_quote():
    assert kinds(r"""'it\'s' "a\"b" "(.*\.txt)$" """) == [
        (Kind.STRING, r"it\'s"),
        (Kind.STRING, r"a\"b"),
        (Kind.STRING, r"(.*\.txt)$"),
    ]


def test_comment_runs_to_the_end_of_the_line_and_may_end_the_file():
    assert kinds("a = 1 # x = [\nb = 2 # no newline") == [
        (Kind.NAME, "a"), (Kind.EQUALS, "="), (Kind.NUMBER, "1"),
        (Kind.NAME, "b"), (Kind.EQUALS, "="), (Kind.NUMBER, "2"),
    ]  # fmt: skip


def test_positions_are_one_based_lines_and_columns_even_after_multiline_strings():
    tokens = list(tokenize('a = "x\ny"\n  b = 1', "f.conf"))
    names = [t for t in tokens if t.kind is Kind.NAME]
    assert [(t.pos.line, t.pos.column) for t in names] == [(1, 1), (3, 3)]
    assert str(names[1].pos) == "f.conf:3:3"


def test_parse_builds_values_of_every_kind_with_positions():
    doc = parse('x = Proxy(addr="h", port=80)\ny = [x, 1, {"k": "v"}]\n', "f.conf")
    call = value_of(doc, "x")
    assert isinstance(call, Call)
    assert call.cls == "Proxy"
    assert isinstance(param_value(call, "addr"), String)
    assert isinstance(param_value(call, "port"), Number)
    items = value_of(doc, "y")
    assert isinstance(items, ListNode)
    assert [type(i) for i in items.items] == [Ref, Number, Hash]
    assert (items.items[2].pos.line, items.items[2].pos.column) == (2, 12)


def plain(node):
    """A node as plain Python values, positions left out (nodes compare by identity)."""
    if isinstance(node, String):
        return node.value
    if isinstance(node, Number):
        return node.value
    if isinstance(node, Ref):
        return ("ref", node.name)
    if isinstance(node, Call):
        return (node.cls, [(p.name, plain(p.value)) for p in node.params])
    if isinstance(node, ListNode):
        return [plain(item) for item in node.items]
    assert isinstance(node, Hash)
    return ("hash", [(pair.key, plain(pair.value)) for pair in node.pairs])


PROXY = ("Proxy", [("addr", "h"), ("port", 80)])


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('x = Proxy(addr="h" port=80)', PROXY),  # no commas
        ('x = Proxy(, addr="h", port=80)', PROXY),  # a comma may come first
        ('x = Proxy(addr="h", port=80)', PROXY),  # the usual form, for reference
        ("x = [1 2 3]", [1, 2, 3]),
        ("x = [, 1, 2]", [1, 2]),
        ('x = {"a": 1 "b": 2}', ("hash", [("a", 1), ("b", 2)])),
        ('x = {, "a": 1}', ("hash", [("a", 1)])),
        ("x = [y z]", [("ref", "y"), ("ref", "z")]),
        ("x = []", []),
        ("x = {}", ("hash", [])),
    ],
)
def test_commas_are_optional_and_may_come_first_as_in_m2sh_with_the_same_values(text, value):
    doc = parse(text, "c.conf")
    assert [a.name for a in doc.assignments] == ["x"]
    assert plain(value_of(doc, "x")) == value


@pytest.mark.parametrize(
    ("text", "column", "closer"),
    [
        ('x = Proxy(addr="h", port=80,)', 28, "')'"),
        ("x = [1, 2,]", 10, "']'"),
        ('x = {"a": 1,}', 12, "'}'"),
        ("x = [,]", 6, "']'"),
    ],
)
def test_trailing_comma_is_an_error_at_the_comma(text, column, closer):
    with pytest.raises(ConfigError) as caught:
        parse(text, "t.conf")
    assert (caught.value.line, caught.value.column) == (1, column)
    assert f"trailing comma before {closer}" in caught.value.message
    assert str(caught.value).startswith(f"t.conf:1:{column}: ")


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("x = [1,, 2]", (1, 8), "two commas in a row"),
        ("x = [1", (1, 7), "missing ']' to close the '[' at 1:5"),
        ('x = "abc', (1, 5), "unterminated string"),
        ("x = 1;", (1, 6), "invalid character ';'"),
        ("x = -1", (1, 5), "invalid character '-'"),
        ("Main = 1", (1, 1), "found class name 'Main'"),
        ("x = {a: 1}", (1, 6), "expected a quoted key"),
        ("x 1", (1, 3), "expected '=' after 'x'"),
        ("x = Proxy(Addr=1)", (1, 11), "found class name 'Addr'"),
        ("x = Proxy", (1, 10), "expected '(' after class name 'Proxy'"),
        ("x = )", (1, 5), "expected a value"),
        ("# only a comment\n", (2, 1), "the config is empty"),
        ("x = 1\nx = 2", (2, 1), "name 'x' is repeated (first at line 1)"),
        ('x = {"a": 1, "a": 2}', (1, 14), "key 'a' is repeated"),
        ("x = Proxy(port=1 port=2)", (1, 18), "parameter 'port' is repeated"),
    ],
)
def test_syntax_errors_name_their_line_and_column(text, where, message):
    with pytest.raises(ConfigError) as caught:
        parse(text)
    assert (caught.value.line, caught.value.column) == where
    assert message in caught.value.message


def test_python_code_is_never_executed(tmp_path):
    marker = tmp_path / "executed"
    text = f'x = __import__("os").system("touch {marker}")\n'
    with pytest.raises(ConfigError, match="expected a name to assign"):
        parse(text)
    assert not marker.exists()


def test_deep_nesting_and_huge_numbers_are_errors_not_crashes():
    with pytest.raises(ConfigError, match="values nest deeper than 64 levels") as caught:
        parse("x = " + "[" * 5000 + "]" * 5000)
    assert (caught.value.line, caught.value.column) == (1, 69)
    parse("x = " + "[" * 64 + "]" * 64)
    with pytest.raises(ConfigError, match="number longer than 18 digits"):
        parse("x = " + "9" * 5000)
    assert isinstance(value_of(parse("x = 000000000000000000000000001"), "x"), Number)
