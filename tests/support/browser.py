"""Drives Debian's headless chromium through the DevTools pipe (--remote-debugging-pipe), so
the subscription pages are tested by a real browser without any WebSocket library:

    browser.py URL [--click ELEMENT_ID --wait-title TITLE] [--screenshot PATH]

Opens URL, optionally clicks the element and waits for the page titled TITLE (the result
of the form's POST), optionally saves a PNG screenshot, and prints the
final page's title, URL and visible text, one `name<TAB>value` line each.
"""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

CHROMIUM = "/usr/bin/chromium"


class Browser:
    def __init__(self):
        self.profile = tempfile.mkdtemp(prefix="webissued-chromium-")
        to_browser_r, self.to_browser = os.pipe()
        self.from_browser, from_browser_w = os.pipe()

        def child_fds():
            # The pipe protocol uses fd 3 (commands in) and fd 4 (replies out).
            a, b = os.dup(to_browser_r), os.dup(from_browser_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--remote-debugging-pipe",
                "--user-data-dir=" + self.profile,
                "--window-size=800,600",
                "about:blank",
            ],
            pass_fds=(3, 4),
            preexec_fn=child_fds,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self.buf = b""
        self.next_id = 0
        self.session = None

    def call(self, method, params=None, session=True, timeout=20):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self.to_browser, json.dumps(msg).encode() + b"\0")
        deadline = time.time() + timeout
        while time.time() < deadline:
            while b"\0" in self.buf:
                raw, self.buf = self.buf.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self.next_id:
                    if "error" in reply:
                        raise RuntimeError("%s: %s" % (method, reply["error"]))
                    return reply["result"]
            chunk = os.read(self.from_browser, 65536)
            if not chunk:
                raise RuntimeError("chromium closed the pipe")
            self.buf += chunk
        raise RuntimeError("no reply to " + method)

    def open(self, url):
        target = self.call("Target.createTarget", {"url": url}, session=False)["targetId"]
        self.session = self.call(
            "Target.attachToTarget", {"targetId": target, "flatten": True}, session=False
        )["sessionId"]

    def eval(self, expression):
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        return r.get("result", {}).get("value")

    def wait_for(self, expression, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if self.eval(expression):
                    return
            except RuntimeError:
                pass  # the page is navigating
            time.sleep(0.1)
        raise RuntimeError("timed out waiting for " + expression)

    def close(self):
        try:
            self.call("Browser.close", session=False, timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


def main():
    args = sys.argv[1:]
    url = args.pop(0)
    opts = dict(zip(args[::2], args[1::2]))
    b = Browser()
    try:
        b.open(url)
        b.wait_for("document.readyState === 'complete' && document.title !== ''")
        if "--click" in opts:
            b.eval("document.getElementById(%s).click()" % json.dumps(opts["--click"]))
            b.wait_for(
                "document.readyState === 'complete' && document.title === %s"
                % json.dumps(opts["--wait-title"])
            )
        if "--screenshot" in opts:
            png = b.call("Page.captureScreenshot", {"format": "png"})["data"]
            with open(opts["--screenshot"], "wb") as f:
                f.write(base64.b64decode(png))
        for name, expr in [
            ("title", "document.title"),
            ("url", "location.href"),
            ("text", "document.body.innerText"),
        ]:
            print("%s\t%s" % (name, (b.eval(expr) or "").replace("\n", " ")))
    finally:
        b.close()


if __name__ == "__main__":
    main()
