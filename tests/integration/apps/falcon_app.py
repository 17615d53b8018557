"""A Falcon app exercising what frameworks do on top of WSGI (see test_frameworks.py)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import falcon


class Index:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = "hello falcon"


class AsJson:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"args": {k: req.get_param_as_list(k) for k in req.params}, "path": req.path}


class Moved:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise falcon.HTTPFound("/json?from=redirect")


class Cookies:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.set_cookie("first", "1", path="/", secure=False, http_only=False)
        resp.set_cookie("second", "two words", secure=False)
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = "cookies set"


class Form:
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        form = req.get_media()
        resp.media = {"form": {k: [v] for k, v in form.items()}, "cookies": req.cookies}


class Upload:
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        result: dict[str, object] = {}
        for part in req.get_media():
            if part.name == "file":
                data = part.stream.read()
                result.update(
                    name=part.filename, size=len(data), sha256=hashlib.sha256(data).hexdigest()
                )
            elif part.name == "note":
                result["note"] = part.text
        resp.media = result


class Stream:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        def generate() -> Iterator[bytes]:
            for index in range(5):
                yield f"part {index}\n".encode()

        resp.content_type = falcon.MEDIA_TEXT
        resp.stream = generate()


class Word:
    def on_get(self, req: falcon.Request, resp: falcon.Response, word: str) -> None:
        resp.media = {"word": word}


class Error:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise RuntimeError("falcon view failed on purpose")


app = falcon.App(media_type=falcon.MEDIA_JSON)
app.req_options.auto_parse_form_urlencoded = False
for route, resource in {
    "/": Index(),
    "/json": AsJson(),
    "/redirect": Moved(),
    "/cookies": Cookies(),
    "/form": Form(),
    "/upload": Upload(),
    "/stream": Stream(),
    "/unicode/{word}": Word(),
    "/error": Error(),
}.items():
    app.add_route(route, resource)
