"""Our loader against the real ``m2sh load``: for every config of the corpus, the rows we write
equal the rows m2sh writes, table by table, ids included (m2sh's numbering is reproduced, not
arbitrary); the schema text is the same; m2sh's own tools read our database; configs we call
syntax errors are syntax errors for m2sh too; what ``--lenient`` drops (tests/data/mongrel2_conf/
lenient/) m2sh drops too, row for row.

One deliberate difference: for a ``mimetypes`` entry m2sh 1.12.2 deletes the default row of the
extension and never runs the INSERT that follows (it prepares only the first of two statements),
so the mimetype is lost. We also insert the row, at the id the INSERT would have got.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from m2bridge.supervisor import mongrel2
from mongrel2_conf import load_config, write_config
from mongrel2_conf.loading import check_file
from mongrel2_conf.schema import COLUMNS
from tests.helpers.mongrel2 import require_mongrel2

DATA = Path(__file__).parents[1] / "data" / "mongrel2_conf"
EXAMPLES = Path(__file__).parents[2] / "mongrel2_conf" / "examples"
CORPUS = sorted((DATA / "valid").glob("*.conf")) + sorted(EXAMPLES.glob("*.conf"))
SYNTAX_ERRORS = sorted((DATA / "invalid").glob("syntax_*.conf"))
LENIENT = sorted((DATA / "lenient").glob("*.conf"))
LOGNAME = "m2bridge-test"

#: [ERROR] lines m2sh 1.12.2 prints for configs it loads completely (the rows prove it).
M2SH_NOISE = (
    "Invalid type given",  # a tnetstring freed twice after filters or mimetypes
    "INCOMPLETE CONFIG FILE",  # a comment on the last line, without a newline
)


@pytest.fixture(autouse=True)
def _logname(monkeypatch: pytest.MonkeyPatch) -> None:
    require_mongrel2()
    monkeypatch.setenv("LOGNAME", LOGNAME)


def m2sh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [mongrel2.find_binary("m2sh"), *args],
        capture_output=True,
        text=True,
        errors="replace",  # m2sh's spurious "Invalid type given" error prints a garbage byte
        timeout=30,
        check=False,
        env={**os.environ, "LOGNAME": LOGNAME},
    )


def m2sh_load(conf: Path, db: Path) -> list[str]:
    """Load with the real m2sh (it always exits 0); its unexpected [ERROR] lines."""
    result = m2sh("load", "-config", str(conf), "-db", str(db))
    errors = [line for line in result.stderr.splitlines() if "[ERROR]" in line]
    return [line for line in errors if not any(noise in line for noise in M2SH_NOISE)]


def dump(db: Path) -> dict[str, object]:
    """Every table's rows in rowid order (log without its time and host), and the schema."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        tables: dict[str, object] = {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()
            for table in COLUMNS
            if table != "log"
        }
        tables["log"] = conn.execute("SELECT id, who, what, how, why FROM log").fetchall()
        tables["schema"] = conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name"
        ).fetchall()
    return tables


def without_our_mimetype_rows(ours: dict[str, object], extra: dict[str, str]) -> None:
    """Drop the rows m2sh fails to insert, after checking they are the ones it meant to."""
    rows = ours["mimetype"]
    assert isinstance(rows, list)
    added = [row for row in rows if row[2] in extra]
    assert [(row[1], row[2]) for row in added] == [(extra[row[2]], row[2]) for row in added]
    assert len(added) == len(extra)
    ours["mimetype"] = [row for row in rows if row[2] not in extra]


def test_the_corpus_covers_every_feature():
    text = "\n".join(path.read_text() for path in CORPUS)
    for feature in ("Filter(", "Xrequest(", "Proxy(", "Dir(", "mimetypes", "matching=",
                    "raw_payload=1", "protocol=", "cache_ttl", "use_ssl=1", "ipc://"):  # fmt: skip
        assert feature in text, feature
    classic = (DATA / "valid" / "classic.conf").read_text()
    assert 'Host(name="127.0.0.1"' in classic
    assert "settings = {'zeromq.threads': 1}" in classic


@pytest.mark.parametrize("conf", CORPUS, ids=lambda p: p.stem)
def test_our_rows_equal_the_rows_m2sh_writes(conf, tmp_path):
    theirs_db, ours_db = tmp_path / "m2sh.sqlite", tmp_path / "ours.sqlite"
    assert m2sh_load(conf, theirs_db) == []
    config = load_config(conf)
    write_config(ours_db, config, how=str(conf))
    theirs, ours = dump(theirs_db), dump(ours_db)
    without_our_mimetype_rows(ours, dict(config.mimetypes))
    for table in theirs:
        assert ours[table] == theirs[table], table
    assert len(theirs["log"]) == 1  # type: ignore[arg-type]


@pytest.mark.parametrize("conf", LENIENT, ids=lambda p: p.stem)
def test_lenient_rows_equal_the_rows_m2sh_writes_ignoring_the_same_things(conf, tmp_path):
    theirs_db, ours_db = tmp_path / "m2sh.sqlite", tmp_path / "ours.sqlite"
    built = check_file(conf, lenient=True)
    errors = m2sh_load(conf, theirs_db)  # m2sh logs errors for some of what it drops
    expected = ("variable named", "reference", "route", "Expected a Class")
    assert all(any(words in e for words in expected) for e in errors), errors
    write_config(ours_db, built.config, how=str(conf))
    theirs, ours = dump(theirs_db), dump(ours_db)
    without_our_mimetype_rows(ours, dict(built.config.mimetypes))
    assert theirs["server"]
    for table in theirs:
        assert ours[table] == theirs[table], table


def test_loading_again_appends_to_the_log_like_m2sh(tmp_path):
    conf = DATA / "valid" / "classic.conf"
    theirs_db, ours_db = tmp_path / "m2sh.sqlite", tmp_path / "ours.sqlite"
    for _ in range(2):
        assert m2sh_load(conf, theirs_db) == []
        write_config(ours_db, load_config(conf), how=str(conf))
    theirs, ours = dump(theirs_db), dump(ours_db)
    assert ours == theirs
    assert len(ours["log"]) == 2  # type: ignore[arg-type]


def test_m2sh_reads_a_database_we_wrote(tmp_path):
    db = tmp_path / "ours.sqlite"
    write_config(db, load_config(DATA / "valid" / "multi_server.conf"))
    servers = m2sh("servers", "-db", str(db))
    assert servers.stdout.split("\n")[2:4] == ["dev localhost dev ", "prod example.com prod "]
    hosts = m2sh("hosts", "-db", str(db), "-server", "dev")
    assert "1 localhost" in hosts.stdout
    assert "2 (.+)" in hosts.stdout


@pytest.mark.parametrize("conf", SYNTAX_ERRORS, ids=lambda p: p.stem)
def test_what_we_call_a_syntax_error_m2sh_rejects_too(conf, tmp_path):
    db = tmp_path / "m2sh.sqlite"
    assert m2sh_load(conf, db) != []
    with contextlib.closing(sqlite3.connect(db)) as conn:
        tables = conn.execute("SELECT name FROM sqlite_master WHERE name = 'server'").fetchall()
        assert tables == [] or conn.execute("SELECT count(*) FROM server").fetchone() == (0,)
