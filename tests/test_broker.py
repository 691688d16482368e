"""The server-less broker: a worker that takes messages while they are being written never
gets one half-written."""

import threading

from kombu import Connection

from syncconsole import broker, task_routes


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


def test_each_kind_of_work_keeps_its_own_queue_of_files(tmp_path):
    """The queues of the kinds of work (`<CELERY_QUEUE>.sync`, `.triage`, `.notify`) have dots
    in their names: a consumer of one takes only its messages, never another queue's."""
    sync, triage, notify = task_routes.queue_names("console")
    with connection(tmp_path) as producing, connection(tmp_path) as consuming:
        for queue, count in ((triage, 3), (sync, 2), (notify, 1)):
            sender = producing.SimpleQueue(queue)
            for n in range(count):
                sender.put({"queue": queue, "n": n})
        # A queue whose name ends like another's is yet another queue.
        producing.SimpleQueue(f"other.{sync}").put({"queue": f"other.{sync}", "n": 0})

        taken = consuming.SimpleQueue(sync)
        received = []
        for _ in range(2):
            message = taken.get(timeout=5)
            received.append(message.payload)
            message.ack()
        # Messages put within the same millisecond come in either order.
        assert sorted(received, key=lambda m: m["n"]) == [
            {"queue": sync, "n": 0},
            {"queue": sync, "n": 1},
        ]
        assert taken.qsize() == 0
        assert consuming.SimpleQueue(triage).qsize() == 3
        assert consuming.SimpleQueue(notify).qsize() == 1
