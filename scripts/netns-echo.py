#!/usr/bin/env python3
"""TCP echo server for the e2e backends: python3 netns-echo.py ADDR PORT NAME.

On connect it sends one line "NAME\n" (so a client knows which backend it reached),
then echoes everything back. Logs one line per connection open/close to stdout."""
import asyncio
import sys


async def handle(reader, writer, name):
    peer = writer.get_extra_info("peername")
    print(f"open {peer[0]}:{peer[1]}", flush=True)
    nbytes = 0
    try:
        writer.write(f"{name}\n".encode())
        await writer.drain()
        while True:
            data = await reader.read(65536)
            if not data:
                break
            nbytes += len(data)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError) as e:
        print(f"error {peer[0]}:{peer[1]} {e!r}", flush=True)
    finally:
        print(f"close {peer[0]}:{peer[1]} bytes={nbytes}", flush=True)
        try:
            writer.close()
        except Exception:
            pass


async def main():
    addr, port, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    server = await asyncio.start_server(lambda r, w: handle(r, w, name), addr, port,
                                        backlog=1024, reuse_address=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
