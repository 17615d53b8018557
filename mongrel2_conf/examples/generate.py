"""Build the demo stack's config in Python instead of m2sh's language.

    python -m mongrel2_conf.examples.generate config.sqlite

writes the same rows as ``m2bridge config load mongrel2_conf/examples/demo.conf``.
"""

from __future__ import annotations

import sys

from mongrel2_conf import Config, Handler, Host, Server, write_config


def demo_config(port: int = 6767) -> Config:
    """The config of ``demo.conf``, with the listening port as a parameter."""
    app = Handler(
        send_spec="tcp://127.0.0.1:9997",
        send_ident="8a9a3a3c-6f55-4d4e-9a3c-6d0a2f3b7e01",
        recv_spec="tcp://127.0.0.1:9996",
        recv_ident="",
        protocol="tnetstring",
    )
    demo = Server(
        uuid="m2bridge-demo",
        name="demo",
        bind_addr="127.0.0.1",
        port=port,
        chroot="./",
        access_log="/logs/access.log",
        error_log="/logs/error.log",
        pid_file="/run/mongrel2.pid",
        default_host="localhost",
        hosts=[Host(name="localhost", routes={"/": app})],
    )
    settings: dict[str, str | int] = {
        "server.daemonize": 0,
        "zeromq.threads": 1,
        "upload.temp_store": "/tmp/upload.XXXXXX",
        "limits.content_length": 2097152,
    }
    return Config(servers=[demo], settings=settings)


if __name__ == "__main__":
    rows = write_config(sys.argv[1] if len(sys.argv) > 1 else "config.sqlite", demo_config())
    print(f"wrote {len(rows['route'])} route(s)")
