"""Every error as JSON: the contract's own, the broker's, and Django's 405."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseNotAllowed,
    JsonResponse,
)

from ..realtime.brokers import BrokerUnavailable
from ..realtime.checks import APIError, broker_error, routing_error


def error_response(error: APIError) -> JsonResponse:
    return JsonResponse(error.body, status=error.status, headers=error.headers)


class ErrorsAsJSON:
    """Middleware: the contract's errors, the broker's, and Django's 405, as JSON."""

    async_capable = True
    sync_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]]) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = await self.get_response(request)
        if isinstance(response, HttpResponseNotAllowed):
            return error_response(routing_error(405, "Method Not Allowed", response["Allow"]))
        return response

    async def process_exception(
        self, request: HttpRequest, exception: Exception
    ) -> HttpResponse | None:
        if isinstance(exception, APIError):
            return error_response(exception)
        if isinstance(exception, BrokerUnavailable):
            return error_response(broker_error(exception.code, str(exception)))
        return None
