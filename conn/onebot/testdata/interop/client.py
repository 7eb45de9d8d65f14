"""OneBot application side, Python websockets: connects to a forward
OneBot server, prints every message it receives as one JSON line, and
sends one API request per argument after the first message.

usage: client.py URL [TOKEN|-] [REQUEST_JSON ...]
Prints "STATUS <code>" and exits 0 if the handshake is refused."""
import asyncio
import json
import sys

import websockets


async def main():
    url = sys.argv[1]
    token = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] != "-" else None
    requests = sys.argv[3:]
    headers = {"Authorization": "Bearer " + token} if token else {}
    try:
        ws = await websockets.connect(url, extra_headers=headers, ping_interval=None)
    except websockets.exceptions.InvalidStatusCode as e:
        print("STATUS %d" % e.status_code, flush=True)
        return
    print("OPEN", flush=True)
    sent = False
    async for msg in ws:
        print(json.dumps(json.loads(msg)), flush=True)
        if not sent:
            sent = True
            for r in requests:
                await ws.send(r)


asyncio.run(main())
