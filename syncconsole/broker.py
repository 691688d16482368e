"""The server-less broker of `make run` without CELERY_BROKER_URL: kombu's filesystem
transport, with each message written whole before it appears in the queue folder.

The stock transport writes a message straight into its final file while a worker may list the
folder and take that file at the same moment; the worker then reads it half-written, fails to
decode it and stops ("Unrecoverable error: JSONDecodeError"). Here a message is written to a
hidden temporary name the worker never takes, then renamed, which is atomic on one file system.
"""

import os
import uuid
from pathlib import Path
from time import monotonic
from typing import Any

from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

# The scheme of the broker URL that selects this transport ("queue-files://").
SCHEME = "queue-files"


def transport_options(folder: Path) -> dict[str, Any]:
    """The transport's folders under `folder` (made if missing): messages, the ones taken,
    and the exchanges' tables."""
    for name in ("queue", "processed", "control"):
        (folder / name).mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "processed_folder": str(folder / "processed"),
        "control_folder": str(folder / "control"),
        "store_processed": False,
    }


class Channel(filesystem.Channel):
    # The stock filesystem channel's own signature, which differs from its base class's.
    def _put(self, queue, payload, **kwargs):  # type: ignore[override]
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        # A leading dot: the name's part after its first dot is never "<queue>.msg", so the
        # consumer (which takes only those) leaves it alone until it is renamed.
        partial = os.path.join(self.data_folder_out, f".{name}.part")
        try:
            with open(partial, "wb") as message:
                message.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise filesystem.ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel


TRANSPORT_ALIASES[SCHEME] = f"{__name__}:Transport"
