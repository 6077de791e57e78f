"""The review page: decisions posted to it land in review.jsonl (the last per item wins), bad input and
paths outside the run are refused, and screen, split and export leave rejected items out. End to end:
headless Chromium, driven over the DevTools protocol (--remote-debugging-pipe), clicks "reject" on one
card and the next export leaves that item out."""

import fcntl
import json
import os
import select
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager

import pytest
from typer.testing import CliRunner

from deltaprompts.cli import app
from deltaprompts.exports import export_run
from deltaprompts.review import ReviewServer
from deltaprompts.review_log import REVIEW_FILE, latest, rejected
from deltaprompts.screen import screen_run
from deltaprompts.split import SplitConfig, split_run
from deltaprompts.store import RunStore
from tests.exports.helpers import make_run, score_by_hand


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("review") / "run", n=6)


@pytest.fixture
def run(base_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(base_run, out)
    return out


@contextmanager
def serving(run):
    server = ReviewServer(run, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def post(url, body, ctype="application/json"):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url + "review", data=data, headers={"Content-Type": ctype}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def ids(run):
    return [it.id for it in RunStore(run).iter_items()]


def test_the_last_decision_per_item_wins_and_is_fsynced_jsonl(run):
    a, b = ids(run)[:2]
    with serving(run) as s:
        assert post(s.url, {"item": a, "decision": "reject", "note": "blurry"})[0] == 200
        assert post(s.url, {"item": b, "decision": "reject", "note": ""})[0] == 200
        assert post(s.url, {"item": b, "decision": "accept", "note": "fine after all"})[0] == 200
        page = get(s.url)[1].decode()
    lines = [json.loads(line) for line in (run / REVIEW_FILE).read_text().splitlines()]
    assert [(d["item"], d["decision"], d["seq"]) for d in lines] == [(a, "reject", 0), (b, "reject", 1),
                                                                      (b, "accept", 2)]
    assert rejected(run) == {a} and latest(run)[b].note == "fine after all"
    assert page.count('class="card reject"') == 1 and page.count('class="card accept"') == 1 and "blurry" in page


@pytest.mark.parametrize("body", [
    b"{not json", b"[]", {"item": "nope", "decision": "reject", "note": ""},
    {"item": None, "decision": "reject"}, {"decision": "maybe"}, {"note": 3},
    {"note": "x" * 2001}, {"extra": 1},
])
def test_bad_input_is_a_400_with_a_one_line_error(run, body):
    with serving(run) as s:
        if isinstance(body, dict):
            body = {"item": ids(run)[0], "decision": "reject", "note": "", **body}
        status, reply = post(s.url, body)
    assert status == 400 and "\n" not in reply["error"]
    assert not (run / REVIEW_FILE).exists()


def test_only_json_is_accepted_and_only_files_of_the_run_are_served(run):
    item = RunStore(run).iter_items().__next__()
    (run.parent / "secret.txt").write_text("secret")
    with serving(run) as s:
        assert post(s.url, f"item={item.id}&decision=reject".encode(), "application/x-www-form-urlencoded")[0] == 415
        assert get(s.url + "files/" + item.image.path) == (200, (run / item.image.path).read_bytes())
        for bad in ("files/../secret.txt", "files/%2e%2e/secret.txt", "files//etc/passwd",
                    "files/images/../../secret.txt"):
            status, body = get(s.url + bad)
            assert status in (403, 404) and b"secret" not in body, bad
    assert not (run / REVIEW_FILE).exists()


def test_screen_split_and_export_leave_rejected_items_out_and_say_so(run, tmp_path):
    score_by_hand(run, zero_every=0)
    gone = ids(run)[0]
    with serving(run) as s:
        post(s.url, {"item": gone, "decision": "reject", "note": ""})
    rep = screen_run(run, tmp_path / "screened", min_delta=0.0)
    assert rep.dropped.get("rejected_in_review") == 1 and gone not in ids(tmp_path / "screened")
    result = split_run(run, SplitConfig(eval_fraction=0.5))
    assert result.rejected == [gone] and gone not in result.train + result.eval
    assert "left out 1 items rejected in review" in result.summary()
    s = export_run(run, "messages", tmp_path / "train", split="train")
    assert s.rejected_by_review == 0  # already left out of the split
    cli = CliRunner().invoke(app, ["export", str(run), "-f", "messages", "-o", str(tmp_path / "all")])
    assert cli.exit_code == 0 and "left out 1 items rejected in review" in cli.output
    assert json.loads((tmp_path / "all" / "export.json").read_text())["rejected_by_review"] == 1


def _chromium():
    return next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


class DevTools:
    """Headless Chromium over --remote-debugging-pipe (fd 3 in, fd 4 out, NUL-terminated JSON)."""

    def __init__(self, profile):
        to_chrome, self._write = os.pipe()
        self._read, from_chrome = os.pipe()
        hi_in, hi_out = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_chrome, from_chrome))
        os.close(to_chrome)
        os.close(from_chrome)

        def fds():
            os.dup2(hi_in, 3)
            os.dup2(hi_out, 4)

        self.proc = subprocess.Popen(
            [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
             "--disable-background-networking", "--disable-component-update", f"--user-data-dir={profile}",
             "--remote-debugging-pipe", "about:blank"],
            preexec_fn=fds, close_fds=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(hi_in)
        os.close(hi_out)
        self.n, self.buf = 0, b""

    def send(self, method, session=None, **params):
        self.n += 1
        msg = {"id": self.n, "method": method, "params": params, **({"sessionId": session} if session else {})}
        os.write(self._write, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + 30
        while True:
            while b"\0" in self.buf:
                raw, self.buf = self.buf.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self.n:
                    assert "error" not in reply, reply
                    return reply["result"]
            left = deadline - time.monotonic()
            assert left > 0 and select.select([self._read], [], [], left)[0], f"no reply to {method}"
            chunk = os.read(self._read, 1 << 16)
            assert chunk, "chromium closed the pipe"
            self.buf += chunk

    def evaluate(self, session, expression):
        r = self.send("Runtime.evaluate", session, expression=expression, awaitPromise=True, returnByValue=True)
        assert "exceptionDetails" not in r, r
        return r["result"].get("value")

    def close(self):
        try:
            self.send("Browser.close")
        except (AssertionError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._write)
        os.close(self._read)


CLICK_REJECT = """new Promise((done, fail) => {
  const card = document.querySelector('.card[data-id="%s"]');
  card.querySelector('textarea').value = 'wrong answer';
  card.querySelector('button.reject').click();
  const t0 = Date.now(), tick = setInterval(() => {
    const s = card.querySelector('.status').textContent;
    if (s && s !== 'saving') { clearInterval(tick); done(s + '|' + card.className); }
    else if (Date.now() - t0 > 10000) { clearInterval(tick); fail('no reply'); }
  }, 50);
})"""


@pytest.mark.skipif(_chromium() is None, reason="no chromium / chromium-browser / google-chrome on PATH")
def test_rejecting_in_headless_chromium_makes_the_next_export_leave_the_item_out(run, tmp_path):
    gone = ids(run)[2]
    with serving(run) as s:
        browser = DevTools(tmp_path / "chrome")
        try:
            target = browser.send("Target.createTarget", url=s.url)["targetId"]
            session = browser.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            for _ in range(200):
                ready = browser.evaluate(session, "document.readyState + ' ' + "
                                                  "document.querySelectorAll('.card').length")
                if ready == f"complete {len(ids(run))}":
                    break
                time.sleep(0.05)
            assert ready == f"complete {len(ids(run))}"
            assert browser.evaluate(session, CLICK_REJECT % gone) == "rejected|card reject"
        finally:
            browser.close()
    assert latest(run)[gone].note == "wrong answer"
    summary = export_run(run, "messages", tmp_path / "out")
    rows = [json.loads(line) for line in (tmp_path / "out" / "messages.jsonl").read_text().splitlines()]
    assert summary.rejected_by_review == 1 and summary.items == len(ids(run)) - 1
    assert gone not in json.dumps(rows) and len(rows) == summary.items
