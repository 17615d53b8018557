"""The config corpus: every invalid config gives one error at its file:line:column and
changes no database; every valid one loads, writes and reads back."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from m2bridge.cli import main as m2bridge_main
from mongrel2_conf import ConfigError, load_config, read_config, to_rows, write_config
from mongrel2_conf.examples.generate import demo_config

DATA = Path(__file__).parents[2] / "data" / "mongrel2_conf"
EXAMPLES = Path(__file__).parents[3] / "mongrel2_conf" / "examples"
INVALID = sorted((DATA / "invalid").glob("*.conf"))
VALID = sorted((DATA / "valid").glob("*.conf")) + sorted(EXAMPLES.glob("*.conf"))


def expectation(path: Path) -> tuple[int, int, str]:
    """The ``# expect: LINE:COL message`` first line of an invalid config."""
    first = path.read_bytes().split(b"\n", 1)[0].decode()
    where, message = first.removeprefix("# expect: ").split(" ", 1)
    line, column = where.split(":")
    return int(line), int(column), message


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_corpus_is_there():
    assert len(INVALID) >= 40
    assert len(VALID) >= 10


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_config_gives_one_error_at_its_position(path):
    line, column, message = expectation(path)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    error = caught.value
    assert len(error.problems) == 1, str(error)
    assert (error.file, error.line, error.column) == (str(path), line, column), str(error)
    assert message in error.message
    assert str(error).startswith(f"{path}:{line}:{column}: ")


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_config_leaves_the_database_untouched(path, tmp_path, capsys):
    db = tmp_path / "config.sqlite"
    write_config(db, demo_config())
    before = digest(db)
    assert m2bridge_main(["config", "load", str(path), "--db", str(db)]) == 1
    line, column, _ = expectation(path)
    assert f"error: {path}:{line}:{column}: " in capsys.readouterr().err
    assert digest(db) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.sqlite"]


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_config_writes_rows_that_read_back_the_same(path, tmp_path):
    config = load_config(path)
    db = tmp_path / "config.sqlite"
    rows = write_config(db, config)
    assert described(to_rows(read_config(db))) == described(rows)


def described(rows: dict[str, list[tuple[object, ...]]]) -> dict[str, object]:
    """Rows without their ids: what each route points at, settings, mimetypes, servers."""
    types = {"handler": "handler", "dir": "directory", "proxy": "proxy"}
    targets = {(kind, r[0]): r[1:] for kind, table in types.items() for r in rows[table]}
    servers = {r[0]: r[1] for r in rows["server"]}
    hosts = {r[0]: (servers[r[1]], r[3], r[4]) for r in rows["host"]}
    routes = sorted((hosts[r[3]], r[1], r[5], targets[str(r[5]), r[4]]) for r in rows["route"])
    return {
        "servers": [r[1:] for r in rows["server"]],
        "routes": routes,
        "targets": {table: len(rows[table]) for table in types.values()},
        "settings": sorted(r[1:] for r in rows["setting"]),
        "mimetypes": sorted(r[1:] for r in rows["mimetype"]),
        "filters": [(servers[r[1]], r[2], r[3]) for r in rows["filter"] + rows["xrequest"]],
    }


def test_the_python_example_writes_the_rows_of_the_demo_config():
    assert to_rows(demo_config()) == to_rows(load_config(EXAMPLES / "demo.conf"))
