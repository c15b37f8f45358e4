"""Request body parsing for the API, with a size limit and a fast decoder."""

import logging
import zlib

import orjson
from django.conf import settings
from rest_framework import exceptions, parsers, status

logger = logging.getLogger(__name__)

READ_CHUNK_BYTES = 64 * 1024
# zlib's window bits for a gzip header and trailer around the deflate data.
GZIP_WBITS = 16 + zlib.MAX_WBITS


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "too_large"


class UnsupportedEncoding(exceptions.APIException):
    status_code = status.HTTP_415_UNSUPPORTED_MEDIA_TYPE
    default_detail = "The request body's Content-Encoding is not supported."
    default_code = "unsupported_encoding"


class JSONBodyParser(parsers.BaseParser):
    """Parse JSON with orjson, rejecting bodies over INTAKE_MAX_BODY_BYTES.

    A body sent with `Content-Encoding: gzip` is decompressed a chunk at a
    time. The limit applies to the compressed and to the decompressed size,
    so a small body that would expand to gigabytes is rejected after at
    most INTAKE_MAX_BODY_BYTES of output.
    """

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.INTAKE_MAX_BODY_BYTES
        request = (parser_context or {}).get("request")
        meta = request.META if request is not None else {}
        length = meta.get("CONTENT_LENGTH")
        if length and length.isdigit() and int(length) > limit:
            raise RequestTooLarge(
                f"The request body is {int(length)} bytes; the limit is {limit} bytes."
            )
        encoding = meta.get("HTTP_CONTENT_ENCODING", "").strip().lower()
        if encoding in ("", "identity"):
            body = _read_plain(stream, limit)
        elif encoding == "gzip":
            body = _read_gzip(stream, limit)
        else:
            raise UnsupportedEncoding(
                f"Content-Encoding {encoding[:64]!r} is not supported; send the "
                "body as is or with Content-Encoding: gzip."
            )
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise exceptions.ParseError(
                f"The request body is not valid JSON: {exc}"
            ) from None


def _read_plain(stream, limit: int) -> bytes:
    body = stream.read(limit + 1)
    if len(body) > limit:
        raise RequestTooLarge(f"The request body exceeds the limit of {limit} bytes.")
    return body


def _read_gzip(stream, limit: int) -> bytes:
    """Decompress a gzip body of one or more members, at most limit bytes of it."""
    output = bytearray()
    decompressor = zlib.decompressobj(GZIP_WBITS)
    read = 0
    while True:
        chunk = stream.read(READ_CHUNK_BYTES)
        if not chunk:
            break
        read += len(chunk)
        if read > limit:
            raise RequestTooLarge(
                f"The compressed request body exceeds the limit of {limit} bytes."
            )
        _inflate(decompressor, chunk, output, limit)
        # A gzip file may contain several members one after another.
        while decompressor.eof and decompressor.unused_data:
            rest = decompressor.unused_data
            decompressor = zlib.decompressobj(GZIP_WBITS)
            _inflate(decompressor, rest, output, limit)
    if not decompressor.eof:
        raise exceptions.ParseError(
            "The gzip request body is truncated; send the whole compressed body."
        )
    return bytes(output)


def _inflate(decompressor, data: bytes, output: bytearray, limit: int) -> None:
    """Append the decompressed data to output, failing once it passes limit."""
    try:
        # max_length bounds each step's output, so a highly compressed chunk
        # never expands in memory past the limit.
        output += decompressor.decompress(data, limit + 1 - len(output))
        while decompressor.unconsumed_tail and len(output) <= limit:
            tail = decompressor.unconsumed_tail
            output += decompressor.decompress(tail, limit + 1 - len(output))
    except zlib.error as exc:
        raise exceptions.ParseError(
            f"The request body is not valid gzip data: {exc}"
        ) from None
    if len(output) > limit:
        logger.warning(
            "Rejected a gzip request body that decompresses to over %d bytes", limit
        )
        raise RequestTooLarge(
            f"The request body exceeds the limit of {limit} bytes once decompressed."
        )
