"""The MQTT sink against the real Mosquitto on 127.0.0.1:1883 (skips, saying so, where none listens):
events at QoS 1, a retained availability that reads ``online`` while running and ``offline`` after a
clean stop, and the broker's last will after ``kill -9``. Each test has its own topic prefix."""

from __future__ import annotations

import json
import queue
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from paho.mqtt import client as mqtt

from recognizer.errors import ConfigError
from recognizer.streams.events import Event, event_id
from recognizer.streams.mqtt import MqttSink

HOST, PORT = "127.0.0.1", 1883
URL = f"mqtt://{HOST}:{PORT}"
CHILD = """
import sys, time
from recognizer.streams.mqtt import MqttSink
sink = MqttSink(sys.argv[1], sys.argv[2], keepalive_s=2)
assert sink.wait_connected(10), "no broker"
print("up", flush=True)
time.sleep(120)
"""


@pytest.fixture
def broker() -> None:
    try:
        socket.create_connection((HOST, PORT), timeout=1).close()
    except OSError as exc:
        pytest.skip(
            f"no MQTT broker listens on {HOST}:{PORT} ({type(exc).__name__}): apt-get install mosquitto"
        )


@pytest.fixture
def prefix(broker) -> Iterator[str]:
    name = f"recognizer-test/{uuid.uuid4().hex[:12]}"
    yield name
    clear = _client()  # leave no retained availability behind on the broker
    clear.publish(f"{name}/availability", b"", qos=1, retain=True).wait_for_publish(5)
    _stop(clear)


class Subscriber:
    def __init__(self, topic: str) -> None:
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"sub-{uuid.uuid4().hex[:8]}")
        self.client.on_message = lambda client, userdata, message: self.messages.put(message)
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.on_connect = lambda client, *args: client.subscribe(topic, qos=1)
        self.client.connect(HOST, PORT)
        self.client.loop_start()
        assert subscribed.wait(5), "the subscription was not acknowledged"

    def next(self, topic: str, timeout_s: float = 5.0) -> mqtt.MQTTMessage | None:
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = self.messages.get(timeout=left)
            except queue.Empty:
                return None
            if message.topic == topic:
                return message
        return None

    def close(self) -> None:
        _stop(self.client)


def _client() -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"clear-{uuid.uuid4().hex[:8]}")
    client.connect(HOST, PORT)
    client.loop_start()
    return client


def _stop(client: mqtt.Client) -> None:
    client.disconnect()
    client.loop_stop()


def retained(topic: str, timeout_s: float = 2.0) -> str | None:
    """What a fresh subscriber of ``topic`` is handed first (the retained message), if anything."""
    subscriber = Subscriber(topic)
    try:
        message = subscriber.next(topic, timeout_s)
        return None if message is None else message.payload.decode()
    finally:
        subscriber.close()


def wait_retained(topic: str, expected: str, timeout_s: float) -> str | None:
    deadline = time.monotonic() + timeout_s
    while (value := retained(topic, 1.0)) != expected and time.monotonic() < deadline:
        time.sleep(0.3)
    return value


def make_event(stream: str) -> Event:
    return Event(
        event_id(stream, "person", "started", 12.5), "started", stream, "person", 12.5, 0.93, label="man"
    )


def test_events_arrive_at_qos_1_and_availability_tells_the_truth(prefix):
    sink = MqttSink(URL, prefix, keepalive_s=2)
    try:
        assert sink.wait_connected(5)
        assert wait_retained(f"{prefix}/availability", "online", 5) == "online"
        subscriber = Subscriber(f"{prefix}/+/events")
        event = make_event("gate/1+#")
        sink.deliver(event)
        message = subscriber.next(f"{prefix}/gate_1__/events")
        subscriber.close()
        assert message is not None, "the event never arrived"
        assert message.qos == 1 and not message.retain
        assert json.loads(message.payload) == event.as_dict()
    finally:
        sink.close()
    assert sink.pending() == 0  # the event, online and offline: all acknowledged
    assert retained(f"{prefix}/availability") == "offline"


def test_events_delivered_before_the_connection_are_sent_even_on_an_immediate_close(prefix):
    subscriber = Subscriber(f"{prefix}/+/events")
    sink = MqttSink(URL, prefix)
    event = make_event("yard")
    sink.deliver(event)  # paho connects in the background: this one waits in its queue
    sink.close()  # a short file ends at once: close gives the queue its moment
    try:
        message = subscriber.next(f"{prefix}/yard/events")
        assert message is not None and json.loads(message.payload)["id"] == event.id
    finally:
        subscriber.close()


def test_the_broker_says_offline_when_the_process_is_killed(prefix):
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, URL, prefix], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline().strip() == "up", child.stderr.read()
        assert wait_retained(f"{prefix}/availability", "online", 5) == "online"
        child.kill()  # SIGKILL: no clean disconnect, no "offline" of ours
        child.wait(5)
        # the kernel closes the dead process's socket, so the will goes out at once; were the
        # network gone instead, once the keepalive (2 s) has been missed by half again
        assert wait_retained(f"{prefix}/availability", "offline", 15) == "offline"
    finally:
        child.kill()
        child.wait(5)
        child.stdout.close(), child.stderr.close()


def test_close_never_hangs_without_a_broker():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
    sink = MqttSink(f"mqtt://{HOST}:{port}", "recognizer-test")
    sink.deliver(make_event("gate"))
    time.sleep(0.3)
    started = time.monotonic()
    sink.close()
    assert time.monotonic() - started < 5.0
    assert sink.pending() == 1  # held in memory only: lost with the process (the webhook's outbox is not)


@pytest.mark.parametrize("url", ["mqtts://broker:8883", "http://broker", "mqtt://", "mqtt://host:notaport"])
def test_other_urls_are_refused(url):
    with pytest.raises(ConfigError, match="mqtt://HOST"):
        MqttSink(url, "recognizer")


@pytest.mark.parametrize("prefix", ["", "/", "a/+/b", "a/#"])
def test_wildcard_prefixes_are_refused(prefix):
    with pytest.raises(ConfigError, match="topic prefix"):
        MqttSink(URL, prefix)
