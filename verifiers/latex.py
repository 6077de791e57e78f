"""Math-Verify in one persistent worker process: its signal-based timeouts only work in a main thread."""

from __future__ import annotations

import atexit
import functools
import importlib.util
import multiprocessing
import os
import subprocess
import sys
import threading
from multiprocessing.connection import Connection

from deltaprompts.errors import DeltaError

#: Seconds the parent waits for one answer before it kills the worker (which restarts lazily).
CALL_TIMEOUT_S = 15.0
#: Seconds Math-Verify itself may spend parsing one string or verifying one pair, inside the worker.
INNER_TIMEOUT_S = 4
_STARTUP_TIMEOUT_S = 120.0


@functools.cache
def available() -> bool:
    """Whether Math-Verify is installed (the optional extra `deltaprompts[math]`)."""
    return importlib.util.find_spec("math_verify") is not None


# ---- worker side -------------------------------------------------------------------------------


def _serve(conn: Connection) -> None:
    """Worker loop: answer (op, args) requests until the parent closes the pipe."""
    import logging

    from math_verify import parse, verify

    logging.getLogger("math_verify").setLevel(logging.ERROR)  # it warns on every timeout

    @functools.lru_cache(maxsize=4096)  # the same ground truth is scored against many samples
    def parsed(text: str) -> list:
        # Without delimiters Math-Verify only tries a plain-expression reading ("\\sqrt{2}" -> nothing).
        if not any(mark in text for mark in ("$", "\\boxed", "\\(", "\\[")):
            text = f"${text}$"
        return parse(text, parsing_timeout=INNER_TIMEOUT_S)

    def value(text: str) -> float | None:
        exprs = parsed(text)
        expr = exprs[0] if exprs else None
        if expr is None or isinstance(expr, str) or not getattr(expr, "is_number", False):
            return None
        number = complex(expr.evalf())
        return number.real if number.imag == 0 else None

    def equal(gold: str, pred: str) -> tuple[bool, bool, bool]:
        gold_p, pred_p = parsed(gold), parsed(pred)
        if not gold_p or not pred_p:
            return bool(gold_p), bool(pred_p), False
        return True, True, verify(gold_p, pred_p, timeout_seconds=INNER_TIMEOUT_S)

    def canon(text: str) -> str | None:
        exprs = parsed(text)
        return str(exprs[0]) if exprs else None

    ops = {"value": value, "equal": equal, "canon": canon}
    conn.send("ready")
    while True:
        try:
            op, args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            result = ops[op](*args)
        except Exception:  # a Math-Verify or sympy failure on odd input means "cannot read it"
            result = None
        conn.send(result)


# ---- parent side -------------------------------------------------------------------------------


def _serve_fd(fd: int) -> None:
    """Entry point of the worker process: serve on the socket inherited as file descriptor `fd`."""
    _serve(Connection(fd))


class _Worker:
    """One worker process and its socket.

    A plain subprocess rather than multiprocessing's spawn: spawn re-imports the caller's
    __main__ (breaking scripts without a main guard and `python -` pipelines), and fork from a
    threaded parent can deadlock. Requests go over an inherited socket, so stray prints on the
    worker's stdout cannot corrupt them. POSIX only (pass_fds).
    """

    def __init__(self) -> None:
        self.conn, child = multiprocessing.Pipe()
        code = "import sys; from deltaprompts.verifiers.latex import _serve_fd; _serve_fd(int(sys.argv[1]))"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, str(child.fileno())],
            pass_fds=[child.fileno()], env=env, stdin=subprocess.DEVNULL,
        )
        child.close()
        self.owner = os.getpid()
        if not self.conn.poll(_STARTUP_TIMEOUT_S):
            self.kill()
            raise DeltaError(f"the Math-Verify worker did not start within {_STARTUP_TIMEOUT_S:.0f}s")
        try:
            self.conn.recv()
        except EOFError:
            self.kill()
            raise DeltaError("the Math-Verify worker exited while starting; is math-verify importable?") from None

    def call(self, op: str, args: tuple) -> object:
        self.conn.send((op, args))
        if not self.conn.poll(CALL_TIMEOUT_S):
            raise TimeoutError(op)
        return self.conn.recv()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.conn.close()


_lock = threading.Lock()
_worker: _Worker | None = None


def _call(op: str, *args: str) -> tuple[object, str]:
    """Run `op` in the worker; returns (result, "") or (None, reason) on a missing library or timeout."""
    global _worker
    if not available():
        return None, "math_verify_missing"
    with _lock:
        if _worker is not None and _worker.owner != os.getpid():
            _worker = None  # inherited through fork: the pipe belongs to the parent process
        elif _worker is not None and _worker.proc.poll() is not None:
            _worker.kill()  # it died (killed from outside, out of memory): start another
            _worker = None
        if _worker is None:
            _worker = _Worker()
        try:
            return _worker.call(op, args), ""
        except (TimeoutError, EOFError, OSError):
            _worker.kill()
            _worker = None
            return None, "timeout"


def shutdown() -> None:
    """Stop the worker, if one is running in this process; the next call starts a new one."""
    global _worker
    with _lock:
        if _worker is not None and _worker.owner == os.getpid():
            _worker.kill()
        _worker = None


atexit.register(shutdown)


def latex_equal(gold: str, pred: str) -> tuple[bool | None, str]:
    """Whether `pred` equals `gold` by Math-Verify (LaTeX, fractions, sets, intervals, expressions).

    Returns (True | False, "") when both parse; (None, reason) otherwise, reason being
    "bad_ground_truth", "no_value" (the prediction does not parse), "timeout" or "math_verify_missing".
    """
    result, reason = _call("equal", gold, pred)
    if result is None:
        return None, reason or "no_value"
    gold_ok, pred_ok, same = result
    if not gold_ok:
        return None, "bad_ground_truth"
    if not pred_ok:
        return None, "no_value"
    return same, ""


def latex_value(text: str) -> tuple[float | None, str]:
    """The real value of a LaTeX number expression such as `\\frac{3}{4}` or `2\\sqrt{2}`; (None, reason) if none."""
    result, reason = _call("value", text)
    return (result, "") if result is not None else (None, reason or "no_value")


def latex_canonical(text: str) -> str | None:
    """Math-Verify's reading of `text` as a sympy string (e.g. '1/2' for `\\frac{2}{4}`), or None."""
    result, _ = _call("canon", text)
    return result if isinstance(result, str) else None
