"""OneBot application side, Python websockets: a reverse WebSocket server.
Prints "LISTEN <port>", then for each connection "CONN <headers as JSON>",
every message received as one JSON line, and sends a get_login_info
request after each connection's first message. With --drop-first it
closes the first connection (no close frame) after its first message.

usage: server.py [PORT] [--drop-first]"""
import asyncio
import json
import sys

import websockets

drop_first = "--drop-first" in sys.argv
args = [a for a in sys.argv[1:] if not a.startswith("--")]
port = int(args[0]) if args else 0
conns = 0


async def handler(ws, path=None):
    global conns
    conns += 1
    n = conns
    print("CONN " + json.dumps(dict(ws.request_headers)), flush=True)
    first = True
    async for msg in ws:
        print(json.dumps(json.loads(msg)), flush=True)
        if first:
            first = False
            if drop_first and n == 1:
                ws.transport.abort()
                return
            await ws.send(json.dumps({"action": "get_login_info", "echo": "py-%d" % n}))


async def main():
    async with websockets.serve(handler, "127.0.0.1", port, ping_interval=None) as srv:
        print("LISTEN %d" % srv.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()


asyncio.run(main())
