"""Reports open in a real headless Chromium: no console errors, reasons visible, CSP enforced.

The browser is driven over the DevTools protocol on a websocket. Every wait has a deadline, so a
hung browser fails the test instead of hanging CI, and the browser's whole process group is
killed afterwards. Screenshots go to ``$SXAI_ARTIFACTS`` or ``tests/artifacts/``.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import queue
import re
import shutil
import signal
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from surrogate_xai.report import audit_report, build_audit_findings, decision_report, write_html
from tests.system_tools import skip_unless_available
from tests.test_report import CATALOGUE, QUOTES, SCRIPT, UNICODE, hostile_case

CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")
pytestmark = skip_unless_available(
    None
    if CHROMIUM.exists()
    else "Debian package 'chromium' is not installed (no chromium on PATH)",
    install="sudo apt-get install chromium",
)

START_TIMEOUT = 30.0  # seconds for the browser to listen
STEP_TIMEOUT = 30.0  # seconds for any one protocol exchange


def artifacts() -> Path:
    folder = Path(os.environ.get("SXAI_ARTIFACTS") or Path(__file__).with_name("artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class DevTools:
    """A minimal DevTools client: commands by id, events buffered in order of arrival."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def _recv(self, deadline: float) -> dict[str, Any]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the browser did not answer in time")
        message = json.loads(self.ws.recv(timeout=remaining))
        if "id" not in message:
            self.events.append(message)
        return message

    def send(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> dict[str, Any]:
        msg_id = next(self.ids)
        message: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        deadline = time.monotonic() + STEP_TIMEOUT
        while True:
            reply = self._recv(deadline)
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise RuntimeError(f"{method} failed: {reply['error']}")
                return dict(reply.get("result", {}))

    def wait_event(self, method: str, session: str, since: int) -> dict[str, Any]:
        deadline = time.monotonic() + STEP_TIMEOUT
        while True:
            for event in self.events[since:]:
                if event["method"] == method and event.get("sessionId") == session:
                    return event
            self._recv(deadline)

    def drain(self, seconds: float) -> None:
        """Collect events for ``seconds`` (late console messages, CSP reports)."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            try:
                message = json.loads(self.ws.recv(timeout=left))
            except TimeoutError:
                return
            if "id" not in message:
                self.events.append(message)


def _stderr_lines(stream: Any, lines: queue.Queue[str]) -> None:
    for raw in iter(stream.readline, b""):
        lines.put(raw.decode("utf-8", "replace"))


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevTools]:
    from websockets.sync.client import connect

    profile = tmp_path_factory.mktemp("chromium-profile")
    proc = subprocess.Popen(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-extensions",
            "--no-first-run",
            "--hide-scrollbars",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "about:blank",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: renderers and helpers die with it
    )
    try:
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=_stderr_lines, args=(proc.stderr, lines), daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT
        url = None
        seen: list[str] = []
        while url is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or proc.poll() is not None:
                pytest.fail(
                    f"chromium did not start listening within {START_TIMEOUT:.0f} s "
                    f"(exit code {proc.poll()}); stderr:\n{''.join(seen[-20:])}"
                )
            try:
                line = lines.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            seen.append(line)
            if m := re.search(r"DevTools listening on (ws://\S+)", line):
                url = m.group(1)
        with connect(url, open_timeout=STEP_TIMEOUT, max_size=None) as ws:
            client = DevTools(ws)
            try:
                yield client
            finally:
                # A polite close first; the process group is killed below regardless.
                with contextlib.suppress(Exception):
                    client.send("Browser.close")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=STEP_TIMEOUT)
        if proc.stderr is not None:
            proc.stderr.close()


def open_page(browser: DevTools, path: Path, width: int = 1100) -> tuple[str, int]:
    """A fresh tab showing ``path``; returns its session and the event index of the navigation."""
    target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
        "sessionId"
    ]
    for domain in ("Page.enable", "Runtime.enable", "Log.enable"):
        browser.send(domain, session=session)
    browser.send(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": 1400, "deviceScaleFactor": 1, "mobile": False},
        session=session,
    )
    since = len(browser.events)
    browser.send("Page.navigate", {"url": path.resolve().as_uri()}, session=session)
    browser.wait_event("Page.loadEventFired", session, since)
    browser.drain(0.5)
    return session, since


def evaluate(browser: DevTools, session: str, expression: str, *, wait: bool = False) -> Any:
    result = browser.send(
        "Runtime.evaluate",
        {"expression": expression, "returnByValue": True, "awaitPromise": wait},
        session=session,
    )
    if "exceptionDetails" in result:
        raise AssertionError(f"page evaluation failed: {result['exceptionDetails']}")
    return result["result"].get("value")


def problems(browser: DevTools, session: str, since: int) -> list[str]:
    """Console calls, uncaught exceptions, and error/warning log entries (CSP violations)."""
    out = []
    for event in browser.events[since:]:
        if event.get("sessionId") != session:
            continue
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.consoleAPICalled":
            out.append(f"console.{params.get('type')}: {params.get('args')}")
        elif method == "Runtime.exceptionThrown":
            out.append(f"exception: {params.get('exceptionDetails')}")
        elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
            out.append(f"log {params['entry']['level']}: {params['entry'].get('text')}")
        elif method == "Page.javascriptDialogOpening":
            out.append(f"dialog: {params.get('message')}")
    return out


def screenshot(browser: DevTools, session: str, name: str) -> Path:
    data = browser.send(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session=session
    )["data"]
    png = base64.b64decode(data)
    path = artifacts() / name
    path.write_bytes(png)
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", png[16:24])  # IHDR
    assert width >= 1000, width
    assert height >= 1000, height
    # A blank page of this size compresses to a few kB; a rendered report is far larger.
    assert len(png) > 30_000, f"screenshot suspiciously small ({len(png)} bytes)"
    return path


def assert_csp_enforced(browser: DevTools, session: str) -> None:
    """Positive control: the policy in the page really blocks a remote image and a script."""
    directive = evaluate(
        browser,
        session,
        """new Promise(resolve => {
             document.addEventListener('securitypolicyviolation',
                                       e => resolve(e.effectiveDirective), {once: true});
             const img = document.createElement('img');
             img.src = 'http://127.0.0.1:9/tracker.png';
             document.body.appendChild(img);
             setTimeout(() => resolve('no violation'), 5000);
           })""",
        wait=True,
    )
    assert directive == "img-src"
    evaluate(
        browser,
        session,
        """const s = document.createElement('script');
           s.textContent = 'window.__injected = 1';
           document.body.appendChild(s);""",
    )
    assert evaluate(browser, session, "typeof window.__injected") == "undefined"


@pytest.mark.reliability
def test_decision_report_renders_in_chromium(browser: DevTools, tmp_path: Path) -> None:
    case = hostile_case()
    row = case["row"]
    reasons = case["reasons"][row]
    html = decision_report(
        case["explanation"],
        row,
        reasons=reasons,
        outcome={"decision": "declined", "threshold": 0.5},
        record_id="rec-1",
        replay_command="sxai replay rec-1 --store sqlite:///audit.db --model m.onnx --background b.csv",
    )
    path = write_html(tmp_path / "decision.html", html)
    shutil.copyfile(path, artifacts() / "decision_report.html")
    session, since = open_page(browser, path)

    assert problems(browser, session, since) == []
    text = evaluate(browser, session, "document.body.innerText")
    assert reasons.reasons
    for r in reasons.reasons:
        assert r.text in text, f"reason text {r.text!r} not visible"
        assert r.code in text
    assert "declined" in text
    # The hostile names are visible as text, and created no element and ran nothing.
    assert SCRIPT in text
    assert QUOTES in text
    assert UNICODE in text
    assert evaluate(browser, session, "document.getElementsByTagName('script').length") == 0
    assert evaluate(browser, session, "document.querySelectorAll('svg rect').length") >= 4
    # Rendered with the stylesheet (allowed by its hash): the reasons list has its font weight.
    weight = evaluate(
        browser, session, "getComputedStyle(document.querySelector('ol.reasons .text')).fontWeight"
    )
    assert weight == "600"
    shot = screenshot(browser, session, "decision_report.png")
    assert shot.exists()

    assert_csp_enforced(browser, session)


@pytest.mark.reliability
def test_audit_report_renders_in_chromium(browser: DevTools, tmp_path: Path) -> None:
    case = hostile_case()
    findings = build_audit_findings(
        case["model"],
        case["data"],
        case["background"],
        explainer=case["explainer"],
        catalogue=CATALOGUE,
        output="probabilities[good]",
        threshold=0.5,
        n_explain=12,
        random_state=4,
    )
    path = write_html(tmp_path / "audit.html", audit_report(findings))
    shutil.copyfile(path, artifacts() / "audit_report.html")
    session, since = open_page(browser, path)

    assert problems(browser, session, since) == []
    text = evaluate(browser, session, "document.body.innerText")
    assert "Reason-code frequencies among adverse decisions" in text
    for fr in findings.reason_frequencies:
        assert fr.text in text
    assert SCRIPT in text
    assert evaluate(browser, session, "document.getElementsByTagName('script').length") == 0
    screenshot(browser, session, "audit_report.png")


def test_image_and_time_step_figures_render_in_chromium(browser: DevTools, tmp_path: Path) -> None:
    from tests.deep_cases import image_explanation, sequence_explanation

    for name, exp in (("image", image_explanation()), ("sequence", sequence_explanation())):
        path = write_html(tmp_path / f"{name}.html", decision_report(exp, 0))
        shutil.copyfile(path, artifacts() / f"decision_report_{name}.html")
        session, since = open_page(browser, path)
        assert problems(browser, session, since) == []  # no CSP violation from the figures
        if name == "image":
            # Colours are presentation attributes, which the policy does not block.
            fills = evaluate(
                browser,
                session,
                "[...document.querySelectorAll('svg rect.cell')].map(r => getComputedStyle(r).fill)",
            )
            assert len(fills) == 36
            assert len(set(fills)) == 4  # one colour per 3x3 patch
        else:
            text = evaluate(browser, session, "document.body.innerText")
            assert "Over time" in text


#: Words (outside <code>) of the table cells matched by a selector that the layout broke
#: across lines: a range over each word has client rectangles on more than one line.
BROKEN_WORDS = """(selector => {
  const broken = [];
  for (const cell of document.querySelectorAll(selector)) {
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    let node;
    while ((node = walker.nextNode())) {
      if (node.parentElement.closest('code')) continue;
      const words = /\\S+/g;
      let m;
      while ((m = words.exec(node.data))) {
        const range = document.createRange();
        range.setStart(node, m.index);
        range.setEnd(node, m.index + m[0].length);
        const lines = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
        if (lines.size > 1) broken.push(m[0]);
      }
    }
  }
  return broken;
})"""


@pytest.fixture(scope="module")
def first_hour_reports(credit_model, tmp_path_factory):
    """The reports a first-time user sees for a credit model: a tree surrogate that fails
    (so the rules are withheld), sampled values, display names from a catalogue."""
    import surrogate_xai as sx
    from surrogate_xai.decisions import CREDIT, DecisionPolicy, decide
    from surrogate_xai.display import display_names

    _, path, X = credit_model
    model = sx.ONNXModel(path)
    background = X.iloc[:40]
    catalogue = {
        "name": "c", "version": "1",
        "reasons": [{"code": "R01", "text": "Status of existing checking account",
                     "features": ["status_of_existing_checking_account"]}],
    }  # fmt: skip
    findings = build_audit_findings(
        model, X.iloc[200:400], background, catalogue=catalogue, output="probabilities[good]",
        threshold=0.5, n_explain=8, random_state=0, framing=CREDIT,
    )  # fmt: skip
    explainer = sx.KernelSHAP(max_evals=1500, tol=0.01, random_state=0).fit(model, background)
    exp = explainer.explain(X.iloc[200:202])
    loaded = sx.reasons.load_catalogue(catalogue)
    decisions = decide(
        exp,
        DecisionPolicy(
            output="probabilities[good]", threshold=0.5, framing=CREDIT, catalogue=loaded
        ),
    )
    names = display_names(exp.feature_names, exp.output_names, catalogue=loaded)
    folder = tmp_path_factory.mktemp("first-hour-reports")
    decision = write_html(
        folder / "decision.html",
        decision_report(
            exp, 0, reasons=decisions.reasons[0], outcome=(decisions.outcomes or [])[0],
            framing=CREDIT, display_names=names,
        ),
    )  # fmt: skip
    audit = write_html(folder / "audit.html", audit_report(findings))
    shutil.copyfile(audit, artifacts() / "audit_report_1280.html")
    return decision, audit, findings


def test_reports_read_well_at_1280_px(browser: DevTools, first_hour_reports) -> None:
    decision, audit, findings = first_hour_reports
    session, since = open_page(browser, audit, width=1280)
    assert problems(browser, session, since) == []
    # No word of a table cell breaks across lines at 1280 px (it used to: "catego rical",
    # "numer ic", "lea f", "0.252 8").
    for selector in ("#data-summary td", "table.leaves td", "#importance-table td", "td"):
        assert evaluate(browser, session, f"{BROKEN_WORDS}({json.dumps(selector)})") == []
    text = evaluate(browser, session, "document.body.innerText")
    # Parameters as words, not a JSON dump.
    assert '{"' not in text
    assert "max_evals 4096; tol none" in text
    # Every chart names its axes.
    labels = evaluate(
        browser,
        session,
        "[...document.querySelectorAll('svg text.axis-label')].map(t => t.textContent)",
    )
    assert "number of attributions" in labels
    assert any(label.startswith("mean |attribution|") for label in labels)
    assert any(label.startswith("standard error of an attribution") for label in labels)
    # The failing surrogate's rules are withheld: not on the page until asked for.
    assert findings.surrogate.low_fidelity
    assert "do not read its rules" in text
    assert all(rule not in text for rule in findings.surrogate.rules)
    screenshot(browser, session, "audit_report_1280.png")

    session, since = open_page(browser, decision, width=1280)
    assert problems(browser, session, since) == []
    assert evaluate(browser, session, f"{BROKEN_WORDS}('td')") == []
    text = evaluate(browser, session, "document.body.innerText")
    assert "Values of this applicant" in text
    assert '{"' not in text
    # The waterfall's labels are whole (wrapped, never cut with "…") and its axis is named.
    shown = evaluate(
        browser,
        session,
        "[...document.querySelectorAll('svg.chart text.label')].map(t => "
        "[...t.querySelectorAll('tspan')].map(s => s.textContent).join(' '))",
    )
    assert any(s.startswith("Status of existing checking account = ") for s in shown)
    assert all("…" not in s for s in shown)
    axis = evaluate(browser, session, "document.querySelector('svg text.axis-label').textContent")
    assert axis == "probabilities[good]"
