#!/usr/bin/env python3
"""A WebIssues 0.8 HTTP client made only of Python's standard library, for the tests.

Usage: webissues_http.py URL [--cafile PEM] [--keepalive] < steps.json

stdin holds a JSON list of steps, each {"command": "...", "file": PATH or null,
"urlencoded": bool, "save": PATH or null}. Each command is one POST to URL: a
multipart/form-data body (built here by hand) with a `command` part and, when "file" is
set, a `file` part with the file's bytes; or, with "urlencoded", an
application/x-www-form-urlencoded body. Cookies go through http.cookiejar (urllib), or are
kept by hand over one http.client connection with --keepalive.

Prints each result as lines: `R status size sha256` (of the body), `H name: value` for
Content-Type, X-WebIssues-Version, X-WebIssues-Server and Set-Cookie, `L line` for each
reply line of a text/plain body, then `E`. The body is written to "save" when given.
"""

import hashlib
import http.client
import http.cookiejar
import json
import ssl
import sys
import urllib.parse
import urllib.request
import uuid


def multipart(command, file_bytes):
    boundary = "----pyboundary" + uuid.uuid4().hex
    parts = [
        b"--" + boundary.encode() + b"\r\n",
        b'Content-Disposition: form-data; name="command"\r\n',
        b"Content-Type: text/plain; charset=US-ASCII\r\n\r\n",
        command.encode("utf-8") + b"\r\n",
    ]
    if file_bytes is not None:
        parts += [
            b"--" + boundary.encode() + b"\r\n",
            b'Content-Disposition: form-data; name="file"; filename="file"\r\n',
            b"Content-Type: application/octet-stream\r\n\r\n",
            file_bytes + b"\r\n",
        ]
    parts.append(b"--" + boundary.encode() + b"--\r\n")
    return b"".join(parts), "multipart/form-data; boundary=" + boundary


def body_of(step):
    if step.get("urlencoded"):
        data = urllib.parse.urlencode({"command": step["command"]}).encode()
        return data, "application/x-www-form-urlencoded"
    file_bytes = None
    if step.get("file"):
        with open(step["file"], "rb") as f:
            file_bytes = f.read()
    return multipart(step["command"], file_bytes)


def result(status, headers, body, step):
    ctype = headers.get("Content-Type", "")
    out = {
        "status": status,
        "content_type": ctype,
        "version": headers.get("X-WebIssues-Version"),
        "server": headers.get("X-WebIssues-Server"),
        "set_cookie": headers.get("Set-Cookie"),
        "size": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
        "text": None,
    }
    if ctype.startswith("text/plain"):
        text = body.decode("utf-8")
        assert text.endswith("\r\n") and not text.endswith("\r\n\r\n"), repr(text)
        out["text"] = text[:-2].split("\r\n")
    if step.get("save"):
        with open(step["save"], "wb") as f:
            f.write(body)
    return out


def main():
    url = sys.argv[1]
    cafile = None
    if "--cafile" in sys.argv:
        cafile = sys.argv[sys.argv.index("--cafile") + 1]
    context = ssl.create_default_context(cafile=cafile) if cafile else None
    steps = json.load(sys.stdin)
    results = []
    if "--keepalive" in sys.argv:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme == "https":
            conn = http.client.HTTPSConnection(parsed.netloc, context=context, timeout=30)
        else:
            conn = http.client.HTTPConnection(parsed.netloc, timeout=30)
        cookie = None
        for step in steps:
            data, ctype = body_of(step)
            headers = {"Content-Type": ctype}
            if cookie:
                headers["Cookie"] = cookie
            conn.request("POST", parsed.path or "/", body=data, headers=headers)
            resp = conn.getresponse()
            body = resp.read()
            set_cookie = resp.getheader("Set-Cookie")
            if set_cookie:
                pair = set_cookie.split(";")[0]
                cookie = None if "Max-Age=0" in set_cookie else pair
            results.append(result(resp.status, resp.headers, body, step))
    else:
        jar = http.cookiejar.CookieJar()
        handlers = [urllib.request.HTTPCookieProcessor(jar)]
        if context:
            handlers.append(urllib.request.HTTPSHandler(context=context))
        opener = urllib.request.build_opener(*handlers)
        for step in steps:
            data, ctype = body_of(step)
            req = urllib.request.Request(url, data=data, headers={"Content-Type": ctype})
            with opener.open(req, timeout=30) as resp:
                body = resp.read()
                results.append(result(resp.status, resp.headers, body, step))
    for r in results:
        print("R %d %d %s" % (r["status"], r["size"], r["sha256"]))
        for name in ("content_type", "version", "server", "set_cookie"):
            if r[name] is not None:
                print("H %s: %s" % (name, r[name]))
        for line in r["text"] or []:
            print("L " + line)
        print("E")


if __name__ == "__main__":
    main()
