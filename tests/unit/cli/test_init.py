"""``m2bridge init``: the files it writes load as a stack and a Mongrel2 config, and it never
overwrites without ``--force``. (That the stack runs is tests/integration/test_wheel_install.py.)"""

from __future__ import annotations

import importlib.util

import pytest

from m2bridge.cli import init, main
from m2bridge.supervisor.stack import load_stack
from mongrel2_conf.loading import check_file


def test_init_writes_a_stack_of_mongrel2_relay_and_two_workers_on_the_given_port(tmp_path, capsys):
    assert main(["init", str(tmp_path / "site"), "--port", "7001"]) == 0
    site = tmp_path / "site"
    stack = load_stack(site / "stack.toml")
    assert list(stack.watchers) == ["mongrel2", "relay", "hello"]
    hello = stack.watchers["hello"]
    assert hello.numprocesses == 2
    assert "serve app:app --config mongrel2.conf --handler /" in " ".join(hello.cmd)
    assert stack.name == "site-7001"
    assert all((site / d).is_dir() for d in ("run", "logs", "tmp"))
    out = capsys.readouterr().out
    assert f"wrote {site / 'stack.toml'}" in out
    assert "m2bridge up stack.toml" in out
    assert "curl http://127.0.0.1:7001/" in out


def test_init_config_serves_loopback_with_distinct_handler_ports_and_no_daemon(tmp_path):
    assert main(["init", str(tmp_path), "--port", "7002"]) == 0
    text = (tmp_path / "mongrel2.conf").read_text()
    assert 'bind_addr="127.0.0.1"' in text
    assert "port=7002" in text
    assert '"server.daemonize": 0' in text
    assert 'chroot="./"' in text
    check_file(tmp_path / "mongrel2.conf")  # raises on any error
    layout = init.make_layout(tmp_path, 7002)
    assert len({layout.port, layout.send_port, layout.recv_port}) == 3


def test_init_hello_app_answers_hello(tmp_path):
    assert main(["init", str(tmp_path)]) == 0
    spec = importlib.util.spec_from_file_location("init_app", tmp_path / "app.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    seen = []
    body = module.app({}, lambda status, headers: seen.append(status))
    assert (seen, b"".join(body)) == (["200 OK"], b"Hello, world!\n")
    assert "port=6767" in (tmp_path / "mongrel2.conf").read_text()


def test_init_refuses_to_overwrite_an_existing_file(tmp_path, capsys):
    (tmp_path / "app.py").write_text("mine")
    assert main(["init", str(tmp_path)]) == 1
    assert "app.py already exist" in capsys.readouterr().err
    assert (tmp_path / "app.py").read_text() == "mine"
    assert not (tmp_path / "stack.toml").exists()


def test_init_force_overwrites(tmp_path):
    (tmp_path / "app.py").write_text("mine")
    assert main(["init", str(tmp_path), "--force"]) == 0
    assert "def app(" in (tmp_path / "app.py").read_text()


def test_init_in_the_current_directory_prints_no_cd(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    out = capsys.readouterr().out
    assert "cd " not in out
    assert (tmp_path / "stack.toml").is_file()


def test_init_reports_a_directory_it_cannot_write(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert main(["init", str(tmp_path / "file" / "site")]) == 1
    assert "m2bridge init:" in capsys.readouterr().err


@pytest.mark.parametrize("port", ["0", "65536", "http"])
def test_init_refuses_a_bad_port(port, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["init", "--port", port])
    assert exit_.value.code == 2
    assert "port" in capsys.readouterr().err


def test_free_port_gives_up_when_every_port_is_avoided(monkeypatch):
    class Socket:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def bind(self, address):
            pass

        def getsockname(self):
            return ("127.0.0.1", 7000)

    monkeypatch.setattr("m2bridge.cli.init.socket.socket", Socket)
    with pytest.raises(OSError, match="no free loopback port"):
        init.free_port({7000}, tries=3)


def test_stack_name_falls_back_when_the_directory_name_has_no_usable_character(tmp_path):
    odd = tmp_path / "+++"
    odd.mkdir()
    assert init.stack_name(odd, 80) == "m2bridge-80"
