"""The loopback test server itself: every route answers as documented."""

from __future__ import annotations

import gzip
import http.client
import socket
import threading
import time
from pathlib import Path

import pytest
from servers import DISALLOW_PRIVATE, PDF_BYTES, Reply, SiteServer, serve_copy

ARTICLE = "/articles/hochwasserschutz-donau.html"


def get(server: SiteServer, path: str, method: str = "GET", **headers: str):
    """One request with http.client (which never consults proxy variables)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request(method, path, headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_serves_files_and_counts_requests(site: SiteServer) -> None:
    status, headers, body = get(site, ARTICLE, **{"If-None-Match": '"abc"'})
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert int(headers["Content-Length"]) == len(body)
    assert b"Regensburg plant neue Deiche" in body
    assert site.hits[ARTICLE] == 1
    assert site.headers_seen[ARTICLE][0]["If-None-Match"] == '"abc"'
    assert site.url(ARTICLE) == f"http://127.0.0.1:{site.port}{ARTICLE}"


def test_edited_file_is_served_on_the_next_request(site: SiteServer) -> None:
    site.write(ARTICLE, site.read(ARTICLE).replace("Deiche", "Dämme"))
    assert "Regensburg plant neue Dämme".encode() in get(site, ARTICLE)[2]


def test_head_sends_headers_without_body(site: SiteServer) -> None:
    status, headers, body = get(site, ARTICLE, method="HEAD")
    assert (status, body) == (200, b"")
    assert int(headers["Content-Length"]) > 1000


@pytest.mark.parametrize("code", [404, 410, 500])
def test_status_routes(server: SiteServer, code: int) -> None:
    assert get(server, f"/status/{code}")[0] == code


def test_missing_file_is_404_and_paths_cannot_escape_the_root(server: SiteServer) -> None:
    assert get(server, "/articles/gibt-es-nicht.html")[0] == 404
    assert get(server, "/../../etc/passwd")[0] == 404


def test_redirect_chain_hops_then_lands(site: SiteServer) -> None:
    path = f"/redirect/3?to={ARTICLE}"
    for hop in (3, 2, 1):
        status, headers, _ = get(site, path)
        assert status == 302, hop
        path = headers["Location"]
    assert path == ARTICLE
    assert get(site, path)[0] == 200
    assert [site.hits[f"/redirect/{n}"] for n in (3, 2, 1)] == [1, 1, 1]


def test_pdf_empty_and_large_routes(server: SiteServer) -> None:
    status, headers, body = get(server, "/pdf")
    assert (status, headers["Content-Type"], body) == (200, "application/pdf", PDF_BYTES)
    status, headers, body = get(server, "/pdf-as-html")
    assert headers["Content-Type"].startswith("text/html") and body.startswith(b"%PDF-")
    status, headers, body = get(server, "/empty")
    assert (status, headers["Content-Length"], body) == (200, "0", b"")
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("GET", "/truncated")
    with pytest.raises(http.client.IncompleteRead):
        connection.getresponse().read()
    connection.close()
    status, _, body = get(server, "/large")
    assert status == 200 and len(body) >= 3 * 1024 * 1024 and body.endswith(b"</html>")
    assert 2000 <= len(get(server, "/large?size=2000")[2]) < 3000
    status, headers, body = get(server, "/large?size=2000&length=none")
    assert "Content-Length" not in headers and 2000 <= len(body) < 3000


def test_gzip_route_encodes_the_file(server: SiteServer) -> None:
    status, headers, body = get(server, "/gzip" + ARTICLE)
    assert (status, headers["Content-Encoding"]) == (200, "gzip")
    assert gzip.decompress(body) == get(server, ARTICLE)[2]


def test_latin1_route_reencodes_and_declares_only_in_the_header(server: SiteServer) -> None:
    status, headers, body = get(server, "/latin1" + ARTICLE)
    assert headers["Content-Type"] == "text/html; charset=iso-8859-1"
    assert b"charset=utf-8" not in body and b"<meta charset" not in body
    text = body.decode("iso-8859-1")
    assert "Weißbäcker" in text and "Überschwemmungsgebiet" in text
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")


def test_robots_txt_is_configurable(site: SiteServer) -> None:
    assert b"Allow: /" in get(site, "/robots.txt")[2]
    site.robots_txt = DISALLOW_PRIVATE
    assert get(site, "/robots.txt")[2] == b"User-agent: *\nDisallow: /private/\n"


def test_programmable_route(site: SiteServer) -> None:
    site.set_route(ARTICLE, Reply(304, b"", {"ETag": '"v1"'}))
    status, headers, _ = get(site, ARTICLE)
    assert (status, headers["ETag"]) == (304, '"v1"')
    site.set_route("/echo", lambda request: Reply(200, request.headers["X-Probe"].encode()))
    assert get(site, "/echo", **{"X-Probe": "hallo"})[2] == b"hallo"
    site.clear_route(ARTICLE)
    assert get(site, ARTICLE)[0] == 200


def test_hang_never_answers_and_does_not_block_stop(tmp_path: Path) -> None:
    with serve_copy("news", tmp_path / "site") as running:
        client = socket.create_connection(("127.0.0.1", running.port), timeout=10)
        client.sendall(b"GET /hang HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        assert running.wait_for_hits("/hang", 1, timeout=10)
        client.settimeout(0.3)
        with pytest.raises(TimeoutError):
            client.recv(1)
        stopper = threading.Thread(target=running.stop)
        started = time.monotonic()
        stopper.start()
        stopper.join(timeout=10)
        assert not stopper.is_alive()
        assert time.monotonic() - started < 5
        client.settimeout(5)
        assert client.recv(1) == b""  # the handler returned and the socket closed, unanswered
        client.close()
