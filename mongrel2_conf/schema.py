"""The sqlite schema ``m2sh load`` (Mongrel2 1.12) writes, statement for statement.

The ``CREATE`` texts are byte for byte those of m2sh, so ``sqlite3 DB .schema`` prints the same
for a database written by us and one written by m2sh (an integration test checks it). Like m2sh,
a load drops and recreates every table except ``log``, which keeps its rows.

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

#: Tables in the order m2sh creates them.
TABLES = (
    "server",
    "host",
    "handler",
    "proxy",
    "directory",
    "route",
    "setting",
    "statistic",
    "mimetype",
    "filter",
    "xrequest",
    "log",
)
#: Tables m2sh drops before creating them again, in its order (``log`` is kept).
DROPPED = (
    "server",
    "host",
    "handler",
    "proxy",
    "route",
    "statistic",
    "mimetype",
    "setting",
    "directory",
    "filter",
    "xrequest",
)

#: table -> its CREATE statement, as m2sh writes it.
CREATE = {
    "server": (
        "CREATE TABLE server (id INTEGER PRIMARY KEY,\n"
        "    uuid TEXT,\n"
        "    access_log TEXT,\n"
        "    error_log TEXT,\n"
        "    chroot TEXT DEFAULT '/var/www',\n"
        "    pid_file TEXT,\n"
        "    control_port TEXT DEFAULT '',\n"
        "    default_host TEXT,\n"
        "    name TEXT DEFAULT '',\n"
        '    bind_addr TEXT DEFAULT "0.0.0.0",\n'
        "    port INTEGER,\n"
        "    use_ssl INTEGER default 0)"
    ),
    "host": (
        "CREATE TABLE host (id INTEGER PRIMARY KEY, \n"
        "    server_id INTEGER,\n"
        "    maintenance BOOLEAN DEFAULT 0,\n"
        "    name TEXT,\n"
        "    matching TEXT)"
    ),
    "handler": (
        "CREATE TABLE handler (id INTEGER PRIMARY KEY,\n"
        "    send_spec TEXT, \n"
        "    send_ident TEXT,\n"
        "    recv_spec TEXT,\n"
        "    recv_ident TEXT,\n"
        "   raw_payload INTEGER DEFAULT 0,\n"
        "   protocol TEXT DEFAULT 'json')"
    ),
    "proxy": ("CREATE TABLE proxy (id INTEGER PRIMARY KEY,\n    addr TEXT,\n    port INTEGER)"),
    "directory": (
        "CREATE TABLE directory (id INTEGER PRIMARY KEY,   base TEXT,   index_file TEXT,"
        "   default_ctype TEXT,   cache_ttl INTEGER DEFAULT 0)"
    ),
    "route": (
        "CREATE TABLE route (id INTEGER PRIMARY KEY,\n"
        "    path TEXT,\n"
        "    reversed BOOLEAN DEFAULT 0,\n"
        "    host_id INTEGER,\n"
        "    target_id INTEGER,\n"
        "    target_type TEXT)"
    ),
    "setting": ("CREATE TABLE setting (id INTEGER PRIMARY KEY, key TEXT, value TEXT)"),
    "statistic": (
        "CREATE TABLE statistic (id SERIAL, \n"
        "    other_type TEXT,\n"
        "    other_id INTEGER,\n"
        "    name TEXT,\n"
        "    sum REAL,\n"
        "    sumsq REAL,\n"
        "    n INTEGER,\n"
        "    min REAL,\n"
        "    max REAL,\n"
        "    mean REAL,\n"
        "    sd REAL,\n"
        "    primary key (other_type, other_id, name))"
    ),
    "mimetype": ("CREATE TABLE mimetype (id INTEGER PRIMARY KEY, mimetype TEXT, extension TEXT)"),
    "filter": (
        "CREATE TABLE filter (id INTEGER PRIMARY KEY, \n"
        "    server_id INTEGER, \n"
        "    name TEXT, \n"
        "    settings TEXT)"
    ),
    "xrequest": (
        "CREATE TABLE xrequest (id INTEGER PRIMARY KEY, \n"
        "    server_id INTEGER, \n"
        "    name TEXT, \n"
        "    settings TEXT)"
    ),
    "log": (
        "CREATE TABLE IF NOT EXISTS log(id INTEGER PRIMARY KEY,\n"
        "    who TEXT,\n"
        "    what TEXT,\n"
        "    location TEXT,\n"
        "    happened_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,\n"
        "    how TEXT,\n"
        "    why TEXT)"
    ),
}

#: table -> its columns in order (``id`` first).
COLUMNS = {
    "server": (
        "id",
        "uuid",
        "access_log",
        "error_log",
        "chroot",
        "pid_file",
        "control_port",
        "default_host",
        "name",
        "bind_addr",
        "port",
        "use_ssl",
    ),
    "host": (
        "id",
        "server_id",
        "maintenance",
        "name",
        "matching",
    ),
    "handler": (
        "id",
        "send_spec",
        "send_ident",
        "recv_spec",
        "recv_ident",
        "raw_payload",
        "protocol",
    ),
    "proxy": (
        "id",
        "addr",
        "port",
    ),
    "directory": (
        "id",
        "base",
        "index_file",
        "default_ctype",
        "cache_ttl",
    ),
    "route": (
        "id",
        "path",
        "reversed",
        "host_id",
        "target_id",
        "target_type",
    ),
    "setting": (
        "id",
        "key",
        "value",
    ),
    "statistic": (
        "id",
        "other_type",
        "other_id",
        "name",
        "sum",
        "sumsq",
        "n",
        "min",
        "max",
        "mean",
        "sd",
    ),
    "mimetype": (
        "id",
        "mimetype",
        "extension",
    ),
    "filter": (
        "id",
        "server_id",
        "name",
        "settings",
    ),
    "xrequest": (
        "id",
        "server_id",
        "name",
        "settings",
    ),
    "log": (
        "id",
        "who",
        "what",
        "location",
        "happened_at",
        "how",
        "why",
    ),
}


def statements() -> list[str]:
    """The DDL of one load, in m2sh's order: drop every table but ``log``, then create all."""
    drops = [f"DROP TABLE IF EXISTS {table}" for table in DROPPED]
    return drops + [CREATE[table] for table in TABLES]
