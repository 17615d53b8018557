"""loader.load_app: MODULE:CALLABLE specs and the one-line errors for bad ones."""

from __future__ import annotations

import pytest

from m2bridge.errors import AppImportError
from m2bridge.loader import load_app


@pytest.fixture
def modules(tmp_path, monkeypatch):
    """Write throw-away modules into a directory on sys.path."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(name, source):
        (tmp_path / f"{name}.py").write_text(source)
        return name

    return write


def test_module_and_callable_load_the_app():
    from handlers import hello

    assert load_app("handlers.hello:app") is hello.app


def test_module_alone_finds_application_or_app(modules):
    name = modules("m2b_loader_both", "def application(e, s): pass\ndef app(e, s): pass\n")
    assert load_app(name).__name__ == "application"
    name = modules("m2b_loader_app_only", "def app(e, s): pass\n")
    assert load_app(name).__name__ == "app"


def test_dotted_attribute_is_followed(modules):
    name = modules(
        "m2b_loader_dotted", "class Holder:\n    @staticmethod\n    def wsgi(e, s): pass\n"
    )
    assert load_app(f"{name}:Holder.wsgi").__name__ == "wsgi"


@pytest.mark.parametrize("spec", [":app", "module:", ""])
def test_malformed_spec_is_refused(spec):
    with pytest.raises(AppImportError, match="expected MODULE:CALLABLE"):
        load_app(spec)


def test_missing_module_says_so():
    with pytest.raises(AppImportError, match="cannot import module 'm2b_no_such_module'"):
        load_app("m2b_no_such_module:app")


def test_missing_dependency_inside_the_module_is_told_apart(modules):
    name = modules("m2b_loader_dep", "import m2b_missing_dependency\n")
    with pytest.raises(AppImportError, match=f"importing '{name}' failed") as exc:
        load_app(f"{name}:app")
    assert "m2b_missing_dependency" in str(exc.value)


def test_module_raising_at_import_is_reported(modules):
    name = modules("m2b_loader_raises", "raise ValueError('bad config')\n")
    with pytest.raises(AppImportError, match=r"raised ValueError\('bad config'\)"):
        load_app(f"{name}:app")


def test_missing_attribute_is_reported(modules):
    name = modules("m2b_loader_noattr", "x = 1\n")
    with pytest.raises(AppImportError, match="has no attribute 'app'"):
        load_app(f"{name}:app")
    with pytest.raises(AppImportError, match="has no attribute 'application' or 'app'"):
        load_app(name)


def test_attribute_that_is_not_callable_is_refused(modules):
    name = modules("m2b_loader_notcallable", "app = 42\n")
    with pytest.raises(AppImportError, match="is not callable"):
        load_app(f"{name}:app")
