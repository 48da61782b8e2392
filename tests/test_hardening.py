"""Hostile and careless inputs (issue 23): each refused in one line, or handled, never a traceback or a hole."""

import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from PIL import Image
from test_serving import _serving

from fer.core.errors import FerError
from fer.data.sources.local import read_local

ROOT = Path(__file__).resolve().parents[1]
REQUEST_SECONDS = 2


# 1. Script injection ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["<img src=x onerror=alert(document.domain)>", "tab\there", "x" * 65, "a\u202eb"])
def test_a_class_folder_whose_name_is_not_plain_text_is_refused_at_fetch(tmp_path, name):
    for folder in ("happy", name):
        (tmp_path / folder).mkdir()
        Image.new("L", (48, 48), 100).save(tmp_path / folder / "0.png")
    with pytest.raises(FerError, match="expected plain printable text") as refused:
        read_local(tmp_path, "folder")
    assert "\n" not in str(refused.value)


def test_the_upload_page_never_parses_data_as_html():
    script = (ROOT / "fer/serve/static/index.html").read_text()
    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write", script)


# 2. Request smuggling and slow senders ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def guarded_server(tiny_checkpoint, tmp_path_factory):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["predict"]["request_seconds"] = REQUEST_SECONDS
    root = tmp_path_factory.mktemp("guarded")
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    with _serving(tiny_checkpoint, root / "params.yaml", root / "log.sqlite", root / "no-champion.json") as url:
        host, port = url.removeprefix("http://").split(":")
        yield host, int(port)


def _everything_until_closed(connection: socket.socket) -> bytes:
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    return received


def test_content_length_with_transfer_encoding_is_400_and_nothing_is_smuggled(guarded_server):
    smuggled = b"0\r\n\r\nGET /model HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(guarded_server, timeout=20) as connection:
        connection.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n" + smuggled
        )
        answer = _everything_until_closed(connection)  # the server closes the connection after its answer
    assert answer.startswith(b"HTTP/1.1 400"), answer
    assert answer.count(b"HTTP/1.1 ") == 1 and b"Transfer-Encoding" in answer


def test_connections_sending_a_byte_a_second_are_dropped(guarded_server):
    def trickle(_) -> tuple[float, bytes]:
        start = time.monotonic()
        with socket.create_connection(guarded_server, timeout=30) as connection:
            try:
                for byte in b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"x" * 100:
                    connection.sendall(bytes([byte]))
                    time.sleep(0.5)
                    if connection.recv(65536, socket.MSG_DONTWAIT | socket.MSG_PEEK) == b"":
                        break
            except (BlockingIOError, OSError):
                pass
            try:
                answer = _everything_until_closed(connection)
            except ConnectionResetError:
                answer = b""
        return time.monotonic() - start, answer

    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(trickle, range(10)))
    for seconds, answer in results:
        assert seconds < REQUEST_SECONDS + 5, seconds
        assert answer.startswith(b"HTTP/1.1 408") or answer == b"", answer
    # A request sent at once is still answered.
    with socket.create_connection(guarded_server, timeout=20) as connection:
        connection.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert _everything_until_closed(connection).startswith(b"HTTP/1.1 200")
