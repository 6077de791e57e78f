"""Client-side cost of `score`: requests/s, completions/s and client CPU per request against a local
OpenAI-compatible server that answers at once (a separate process on 127.0.0.1), for fixed k and
adaptive runs, and the `hf:` backend's per-item cost outside the model's generate call.

    .venv/bin/python benchmarks/score_client.py [--items 400] [--k 8] [--hf-items 16] [--sdk]

The server is a bare asyncio HTTP/1.1 server in a child process (keep-alive, canned choices, `n`
honoured), so its CPU is not counted as the client's. Each score run is a fresh process, as a real
`score` run is (cold caches; imports done before the clock starts). `--sdk` adds the runs through
the OpenAI SDK's client (the path before the lean client; now used only behind a proxy). The
encoding line re-runs the per-request image encoding of the first client (read, decode, re-encode
PNG, base64 for every request) against the encoding cache. Target: >= 500 requests per client
CPU-second at k = 8, fixed and adaptive. The hf: line scores `--hf-items` items with a tiny random
LLaVA (deltaprompts.models.tiny, one torch thread) as teacher and student and times everything but
`model.generate` (prompt templating, image preprocessing, decoding, grading, records), per item.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ANSWERS = ["3", "red", "Yes", "No", "B", "4", "2019"]
_N = re.compile(rb'"n"\s*:\s*(\d+)')
_SEED = re.compile(rb'"seed"\s*:\s*(\d+)')


def _choices(n: int, seed: bytes) -> bytes:
    # short answers that repeat, as VQA answers do (a few distinct texts per request)
    choice = '{"index":%d,"message":{"role":"assistant","content":"%s"},"finish_reason":"stop"}'
    body = ",".join(choice % (j, ANSWERS[(int(seed) + j) % len(ANSWERS)]) for j in range(n))
    return ('{"id":"x","object":"chat.completion","created":0,"model":"m","choices":[%s],'
            '"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}' % body).encode()


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
            body = await reader.readexactly(length)
            m, s = _N.search(body), _SEED.search(body)
            out = _choices(int(m.group(1)) if m else 1, s.group(1) if s else b"0")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                         % (len(out), out))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def serve(port_out: mp.connection.Connection, seconds: float) -> None:
    """Serve on a free loopback port (sent through `port_out`) for at most `seconds`."""
    async def main() -> None:
        server = await asyncio.start_server(_handle, "127.0.0.1", 0, backlog=1024)
        port_out.send(server.sockets[0].getsockname()[1])
        async with server:
            await asyncio.sleep(seconds)

    asyncio.run(main())


def make_run(root: Path, items: int) -> Path:
    """A generated suite of `items` items (scenes and bar charts)."""
    run = root / "run"
    subprocess.run([sys.executable, "-m", "deltaprompts.cli", "generate", "--family", "scene.shapes,chart.bar",
                    "--n", str(items), "--out", str(run), "--quiet"], check=True, capture_output=True)
    return run


TARGET = 500  # requests per client CPU-second


def score_once(run: Path, url: str, k: int, adaptive: bool, concurrency: int, batch_size: int | None) -> dict:
    """Score `run` from scratch against `url`; wall seconds, client CPU seconds, requests, completions."""
    from deltaprompts.models.specs import load_backend
    from deltaprompts.score import score_run
    from deltaprompts.store import ScoreStore

    shutil.rmtree(ScoreStore(run).root, ignore_errors=True)
    opts = f"?concurrency={concurrency}"
    teacher, student = load_backend(f"openai:teacher@{url}{opts}"), load_backend(f"openai:student@{url}{opts}")
    kw = {"batch_size": batch_size} if batch_size else {}
    c0, w0 = time.process_time(), time.perf_counter()
    summary = score_run(run, teacher, student, k=k, adaptive=adaptive, bootstrap=1, **kw)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    requests = sum(b.policy.stats.attempts for b in (teacher, student))
    return {"wall": wall, "cpu": cpu, "requests": requests, "completions": sum(summary.completions.values())}


def score_fresh(run: Path, url: str, k: int, adaptive: bool, concurrency: int, batch_size: int | None,
                sdk: bool = False) -> dict:
    """`score_once` in a fresh Python process (`sdk`: through the OpenAI SDK's client)."""
    argv = [sys.executable, __file__, "--child", json.dumps([str(run), url, k, adaptive, concurrency, batch_size, sdk])]
    out = subprocess.run(argv, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def child(spec: str) -> None:
    run, url, k, adaptive, concurrency, batch_size, sdk = json.loads(spec)
    import deltaprompts.models.openai_backend as backend_module
    import deltaprompts.score  # noqa: F401  (imported before the clock starts)

    if sdk:
        backend_module.proxied = lambda url: True  # the SDK client path, as behind a proxy
    print(json.dumps(score_once(Path(run), url, k, adaptive, concurrency, batch_size)))


def hf_overhead(root: Path, items: int, k: int) -> dict:
    """Score `items` items with a tiny LLaVA as teacher and student; wall seconds in total and inside
    `model.generate`, and the generate calls made."""
    from deltaprompts.models.hf import HFBackend
    from deltaprompts.models.tiny import build_tiny_vlm
    from deltaprompts.score import score_run

    import torch

    torch.set_num_threads(1)
    run = make_run(root / "hf", items)
    folder = build_tiny_vlm("llava", root / "tiny_llava")
    backends = [HFBackend(str(folder), threads=1) for _ in range(2)]
    inside = {"s": 0.0, "calls": 0}
    for b in backends:
        model = b._load()[0]
        generate = model.generate

        def timed(*args, _generate=generate, **kwargs):
            t0 = time.perf_counter()
            try:
                return _generate(*args, **kwargs)
            finally:
                inside["s"] += time.perf_counter() - t0
                inside["calls"] += 1

        model.generate = timed
    w0 = time.perf_counter()
    summary = score_run(run, backends[0], backends[1], k=k, bootstrap=1)
    wall = time.perf_counter() - w0
    return {"wall": wall, "generate": inside["s"], "calls": inside["calls"], "items": summary.items}


def reencode_data_url(path: str, max_pixels: int) -> str:
    """The per-request encoding clients used before the cache: decode, re-encode PNG and base64 the
    image for every request (the baseline)."""
    import base64

    from PIL import Image

    from deltaprompts.models.images import rgb_png

    with Image.open(path) as im:
        im = im.convert("RGB")
    return "data:image/png;base64," + base64.b64encode(rgb_png(im, max_pixels)).decode()


def encode_baseline(run: Path, requests: int) -> tuple[float, float]:
    """CPU seconds per request of the old path (every request re-encodes its image) and of the cache."""
    from deltaprompts.models.images import ImageCache
    from deltaprompts.store import RunStore

    paths = [str(run / it.image.path) for it in RunStore(run).iter_items()]
    c0 = time.process_time()
    for i in range(requests):
        reencode_data_url(paths[i % len(paths)], 1024 * 1024)
    old = (time.process_time() - c0) / requests
    cache = ImageCache()
    c0 = time.process_time()
    for i in range(requests):
        cache.data_url(paths[i % len(paths)], None, 1024 * 1024)
    return old, (time.process_time() - c0) / requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=400)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=None, help="default: the backend's default")
    parser.add_argument("--batch-size", type=int, default=None, help="default: score_run's default")
    parser.add_argument("--seconds", type=float, default=600, help="the server stops after this long")
    parser.add_argument("--sdk", action="store_true", help="also run through the OpenAI SDK's client (before)")
    parser.add_argument("--hf-items", type=int, default=16, help="items of the hf: overhead run (0: skip it)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child)
    from deltaprompts.models.openai_backend import DEFAULT_CONCURRENCY

    concurrency = args.concurrency or DEFAULT_CONCURRENCY
    recv, send = mp.Pipe(duplex=False)
    server = mp.Process(target=serve, args=(send, args.seconds), daemon=True)
    server.start()
    try:
        port = recv.recv()
        url = f"http://127.0.0.1:{port}/v1"
        with tempfile.TemporaryDirectory() as tmp:
            run = make_run(Path(tmp), args.items)
            print(f"{args.items} items, k={args.k}, concurrency={concurrency}, batch={args.batch_size or 'default'}, "
                  f"target {TARGET} requests per client CPU-second")
            print(f"{'client':<6} {'mode':<9} {'wall s':>7} {'requests':>9} {'req/s':>8} {'compl/s':>8} "
                  f"{'CPU ms/req':>11} {'req/CPU-s':>10} {'x target':>9}")
            for sdk in (True, False) if args.sdk else (False,):
                for adaptive in (False, True):
                    r = score_fresh(run, url, args.k, adaptive, concurrency, args.batch_size, sdk)
                    rate = r["requests"] / r["cpu"]
                    print(f"{'sdk' if sdk else 'lean':<6} {'adaptive' if adaptive else 'fixed':<9} {r['wall']:>7.2f} "
                          f"{r['requests']:>9} {r['requests'] / r['wall']:>8.0f} {r['completions'] / r['wall']:>8.0f} "
                          f"{1000 * r['cpu'] / r['requests']:>11.2f} {rate:>10.0f} {rate / TARGET:>9.2f}")
            old, new = encode_baseline(run, 400)
            print(f"image encoding per request: old path {1000 * old:.2f} ms CPU, cached {1000 * new:.4f} ms CPU "
                  f"({old / max(new, 1e-9):.0f}x)")
            if args.hf_items:
                h = hf_overhead(Path(tmp), args.hf_items, args.k)
                outside = (h["wall"] - h["generate"]) / h["items"]
                print(f"hf: tiny llava, {h['items']} items, k={args.k}: {h['wall']:.2f} s, {h['generate']:.2f} s in "
                      f"{h['calls']} generate calls; per item outside generate {1000 * outside:.1f} ms "
                      f"({1000 * h['generate'] / h['items']:.1f} ms inside)")
    finally:
        server.terminate()
        server.join(5)


if __name__ == "__main__":
    main()
