"""The server-less broker: a worker that takes messages while they are being written never
gets one half-written."""

import threading

from kombu import Connection

from syncconsole import broker


def connection(folder) -> Connection:
    return Connection(f"{broker.SCHEME}://", transport_options=broker.transport_options(folder))


def test_messages_taken_while_they_are_written_arrive_whole(tmp_path):
    body = "x" * 300_000  # large enough that writing one takes a while
    count = 60
    with connection(tmp_path) as producing, connection(tmp_path) as consuming:
        queue = consuming.SimpleQueue("work")
        sender = producing.SimpleQueue("work")
        received: list[str] = []

        def produce() -> None:
            for n in range(count):
                sender.put({"n": n, "body": body})

        producer = threading.Thread(target=produce)
        producer.start()
        while len(received) < count:
            message = queue.get(timeout=30)
            received.append(message.payload["body"])
            message.ack()
        producer.join()
    assert received == [body] * count
    assert not list((tmp_path / "queue").iterdir())  # no partial file left behind
