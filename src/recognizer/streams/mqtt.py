"""MQTT: events at QoS 1, and an availability topic a dashboard can trust.

Topics under the prefix (``RECOGNIZER_MQTT_TOPIC``, default ``recognizer``):

* ``<prefix>/<stream>/events``: one JSON event per message, QoS 1 (at least once; the event id
  de-duplicates).
* ``<prefix>/availability``: ``online`` (retained) once connected, ``offline`` (retained) on a clean
  stop, and the broker publishes ``offline`` as our last will when the process dies (``kill -9``)
  or the network goes, after the keepalive expires.

paho's network thread connects in the background and reconnects with backoff; messages published
while disconnected wait in its queue. Nothing here blocks a stream.
"""

from __future__ import annotations

import json
import logging
import os
import re
from urllib.parse import urlsplit

from paho.mqtt import client as mqtt

from recognizer.errors import ConfigError
from recognizer.streams.events import Event
from recognizer.streams.sources import redact

log = logging.getLogger("recognizer.streams")
_TOPIC_UNSAFE = re.compile(r"[+#/\s]")


class MqttSink:
    name = "mqtt"

    def __init__(
        self, url: str, prefix: str = "recognizer", *, keepalive_s: int = 30, client_id: str | None = None
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "tcp") or not parts.hostname:
            raise ConfigError(f"MQTT URL {redact(url)} must be mqtt://HOST[:PORT]")
        self.prefix = prefix.rstrip("/")
        self.availability = f"{self.prefix}/availability"
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or f"recognizer-{os.getpid()}"
        )
        if parts.username:
            self.client.username_pw_set(parts.username, parts.password)
        self.client.will_set(self.availability, "offline", qos=1, retain=True)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.max_queued_messages_set(10_000)
        self.client.on_connect = self._on_connect
        self.client.connect_async(parts.hostname, parts.port or 1883, keepalive=keepalive_s)
        self.client.loop_start()

    def _on_connect(
        self, client: mqtt.Client, userdata: object, flags: object, reason: object, props: object
    ) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("MQTT broker refused the connection: %s", reason)
            return
        client.publish(self.availability, "online", qos=1, retain=True)

    def topic(self, stream: str) -> str:
        return f"{self.prefix}/{_TOPIC_UNSAFE.sub('_', stream)}/events"

    def deliver(self, event: Event) -> None:
        body = json.dumps(event.as_dict(), sort_keys=True, separators=(",", ":"))
        self.client.publish(self.topic(event.stream), body, qos=1)

    def close(self) -> None:
        """``offline`` (retained), then disconnect: a clean stop sends no will."""
        try:
            if self.client.is_connected():
                self.client.publish(self.availability, "offline", qos=1, retain=True).wait_for_publish(2.0)
        except (RuntimeError, ValueError):  # not connected after all: the will says offline anyway
            pass
        finally:
            self.client.disconnect()
            self.client.loop_stop()
