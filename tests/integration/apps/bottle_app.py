"""A Bottle app exercising what frameworks do on top of WSGI (see test_frameworks.py)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

import bottle

app = bottle.Bottle(catchall=True)


@app.get("/")
def index() -> str:
    return "hello bottle"


@app.get("/json")
def as_json() -> dict[str, object]:
    return {
        "args": {k: bottle.request.query.getall(k) for k in bottle.request.query},
        "path": bottle.request.path,
    }


@app.get("/redirect")
def moved() -> None:
    bottle.redirect("/json?from=redirect", 302)


@app.get("/cookies")
def cookies() -> str:
    bottle.response.set_cookie("first", "1", path="/")
    bottle.response.set_cookie("second", "two words", httponly=True)
    return "cookies set"


@app.post("/form")
def form() -> str:
    bottle.response.content_type = "application/json"
    fields = {k: bottle.request.forms.getall(k) for k in bottle.request.forms}
    return json.dumps({"form": fields, "cookies": dict(bottle.request.cookies)})


@app.post("/upload")
def upload() -> dict[str, object]:
    stored = bottle.request.files.get("file")
    data = stored.file.read()
    return {
        "name": stored.raw_filename,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "note": bottle.request.forms.get("note"),
    }


@app.get("/stream")
def stream() -> Iterator[str]:
    bottle.response.content_type = "text/plain"
    for index in range(5):
        yield f"part {index}\n"


@app.get("/unicode/<word>")
def unicode_word(word: str) -> dict[str, str]:
    return {"word": word}


@app.get("/error")
def error() -> str:
    raise RuntimeError("bottle view failed on purpose")
