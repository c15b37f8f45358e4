"""The intake body parser: size limits and gzip decompression."""

import gzip
import io
import zlib

import pytest
from rest_framework.exceptions import ParseError
from rest_framework.test import APIRequestFactory

from logs.parsers import JSONBodyParser, RequestTooLarge, UnsupportedEncoding


def parse(body: bytes, encoding: str | None = None):
    headers = {"HTTP_CONTENT_ENCODING": encoding} if encoding else {}
    request = APIRequestFactory().post(
        "/api/logs/", body, content_type="application/json", **headers
    )
    stream = io.BytesIO(body)
    context = {"request": request}
    return JSONBodyParser().parse(stream, parser_context=context), stream


def test_gzip_body_decompressed():
    data, _ = parse(gzip.compress(b'{"message": "m"}'), "gzip")
    assert data == {"message": "m"}


def test_gzip_bomb_stops_early(settings):
    settings.INTAKE_MAX_BODY_BYTES = 1024 * 1024
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1024 * 1024)
    bomb = b"".join([compressor.compress(block) for _ in range(256)])
    bomb += compressor.flush()
    stream = io.BytesIO(bomb)
    request = APIRequestFactory().post(
        "/api/logs/",
        bomb,
        content_type="application/json",
        HTTP_CONTENT_ENCODING="gzip",
    )

    with pytest.raises(RequestTooLarge) as caught:
        JSONBodyParser().parse(stream, parser_context={"request": request})

    assert "once decompressed" in str(caught.value.detail)
    # 1 MiB of output needs about 1 KiB of this input: the parser must stop
    # reading long before the end of the 256 MiB bomb.
    assert stream.tell() < len(bomb)


def test_compressed_size_limited(settings):
    settings.INTAKE_MAX_BODY_BYTES = 1024
    with pytest.raises(RequestTooLarge) as caught:
        parse(gzip.compress(bytes(range(256)) * 64), "gzip")
    assert "compressed" in str(caught.value.detail)


@pytest.mark.parametrize("encoding", ["br", "deflate", "gzip, gzip"])
def test_other_encodings_rejected(encoding):
    with pytest.raises(UnsupportedEncoding):
        parse(b"{}", encoding)


def test_identity_encoding_is_plain():
    data, _ = parse(b'{"a": 1}', "identity")
    assert data == {"a": 1}


def test_gzip_trailing_garbage_rejected():
    with pytest.raises(ParseError):
        parse(gzip.compress(b"{}") + b"garbage", "gzip")
