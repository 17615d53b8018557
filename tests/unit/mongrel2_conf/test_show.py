"""Describing a config for people: the tables of ``config show``."""

from __future__ import annotations

from mongrel2_conf import Config, Handler, Host, Server
from mongrel2_conf.show import format_config


def config(settings: dict[str, str | int]) -> Config:
    app = Handler(
        send_spec="tcp://127.0.0.1:9997", send_ident="app",
        recv_spec="tcp://127.0.0.1:9996", recv_ident="",
    )  # fmt: skip
    main = Server(
        uuid="u1", access_log="/a", error_log="/e", pid_file="/p", default_host="localhost",
        name="main", port=6767, hosts=[Host(name="localhost", routes={"/": app})],
    )  # fmt: skip
    return Config(servers=[main], settings=settings)


def test_a_config_without_settings_has_no_settings_table():
    text = format_config(config({}))
    assert [section.split()[0] for section in text.split("\n\n")] == ["SERVER", "SERVER", "HANDLER"]
    assert "SETTING" not in text


def test_settings_come_last_one_per_line():
    sections = format_config(config({"zeromq.threads": 1})).split("\n\n")
    assert sections[-1].splitlines()[1:] == ["zeromq.threads  1"]
    assert sections[-1].split()[:2] == ["SETTING", "VALUE"]
