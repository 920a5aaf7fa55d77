"""Reads back a Weights & Biases offline run (``run-*.wandb``) for the self-tests.

wandb 0.31 writes its transaction log in LevelDB's log format behind a 7-byte header (``:W&B``, magic,
version) and no longer ships a Python reader; each record is a ``wandb_internal_pb2.Record``."""

import struct
from pathlib import Path

BLOCK = 32768
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path):
    """Every Record of a .wandb file, in order."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B transaction log"
    pos, pending = 7, b""
    while pos + 7 <= len(data):
        if BLOCK - pos % BLOCK < 7:  # a block's tail too short for a header is padding
            pos += BLOCK - pos % BLOCK
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind in (FULL, LAST):
            rec = pb.Record()
            rec.ParseFromString(pending + chunk)
            pending = b""
            yield rec
        elif kind in (FIRST, MIDDLE):
            pending += chunk
        else:
            break
