"""A Flask app exercising what frameworks do on top of WSGI (see test_frameworks.py)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from flask import Flask, Response, jsonify, redirect, request

app = Flask(__name__)


@app.get("/")
def index() -> str:
    return "hello flask"


@app.get("/json")
def as_json() -> Response:
    return jsonify(args=request.args.to_dict(flat=False), path=request.path)


@app.get("/redirect")
def moved() -> Response:
    return redirect("/json?from=redirect", 302)  # type: ignore[return-value]


@app.get("/cookies")
def cookies() -> Response:
    response = Response("cookies set")
    response.set_cookie("first", "1", path="/")
    response.set_cookie("second", "two words", httponly=True)
    return response


@app.post("/form")
def form() -> Response:
    return jsonify(form=request.form.to_dict(flat=False), cookies=request.cookies)


@app.post("/upload")
def upload() -> Response:
    stored = request.files["file"]
    data = stored.read()
    return jsonify(
        name=stored.filename,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        note=request.form.get("note"),
    )


@app.get("/stream")
def stream() -> Response:
    def generate() -> Iterator[str]:
        for index in range(5):
            yield f"part {index}\n"

    return Response(generate(), mimetype="text/plain")


@app.get("/unicode/<word>")
def unicode_word(word: str) -> Response:
    return jsonify(word=word)


@app.get("/error")
def error() -> str:
    raise RuntimeError("flask view failed on purpose")
