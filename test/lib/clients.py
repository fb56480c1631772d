"""The clients of the end-to-end tests (test/e2e/e2e.py, test/e2e/health.py): echo and
HTTP connections through the VIP, short and long-lived. Standard library only, asyncio.

The backends (scripts/netns serve) tell a client which backend it reached: nginx on
:8080 answers GET /hello with "hello from bK", and the echo server on :9000
(scripts/netns-echo.py) greets every connection with one line "bK", then echoes.

Failures are named by error_kind(): reset, refused, timeout (a long-lived connection's
exchange that times out is a "stall"), eof, corrupt, bad response, moved A->B,
oserror N.
"""
import asyncio
import time


class Unexpected(Exception):
    """A reply that arrived but is wrong; str() is its kind."""


def error_kind(e, timeout="timeout"):
    if isinstance(e, Unexpected):
        return str(e)
    if isinstance(e, ConnectionResetError):
        return "reset"
    if isinstance(e, ConnectionRefusedError):
        return "refused"
    if isinstance(e, asyncio.TimeoutError):
        return timeout
    if isinstance(e, asyncio.IncompleteReadError):
        return "eof"
    if isinstance(e, OSError):
        return f"oserror {e.errno}"
    return type(e).__name__


async def connect(host, port, timeout):
    return await asyncio.wait_for(asyncio.open_connection(host, port), timeout)


async def open_echo(host, port, timeout=3.0):
    """An echo connection: (reader, writer, the backend's name from the greeting)."""
    reader, writer = await connect(host, port, timeout)
    name = (await asyncio.wait_for(reader.readline(), timeout)).decode().strip()
    if not name:
        raise Unexpected("no greeting")
    return reader, writer, name


async def echo_backends(host, port, n, concurrency=16):
    """N short echo connections: {backend name: count}."""
    counts = {}
    sem = asyncio.Semaphore(concurrency)

    async def one():
        async with sem:
            _, w, name = await open_echo(host, port)
            counts[name] = counts.get(name, 0) + 1
            w.close()

    await asyncio.gather(*[one() for _ in range(n)])
    return counts


# ---- HTTP ----

def http_request(host, path="/hello", keepalive=False, agent="evenflow-e2e"):
    version = "1.1" if keepalive else "1.0"
    return f"GET {path} HTTP/{version}\r\nHost: {host}\r\nUser-Agent: {agent}\r\n\r\n".encode()


def backend_of(head, body):
    """The backend's name from a /hello response; Unexpected if it is not one."""
    if not head.startswith(b"HTTP/1.1 200") or not body.startswith(b"hello from "):
        raise Unexpected(f"bad response {(head + body)[:60]!r}")
    return body.decode().split()[-1]


async def http_get(host, port, path="/hello", timeout=10.0, connect_timeout=None,
                   agent="evenflow-e2e"):
    """One HTTP/1.0 GET on its own connection: the name of the backend that answered."""
    r, w = await connect(host, port, connect_timeout or timeout)
    try:
        w.write(http_request(host, path, agent=agent))
        await w.drain()
        data = await asyncio.wait_for(r.read(), timeout)
    finally:
        w.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return backend_of(head, body)


async def read_http_response(reader, timeout):
    """One response on a keep-alive connection: the backend's name."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    body = await asyncio.wait_for(reader.readexactly(length), timeout)
    return backend_of(head, body)


# ---- long-lived connections ----

class LongLived:
    """A connection through the VIP kept open and exercised: kind "echo" (a 32-byte
    message, echoed) or "keepalive" (HTTP/1.1 GET /hello, always from the same backend).
    Records the backend, the exchanges, the longest gap between two and the first
    error (its kind and epoch time)."""

    def __init__(self, idx, kind="echo", agent="evenflow-e2e"):
        self.idx, self.kind, self.agent = idx, kind, agent
        self.backend = None
        self.exchanges = 0
        self.max_gap = 0.0
        self.error = None
        self.error_at = None
        self.reader = self.writer = None
        self._host = None
        self._seq = 0
        self._last = time.monotonic()

    async def open(self, host, port, timeout=3.0):
        self._host = host
        if self.kind == "echo":
            self.reader, self.writer, self.backend = await open_echo(host, port, timeout)
        else:
            self.reader, self.writer = await connect(host, port, timeout)
        self._last = time.monotonic()

    async def exchange(self, timeout):
        """One round trip; raises on any failure."""
        if self.kind == "echo":
            msg = f"{self.idx:05d}:{self._seq:010d}:".ljust(31, "x").encode() + b"\n"
            self.writer.write(msg)
            await self.writer.drain()
            got = await asyncio.wait_for(self.reader.readexactly(len(msg)), timeout)
            if got != msg:
                raise Unexpected("corrupt")
        else:
            self.writer.write(http_request(self._host, keepalive=True, agent=self.agent))
            await self.writer.drain()
            name = await read_http_response(self.reader, timeout)
            if self.backend is None:
                self.backend = name
            elif name != self.backend:
                raise Unexpected(f"moved {self.backend}->{name}")
        now = time.monotonic()
        self.max_gap = max(self.max_gap, now - self._last)
        self._last = now
        self.exchanges += 1
        self._seq += 1

    async def probe(self, timeout):
        """One exchange: None if it worked, else the error's kind (not recorded)."""
        try:
            await self.exchange(timeout)
            return None
        except Exception as e:  # noqa: BLE001 - every failure is a result
            return error_kind(e, timeout="stall")

    async def run(self, interval, stop, timeout):
        """Exchanges every `interval` until `stop` is set or the first error (recorded)."""
        self._last = time.monotonic()
        while not stop.is_set():
            try:
                await self.exchange(timeout)
            except Exception as e:  # noqa: BLE001
                self.error, self.error_at = error_kind(e, timeout="stall"), time.time()
                return
            try:
                await asyncio.wait_for(stop.wait(), interval)
            except asyncio.TimeoutError:
                pass

    async def open_and_run(self, host, port, interval, stop, timeout):
        """run() on a connection opened here; an error opening it is "open KIND"."""
        try:
            await self.open(host, port)
        except Exception as e:  # noqa: BLE001
            self.error, self.error_at = "open " + error_kind(e), time.time()
            return
        await self.run(interval, stop, timeout)
        self.close()

    def close(self):
        try:
            self.writer.close()
        except Exception:  # noqa: BLE001
            pass


async def open_many(host, port, n, kind="echo"):
    """N connections opened one after the other; raises on the first failure."""
    conns = []
    for i in range(n):
        c = LongLived(i, kind)
        await c.open(host, port)
        conns.append(c)
    return conns


def close_all(conns):
    for c in conns:
        c.close()
