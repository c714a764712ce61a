"""The paho-mqtt client with TLS and username/password from MQTT security
tutorials, sealed end to end with mqseal.

TLS protects each hop to the broker; mqseal protects the payload from the
sender to the receiver, through the broker and any bridge.

    python paho_tls.py --host broker.example --port 8883 --cafile ca.pem \
        --username sensor --password ... --key-file group.key \
        --sender-id 5 --counter-file sensor.counter --topic factory/line1/temp \
        --message 21.5 --count 1

It subscribes to the topic, publishes one sealed reading, and prints each
verified message (and each rejected one, with the reason) until --count.
"""

from __future__ import annotations

import argparse
import os
import queue
import sys
from typing import Union

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

import mqseal
from mqseal.paho import Message, Rejected, SealedClient


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="localhost")
    p.add_argument("--port", type=int, default=8883)
    p.add_argument("--cafile", required=True, help="CA that signed the broker's certificate (PEM)")
    p.add_argument("--username", required=True)
    p.add_argument("--password", default=os.environ.get("MQTT_PASSWORD"), help="default: $MQTT_PASSWORD")
    p.add_argument("--key-file", required=True, help="group key (mqseal:key:v1:...) from `mqseal keygen group`")
    p.add_argument("--sender-id", type=int, required=True)
    p.add_argument("--counter-file", required=True)
    p.add_argument("--new-counter-file", action="store_true", help="create the counter file of a new sender")
    p.add_argument("--topic", default="factory/line1/temp")
    p.add_argument("--message", default="21.5")
    p.add_argument("--count", type=int, default=1, help="exit after this many verified messages")
    args = p.parse_args()

    with open(args.key_file, encoding="utf-8") as f:
        key = mqseal.Key.from_text(f.read())
    sealer = mqseal.Sealer(key, args.sender_id, counter_file=args.counter_file, create=args.new_counter_file)
    opener = mqseal.Opener(mqseal.Keyring([key]))

    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.tls_set(ca_certs=args.cafile)
    client.username_pw_set(args.username, args.password)
    sealed = SealedClient(client, sealer, opener)

    events: "queue.Queue[Union[Message, Rejected, str]]" = queue.Queue()
    sealed.on_message = lambda _c, msg: events.put(msg)
    sealed.on_reject = lambda _c, rej: events.put(rej)
    client.on_subscribe = lambda *_a: events.put("subscribed")
    client.on_connect = lambda _c, _u, _f, rc, _p: events.put(f"connection refused: {rc}") if rc.is_failure else None

    client.connect(args.host, args.port)
    client.subscribe(args.topic, qos=1)
    client.loop_start()
    try:
        verified = 0
        while verified < args.count:
            event = events.get(timeout=30)
            if event == "subscribed":
                sealed.publish(args.topic, args.message.encode(), qos=1)
            elif isinstance(event, Message) and event.opened is not None:
                verified += 1
                print(f"verified from sender {event.opened.sender_id} (counter {event.opened.counter}): "
                      f"{event.payload.decode(errors='replace')}", flush=True)
            elif isinstance(event, str):
                print(event, file=sys.stderr)
                return 1
            elif isinstance(event, Rejected):
                print(f"rejected on {event.topic}: {event.reason}", file=sys.stderr, flush=True)
    except queue.Empty:
        print("timed out", file=sys.stderr)
        return 1
    finally:
        client.loop_stop()
        client.disconnect()
    return 0


if __name__ == "__main__":
    sys.exit(main())
