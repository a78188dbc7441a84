"""Errors of the Label Studio backend, each with the HTTP status it is answered with."""

from __future__ import annotations

from samiam.errors import InputError


class RequestError(InputError):
    """A request the backend cannot answer as sent (HTTP 400 unless a subclass says otherwise)."""

    status = 400


class ImageNotFoundError(RequestError):
    """The task's image does not exist where the request says (HTTP 404)."""

    status = 404


class ImageUnreadableError(RequestError):
    """The image was found but cannot be read or segmented (HTTP 422)."""

    status = 422


class UpstreamError(RequestError):
    """Label Studio (or another server) did not deliver the image (HTTP 502)."""

    status = 502
