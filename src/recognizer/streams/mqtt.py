"""MQTT: events at QoS 1, and an availability topic a dashboard can trust.

Topics under the prefix (``RECOGNIZER_MQTT_TOPIC``, default ``recognizer``):

* ``<prefix>/<stream>/events``: one JSON event per message, QoS 1 (at least once: the event's
  ``id`` lets a subscriber drop a copy). ``+``, ``#`` and ``/`` in a stream name become ``_``, so a
  name can neither act as a wildcard nor open a sub-level.
* ``<prefix>/availability``: ``online`` (retained, QoS 1) on every (re)connection, ``offline``
  (retained) on a clean stop, and the broker publishes ``offline`` as our last will when the process
  dies (``kill -9``) or the network goes, once the keepalive expires (1.5 × ``keepalive_s``).

paho's network thread connects in the background and reconnects with backoff; QoS 1 messages
published while disconnected wait in its queue (in memory: a process that dies while the broker is
away loses them, unlike the webhook's outbox). Nothing here blocks a stream.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import socket
import threading
from urllib.parse import unquote, urlsplit

from paho.mqtt import client as mqtt

from recognizer.errors import ConfigError
from recognizer.streams.events import Event
from recognizer.streams.sources import redact

log = logging.getLogger("recognizer.streams")

_TOPIC_UNSAFE = re.compile(r"[+#/\x00]")
#: QoS 1 messages held while the broker is away (events are small: this is a few MB at most)
MAX_QUEUED = 100_000
#: longest wait, at close, for the broker to acknowledge ``offline`` and for the network thread
CLOSE_WAIT_S = 2.0


def topic_part(name: str) -> str:
    """``name`` made safe as one topic level."""
    return _TOPIC_UNSAFE.sub("_", name) or "_"


class MqttSink:
    name = "mqtt"

    def __init__(
        self,
        url: str,
        topic_prefix: str = "recognizer",
        client_id: str | None = None,
        *,
        keepalive_s: int = 30,
        reconnect_max_s: int = 30,
    ) -> None:
        host, port, user, password = _parse(url)
        self.prefix = _prefix(topic_prefix)
        self.availability = f"{self.prefix}/availability"
        self._closed = False
        self._connected_once = threading.Event()
        self._unacked = _Unacked()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or _client_id())
        if user is not None:
            self.client.username_pw_set(user, password)
        self.client.will_set(self.availability, "offline", qos=1, retain=True)
        self.client.reconnect_delay_set(min_delay=1, max_delay=reconnect_max_s)
        self.client.max_queued_messages_set(MAX_QUEUED)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = lambda client, userdata, mid, *rest: self._unacked.acked(mid)
        self.client.connect_async(host, port, keepalive=keepalive_s)
        self.client.loop_start()

    def topic(self, stream: str) -> str:
        return f"{self.prefix}/{topic_part(stream)}/events"

    def deliver(self, event: Event) -> None:
        """Queued in the client (sent now, or after the reconnection) when this returns."""
        body = json.dumps(event.as_dict(), sort_keys=True, separators=(",", ":"))
        if not self._publish(self.topic(event.stream), body):
            log.warning(
                "MQTT: %d messages already wait for the broker; event %s dropped", MAX_QUEUED, event.id
            )

    def pending(self) -> int:
        """Messages the broker has not acknowledged yet (what a metric or a test watches)."""
        return len(self._unacked)

    def wait_connected(self, timeout_s: float) -> bool:
        """True once the broker has accepted us (tests, and a CLI that wants to say so)."""
        return self._connected_once.wait(timeout_s)

    def close(self) -> None:
        """Queued events get a moment to go (a short file's events may predate the connection),
        then ``offline`` (retained), then disconnect: a clean stop sends no will. Bounded in time
        (a few seconds) even with the broker gone: the will, or the last ``offline``, then tells
        the truth."""
        if self._closed:
            return
        self._closed = True
        if self.pending() and not self.client.is_connected():
            self.wait_connected(CLOSE_WAIT_S)
        if self.client.is_connected():
            self._publish(self.availability, "offline", retain=True)
            if not self._unacked.wait_empty(CLOSE_WAIT_S):
                log.info("MQTT: %d messages not acknowledged at close", self.pending())
        self.client.disconnect()
        stopper = threading.Thread(target=self.client.loop_stop, name="mqtt-stop", daemon=True)
        stopper.start()
        stopper.join(CLOSE_WAIT_S)

    def _publish(self, topic: str, payload: str, retain: bool = False) -> bool:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
            return False
        self._unacked.published(info.mid)
        return True

    def _on_connect(
        self, client: mqtt.Client, userdata: object, flags: object, reason: object, properties: object
    ) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("MQTT: the broker refused the connection: %s", reason)
            return
        self._publish(self.availability, "online", retain=True)
        self._connected_once.set()
        log.info("MQTT: connected; events go to %s", self.topic("<stream>"))

    def _on_disconnect(
        self, client: mqtt.Client, userdata: object, flags: object, reason: object, properties: object
    ) -> None:
        if not self._closed:
            log.warning("MQTT: disconnected from the broker (%s); reconnecting, events wait", reason)


class _Unacked:
    """Message ids published and not yet acknowledged. paho's MQTTMessageInfo cannot tell: for a
    message queued before the connection its ``rc`` stays "not connected" even once it is sent.
    An ack may come before its publisher records the id; it is kept until then."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._waiting: set[int] = set()
        self._early: set[int] = set()

    def published(self, mid: int) -> None:
        with self._changed:
            if mid in self._early:
                self._early.discard(mid)
            else:
                self._waiting.add(mid)

    def acked(self, mid: int) -> None:
        with self._changed:
            if mid in self._waiting:
                self._waiting.discard(mid)
                self._changed.notify_all()
            else:
                self._early.add(mid)

    def wait_empty(self, timeout_s: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: not self._waiting, timeout_s)

    def __len__(self) -> int:
        return len(self._waiting)


def _parse(url: str) -> tuple[str, int, str | None, str | None]:
    parts = urlsplit(url)
    try:
        port = parts.port or 1883
    except ValueError:
        port = 0
    if parts.scheme != "mqtt" or not parts.hostname or not port:
        raise ConfigError(f"MQTT URL {redact(url)} must be mqtt://HOST[:PORT] (TLS is not supported)")
    user = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return parts.hostname, port, user, password


def _prefix(prefix: str) -> str:
    prefix = prefix.strip("/")
    if not prefix or "+" in prefix or "#" in prefix:
        raise ConfigError(f"MQTT topic prefix {prefix!r} must be non-empty with no + or # (e.g. recognizer)")
    return prefix


def _client_id() -> str:
    """Unique per sink: two processes (or hosts) with one id would knock each other off the broker."""
    return f"recognizer-{socket.gethostname()[:20]}-{os.getpid()}-{secrets.token_hex(3)}"
