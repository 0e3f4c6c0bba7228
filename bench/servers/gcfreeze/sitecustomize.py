"""Experiment for proposal 3 of RESULTS.md, without touching liveqa's code: on `PYTHONPATH`, this
makes any Python process call `gc.freeze()` every 2 s from a daemon thread, so long-lived
per-socket objects leave the cyclic collector's generations."""

import gc
import threading
import time


def _freeze_every(seconds: float) -> None:
    while True:
        time.sleep(seconds)
        gc.freeze()


threading.Thread(target=_freeze_every, args=(2.0,), daemon=True, name="gc-freeze").start()
