"""Tuning over several devices, as pure scheduling: which devices (`TILEFN_TUNE_DEVICES`), timing
candidates concurrently as their compilations finish, and re-timing the fastest on one device.

Nothing here touches torch: devices are opaque values and timing is a function passed in
(`tilefn.tune.replicas` and the Benchmarker supply the real ones), so the scheduling is tested
with fake devices. Candidates go into one queue as they become ready; each device has one
thread taking the next candidate when it is free, so a device times one candidate at a time
and a slow candidate never holds up the other devices.
"""
from __future__ import annotations

import math
import queue
import threading
from typing import Callable, Hashable, Sequence

from ..errors import SettingsError

_DONE = object()  # what a device's thread takes last: no more candidates


def parse_devices(text: str, visible: int) -> tuple[int, ...]:
    """The device indices `TILEFN_TUNE_DEVICES` names ("0,1"), in its order; all `visible` when empty."""
    if not text.strip():
        return tuple(range(visible))
    indices = []
    for item in text.split(","):
        item = item.strip()
        if not item.isdigit():
            raise SettingsError(f"TILEFN_TUNE_DEVICES={text!r}: {item!r} is not a device index; give "
                                f"comma-separated indices of visible devices, e.g. \"0,1\"", source=None)
        index = int(item)
        if index >= visible:
            raise SettingsError(f"TILEFN_TUNE_DEVICES={text!r}: device {index} is not visible (there "
                                f"{'is' if visible == 1 else 'are'} {visible}: 0 to {visible - 1})", source=None)
        if index in indices:
            raise SettingsError(f"TILEFN_TUNE_DEVICES={text!r}: device {index} is named twice", source=None)
        indices.append(index)
    return tuple(indices)


def time_all(devices: Sequence, time_on: Callable, feed: Callable) -> dict:
    """{candidate: time_on(device, candidate)} for every candidate `feed(submit)` submits.

    `feed` runs in the caller's thread and calls `submit(candidate)` as each becomes ready (a
    compilation finishing); meanwhile one thread per device times the queued candidates, one at
    a time on its device. A candidate submitted twice is timed once. When `feed` or a timing
    raises, the queued candidates are dropped, the threads finish what they are timing, and the
    first exception is raised.
    """
    work: queue.Queue = queue.Queue()
    results: dict = {}
    errors: list = []
    submitted: set = set()

    def serve(device) -> None:
        while (candidate := work.get()) is not _DONE:
            if errors:
                continue  # (after a failure: drain without timing)
            try:
                results[candidate] = time_on(device, candidate)
            except BaseException as exc:  # raised in the caller's thread below
                errors.append(exc)

    def submit(candidate: Hashable) -> None:
        if candidate not in submitted:
            submitted.add(candidate)
            work.put(candidate)

    threads = [threading.Thread(target=serve, args=(d,), daemon=True, name=f"tilefn-tune-{i}")
               for i, d in enumerate(devices)]
    for thread in threads:
        thread.start()
    try:
        feed(submit)
    except BaseException as exc:
        errors.append(exc)
    finally:
        for _ in threads:
            work.put(_DONE)
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
    return results


def best_retimed(timings: Sequence[tuple[Hashable, float]], retime: Callable, few: int) -> tuple[float, Hashable]:
    """(seconds, candidate): the fastest of the `few` fastest finite `timings` ((candidate, seconds),
    from any device) when each is timed again by `retime(candidate)`; ties go to the earlier timed."""
    fastest = sorted((t for t in timings if math.isfinite(t[1])), key=lambda t: t[1])[:few]
    if not fastest:
        return math.inf, timings[0][0]
    again = [(retime(candidate), candidate) for candidate, _ in fastest]
    order = {candidate: i for i, (candidate, _) in enumerate(timings)}
    return min(again, key=lambda t: (t[0], order[t[1]]))
