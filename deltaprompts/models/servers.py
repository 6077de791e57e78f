"""One model served by several OpenAI-compatible servers: `openai:MODEL@URL1,URL2,...`.

Each call's requests are spread over the live servers in proportion to their concurrency (each
server keeps its own connection pool and bound); a server that fails a request past its retries is
taken out, and what it left undone is asked of the others. The completions do not depend on which
server answered: every call's seed comes from (sampling seed, request, sample index), and the
backend's identity names the model and the set of servers, not an order.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from deltaprompts.errors import UserError
from deltaprompts.models.base import Completion, Request, Sampling
from deltaprompts.models.wrappers import PartialResults

if TYPE_CHECKING:
    from deltaprompts.models.openai_backend import OpenAIBackend


class ServerPool:
    """Several OpenAIBackends of one model; `sample` splits the work over those still alive."""

    concurrent = True

    def __init__(self, servers: Sequence[OpenAIBackend]):
        if len(servers) < 2:
            raise UserError("a server pool needs at least two servers")
        models = {s.model for s in servers}
        if len(models) != 1 or len({s.base_url for s in servers}) != len(servers):
            raise UserError(f"a server pool serves one model from distinct URLs; got {sorted(models)} at "
                            f"{[s.base_url for s in servers]}")
        self.servers = list(servers)
        self.model = servers[0].model
        urls = ",".join(sorted(s.base_url for s in servers))
        self.identity = f"openai:{self.model}@{urls}?max_pixels={servers[0].max_pixels}"
        self.dead: dict[str, str] = {}  # base URL -> why it was taken out
        self._lock = threading.Lock()

    def live(self) -> list[OpenAIBackend]:
        with self._lock:
            return [s for s in self.servers if s.base_url not in self.dead]

    def close(self) -> None:
        for s in self.servers:
            s.close()

    def _split(self, todo: list[int], live: list[OpenAIBackend]) -> list[list[int]]:
        """Request positions per live server, in proportion to their concurrency (round robin by weight)."""
        total = sum(s.concurrency for s in live)
        shares: list[list[int]] = [[] for _ in live]
        credit = [0.0] * len(live)
        for r in todo:
            for k, s in enumerate(live):
                credit[k] += s.concurrency / total
            k = max(range(len(live)), key=lambda j: credit[j])
            credit[k] -= 1.0
            shares[k].append(r)
        return shares

    def sample(self, requests: Sequence[Request], sampling: Sampling,
               indices: Sequence[Sequence[int]]) -> list[list[Completion]]:
        """Completions for the given indices, from whichever servers are alive; raises
        PartialResults (carrying what came back) when every server has been taken out."""
        if len(indices) != len(requests):
            raise UserError(f"sample: {len(requests)} requests but {len(indices)} index lists")
        results: list[list[Completion]] = [[] for _ in requests]
        todo = list(range(len(requests)))
        while todo:
            live = self.live()
            if not live:
                why = "; ".join(f"{u}: {m}" for u, m in self.dead.items())
                raise PartialResults(f"every server of {self.model} failed ({why}); "
                                     f"{len(requests) - len(todo)} of {len(requests)} requests done", results)
            shares = [(s, part) for s, part in zip(live, self._split(todo, live)) if part]

            def run(server: OpenAIBackend, part: list[int]) -> list[int]:
                """Ask `server` for its part; return the positions it left undone (it is then taken out)."""
                want = [[i for i in indices[r] if i not in {c.index for c in results[r]}] for r in part]
                try:
                    got = server.sample([requests[r] for r in part], sampling, want)
                except PartialResults as e:
                    got, failed = e.completions, str(e)
                else:
                    failed = ""
                undone = []
                for r, w, comps in zip(part, want, got):
                    results[r] += [c for c in comps if c.index in w]
                    if len({c.index for c in comps} & set(w)) < len(set(w)):
                        undone.append(r)
                if failed or undone:
                    with self._lock:
                        self.dead.setdefault(server.base_url, failed or "returned fewer completions than asked")
                return undone

            with ThreadPoolExecutor(len(shares)) as pool:
                todo = sorted(r for left in pool.map(lambda sp: run(*sp), shares) for r in left)
        for r in range(len(requests)):
            results[r].sort(key=lambda c: c.index)
        return results
