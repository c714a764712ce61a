"""An asyncio service: verifies telemetry sealed by devices (for example the
Rust `mqseal pub`) and answers each reading with a sealed command.

    python aiomqtt_service.py --host 127.0.0.1 --port 1883 --key-file group.key \
        --sender-id 900 --counter-file service.counter --replay-state service.replay

Telemetry arrives on ``telemetry/<device>/up``, sealed with a timestamp
(``mqseal pub --timestamps``): readings older than five minutes are refused.
The command goes to ``cmd/<device>``. The replay windows are saved to --replay-state on exit and
restored at start, so a restart does not accept old telemetry again.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import aiomqtt

import mqseal
from mqseal.aiomqtt import Rejected, SealedClient


def on_reject(rej: Rejected) -> None:
    print(f"rejected on {rej.topic}: {rej.reason}", file=sys.stderr, flush=True)


async def serve(args: argparse.Namespace) -> int:
    with open(args.key_file, encoding="utf-8") as f:
        key = mqseal.Key.from_text(f.read())
    sealer = mqseal.Sealer(key, args.sender_id, counter_file=args.counter_file, create=args.new_counter_file)
    opener = mqseal.Opener(mqseal.Keyring([key]), max_age=300)
    state = mqseal.ReplayStateFile(args.replay_state) if args.replay_state else None
    if state is not None:
        state.restore_into(opener)
    handled = 0
    try:
        async with aiomqtt.Client(args.host, args.port) as client:
            sealed = SealedClient(client, sealer, opener, on_reject=on_reject)
            await client.subscribe("telemetry/+/up", qos=1)
            print("ready", flush=True)
            async for msg in sealed:
                assert msg.opened is not None
                device = msg.topic.split("/")[1]
                reading = msg.payload.decode(errors="replace")
                print(f"{device} (sender {msg.opened.sender_id}, counter {msg.opened.counter}): {reading}",
                      flush=True)
                await sealed.publish(f"cmd/{device}", f"ack {msg.opened.counter}: {reading}".encode(), qos=1)
                handled += 1
                if args.count and handled >= args.count:
                    break
    finally:
        if state is not None:
            state.save(opener)
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="localhost")
    p.add_argument("--port", type=int, default=1883)
    p.add_argument("--key-file", required=True)
    p.add_argument("--sender-id", type=int, required=True)
    p.add_argument("--counter-file", required=True)
    p.add_argument("--new-counter-file", action="store_true")
    p.add_argument("--replay-state", help="file keeping the replay windows across restarts")
    p.add_argument("--count", type=int, default=0, help="exit after this many readings (0: run forever)")
    return asyncio.run(serve(p.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
