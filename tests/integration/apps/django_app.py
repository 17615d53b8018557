"""A one-module Django project exercising what frameworks do on top of WSGI.

Settings are configured at import: this module is only ever the app of a test process.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="m2bridge-tests-only",
    ROOT_URLCONF=__name__,
    ALLOWED_HOSTS=["*"],
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
    USE_TZ=True,
    LOGGING_CONFIG=None,
)
django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import (  # noqa: E402
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.urls import path  # noqa: E402


def index(request: HttpRequest) -> HttpResponse:
    return HttpResponse("hello django", content_type="text/plain")


def as_json(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {"args": {k: request.GET.getlist(k) for k in request.GET}, "path": request.path}
    )


def moved(request: HttpRequest) -> HttpResponseRedirect:
    return HttpResponseRedirect("/json?from=redirect")


def cookies(request: HttpRequest) -> HttpResponse:
    response = HttpResponse("cookies set", content_type="text/plain")
    response.set_cookie("first", "1", path="/")
    response.set_cookie("second", "two words", httponly=True)
    return response


def form(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {"form": {k: request.POST.getlist(k) for k in request.POST}, "cookies": request.COOKIES}
    )


def upload(request: HttpRequest) -> JsonResponse:
    stored = request.FILES["file"]
    data = stored.read()
    return JsonResponse(
        {
            "name": stored.name,
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "note": request.POST.get("note"),
        }
    )


def stream(request: HttpRequest) -> StreamingHttpResponse:
    def generate() -> Iterator[str]:
        for index in range(5):
            yield f"part {index}\n"

    return StreamingHttpResponse(generate(), content_type="text/plain")


def unicode_word(request: HttpRequest, word: str) -> JsonResponse:
    return JsonResponse({"word": word})


def error(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("django view failed on purpose")


urlpatterns = [
    path("", index),
    path("json", as_json),
    path("redirect", moved),
    path("cookies", cookies),
    path("form", form),
    path("upload", upload),
    path("stream", stream),
    path("unicode/<str:word>", unicode_word),
    path("error", error),
]

app = application = get_wsgi_application()
