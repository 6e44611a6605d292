"""The one error handler: every refusal, the core's and Django's own, answered by the core.

It also answers CORS preflights, where a refusal (an Origin not allowed) may be
the answer too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseNotAllowed

from ..realtime.checks import APIError, routing_error
from .views import facts_of, response, service


def refused(request: HttpRequest, error: APIError) -> HttpResponse:
    """Every refusal as JSON, the contract's way."""
    return response(service().refusal(facts_of(request), error))


class ErrorsAsJSON:
    """Middleware: the core's refusals and Django's 405 as JSON, and CORS preflights."""

    async_capable = True
    sync_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]]) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = await self.get_response(request)
        if isinstance(response, HttpResponseNotAllowed):
            return refused(request, routing_error(405, "Method Not Allowed", response["Allow"]))
        return response

    async def process_view(
        self, request: HttpRequest, view: Callable[..., Any], args: Any, kwargs: Any
    ) -> HttpResponse | None:
        """OPTIONS on a view that pages elsewhere may call (views.CrossOrigin): a preflight.

        Here, after routing (an unknown path stays 404), rather than as the view's
        `options`, which Django declares synchronous, for every view.
        """
        view_class = getattr(view, "view_class", None)
        if request.method != "OPTIONS" or not getattr(view_class, "cross_origin", False):
            return None
        try:
            return response(service().preflight(facts_of(request)))
        except APIError as error:
            return refused(request, error)

    async def process_exception(
        self, request: HttpRequest, exception: Exception
    ) -> HttpResponse | None:
        if isinstance(exception, APIError):
            return refused(request, exception)
        return None


# Django's own errors (with DEBUG off), answered the same way (urls.py).


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    return refused(request, routing_error(404, "Not Found"))


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    return refused(request, APIError(400, "bad_request", "the request is not valid"))


def server_error(request: HttpRequest, *args: Any) -> HttpResponse:
    return refused(request, APIError(500, "internal_error", "the server failed; see its log"))
