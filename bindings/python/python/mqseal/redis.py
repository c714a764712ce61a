"""Replay windows shared on Redis (or Valkey) by several receivers: the
scaled-out subscribers of an MQTT shared subscription, in Python or the
Rust ``mqseal sub --replay-redis``, accept each envelope once between them.

>>> import redis, mqseal, mqseal.redis
>>> store = mqseal.redis.RedisReplayStore(redis.Redis(host="127.0.0.1"))   # doctest: +SKIP
>>> opened = store.open(opener, topic, envelope)                           # doctest: +SKIP

Each receiver verifies the envelope itself (``Opener.open_pending``: the
core parses, checks the policy and the tag); the shared window decides only
whether the counter was seen. The rule is the core's: the Lua script is
``mqseal.WINDOW_SCRIPT`` (the text the core ships, run by ``EVALSHA``), the
key layout is ``WindowQuery.redis_key`` and the answers are resolved by the
core (``PendingMessage.resolve``). Nothing is decided here. While Redis
cannot be reached, ``open`` raises redis-py's error and releases nothing
(fail closed).
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import redis
from redis.exceptions import NoScriptError

from ._mqseal import DEFAULT_STORE_PREFIX, WINDOW_SCRIPT, Opened, Opener, WindowQuery

__all__ = ["DEFAULT_STORE_PREFIX", "RedisReplayStore"]


class RedisReplayStore:
    """Shared replay windows in Redis, over a redis-py ``Redis`` client.

    ``prefix`` is the key prefix (one per group or deployment sharing the
    server; the default is the core's, the same as ``mqseal sub``'s
    ``--replay-prefix``). ``ttl`` (seconds) expires a sender's window after
    its last accepted message; an expired window opens that sender's old
    envelopes again, so set it no shorter than the key's lifetime or the
    opener's ``max_age`` (default: never).
    """

    def __init__(self, client: "redis.Redis", *, prefix: str = DEFAULT_STORE_PREFIX,
                 ttl: Optional[float] = None) -> None:
        self.client = client
        self.prefix = prefix
        self._ttl_ms = 0 if ttl is None else max(1, int(ttl * 1000))
        self.script_hash: str = self._load()

    def _load(self) -> str:
        return str(self.client.script_load(WINDOW_SCRIPT))

    def decide(self, queries: Sequence[WindowQuery]) -> List[int]:
        """The store's answer code for each query, in one pipeline (one
        atomic script call per query). Raises redis-py's errors."""
        if not queries:
            return []

        def run() -> List[int]:
            pipe = self.client.pipeline(transaction=False)
            for q in queries:
                pipe.evalsha(self.script_hash, 1, q.redis_key(self.prefix), *q.script_args(self._ttl_ms))
            return [int(c) for c in pipe.execute()]

        try:
            codes = run()
        except NoScriptError:
            # The server lost its script cache (restart, SCRIPT FLUSH): no
            # call ran. Load the script again and retry once.
            self.script_hash = self._load()
            codes = run()
        if len(codes) != len(queries):
            raise redis.exceptions.ResponseError(f"{len(codes)} answers for {len(queries)} queries")
        return codes

    def open(self, opener: Opener, topic: str, envelope: bytes, now: Optional[int] = None,
             rewrite: Optional[Tuple[str, str]] = None) -> Opened:
        """Verifies ``envelope`` with ``opener`` and accepts it in the
        shared window: the verified message, or the ``mqseal.Error`` of the
        core (``DuplicateError``/``ReplayError`` when another receiver, or
        this one, accepted that counter already)."""
        pending = opener.open_pending(topic, envelope, now, rewrite)
        (code,) = self.decide([pending.query])
        return pending.resolve(code)
