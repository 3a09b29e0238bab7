"""A user agent for the end-to-end scripts: its own cookie jar, JSON in and out."""
import http.cookiejar
import json
import urllib.error
import urllib.request


class Browser:
    """`json(method, path, body)` answers `(status, parsed body or None)`; status 0 when
    nothing answered. `on_answer(method, path, status)` sees every request (the harness
    counts them)."""

    def __init__(self, base, on_answer=None):
        self.base = base
        self.on_answer = on_answer
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def json(self, method, path, body=None, route=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            request.add_header("content-type", "application/json")
        try:
            with self.opener.open(request, timeout=10) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        except (OSError, urllib.error.URLError):
            status, raw = 0, b""
        if self.on_answer:
            self.on_answer(method, route or path, status)
        try:
            return status, json.loads(raw) if raw else None
        except (json.JSONDecodeError, UnicodeDecodeError):
            return status, None
