"""Debian's headless Chromium driven over the DevTools protocol on a pipe
(--remote-debugging-pipe: fd 3 carries commands in, fd 4 replies and events out, each
message JSON ending in a NUL byte), so the tests need no driver and no websocket library.

    with Browser() as browser:
        page = browser.open("file:///tmp/report.html")
        page.evaluate("document.title")
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time

CHROMIUM = shutil.which("chromium")
# A guard against a hung browser, not a measure: loading a page takes well under a second.
REPLY_TIMEOUT_S = 60


class BrowserError(Exception):
    pass


class Browser:
    def __init__(self, width: int = 1400, height: int = 1000) -> None:
        if CHROMIUM is None:
            raise BrowserError("chromium is not installed (scripts/setup-host.sh installs it)")
        self._profile = tempfile.TemporaryDirectory(prefix="fsaudit-chromium-")
        commands_in, self._commands = os.pipe()
        self._replies, replies_out = os.pipe()

        def onto_3_and_4() -> None:
            # Via fds above 10 first: either pipe end may itself be 3 or 4.
            high_in = fcntl.fcntl(commands_in, fcntl.F_DUPFD, 10)
            high_out = fcntl.fcntl(replies_out, fcntl.F_DUPFD, 10)
            os.dup2(high_in, 3)
            os.dup2(high_out, 4)

        # --no-sandbox: the tests run as root, where Chromium refuses its sandbox.
        self.process = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
             "--remote-debugging-pipe", f"--user-data-dir={self._profile.name}", f"--window-size={width},{height}",
             "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=onto_3_and_4, pass_fds=(3, 4))
        os.close(commands_in)
        os.close(replies_out)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []       # every event received, in order

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.send("Browser.close")
            except (BrowserError, OSError):
                pass
            try:
                self.process.wait(timeout=REPLY_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for fd in (self._commands, self._replies):
            try:
                os.close(fd)
            except OSError:
                pass
        self._profile.cleanup()

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._receive()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def wait_for(self, method: str, session: str | None = None) -> dict:
        """The next event named method (one received already counts)."""
        for event in self.events:
            if event["method"] == method and event.get("sessionId") == session and not event.get("_seen"):
                event["_seen"] = True
                return event
        while True:
            event = self._receive()
            if event.get("method") == method and event.get("sessionId") == session:
                event["_seen"] = True
                return event

    def _receive(self) -> dict:
        deadline = time.monotonic() + REPLY_TIMEOUT_S
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._replies], [], [], left)[0]:
                raise BrowserError(f"chromium sent nothing for {REPLY_TIMEOUT_S} s")
            chunk = os.read(self._replies, 1 << 16)
            if not chunk:
                raise BrowserError(f"chromium closed its pipe (exit status {self.process.poll()})")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message = json.loads(raw)
        if "method" in message:
            self.events.append(message)
        return message

    def open(self, url: str) -> "Page":
        """A new tab, loaded: console messages, exceptions, log entries and requests recorded from the start."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        for domain in ("Runtime", "Log", "Page", "Network"):
            page.send(f"{domain}.enable")
        page.send("Page.navigate", {"url": url})
        self.wait_for("Page.loadEventFired", session)
        return page


class Page:
    def __init__(self, browser: Browser, session: str) -> None:
        self.browser, self.session = browser, session

    def send(self, method: str, params: dict | None = None) -> dict:
        return self.browser.send(method, params, self.session)

    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def click(self, selector: str) -> None:
        """A real mouse click (pressed, released) at the middle of the first element matching selector."""
        box = self.evaluate(f"(() => {{ const n = document.querySelector({json.dumps(selector)}); n.scrollIntoView({{block: 'center'}}); "
                            f"const r = n.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()")
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": kind, "x": box[0], "y": box[1], "button": "left", "clickCount": 1})

    def problems(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions and error log entries, so far."""
        found = []
        for event in self.browser.events:
            if event.get("sessionId") != self.session:
                continue
            params = event.get("params", {})
            if event["method"] == "Runtime.exceptionThrown":
                found.append(f"exception: {params['exceptionDetails']}")
            elif event["method"] == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning", "assert"):
                found.append(f"console.{params['type']}: {params.get('args')}")
            elif event["method"] == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
                found.append(f"log: {params['entry']}")
        return found

    def requests(self) -> list[str]:
        """Every URL the page asked for, itself included."""
        return [event["params"]["request"]["url"] for event in self.browser.events
                if event.get("sessionId") == self.session and event["method"] == "Network.requestWillBeSent"]

    def screenshot(self, path: str) -> None:
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        with open(path, "wb") as out:
            out.write(base64.b64decode(data))
