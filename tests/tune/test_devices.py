"""Scheduling candidates over several devices with fake devices and a fake benchmark: each candidate
timed once, one at a time per device, the fastest few re-timed; TILEFN_TUNE_DEVICES parsed."""
from __future__ import annotations

import math
import threading
import time

import pytest
from hypothesis import given, settings, strategies as st

from tilefn.errors import SettingsError
from tilefn.tune.devices import best_retimed, parse_devices, time_all


@pytest.mark.parametrize("text, visible, want", [("", 3, (0, 1, 2)), ("  ", 2, (0, 1)), ("0,1", 2, (0, 1)),
                                                 ("1", 2, (1,)), (" 2 , 0 ", 4, (2, 0))])
def test_the_variable_names_devices_in_its_order_and_empty_means_all(text, visible, want):
    assert parse_devices(text, visible) == want


@pytest.mark.parametrize("text, visible, message", [
    ("a", 2, "'a' is not a device index"), ("0,,1", 2, "'' is not a device index"),
    ("-1", 2, "'-1' is not a device index"), ("cuda:0", 2, "'cuda:0' is not a device index"),
    ("2", 2, "device 2 is not visible (there are 2: 0 to 1)"), ("1", 1, "device 1 is not visible (there is 1"),
    ("0,1,0", 2, "device 0 is named twice")])
def test_bad_values_are_refused_with_what_to_give(text, visible, message):
    with pytest.raises(SettingsError) as info:
        parse_devices(text, visible)
    assert message in str(info.value) and f"TILEFN_TUNE_DEVICES={text!r}" in str(info.value)
    assert isinstance(info.value, ValueError)


class FakeDevices:
    """A benchmark over fake devices that records who timed what and fails if a device runs two at once."""

    def __init__(self, speed, pause=0.002):
        self.speed, self.pause, self.lock = speed, pause, threading.Lock()
        self.busy: set = set()
        self.timed: list = []  # (device, candidate) in the order timings started
        self.overlaps = 0
        self.most_at_once = 0

    def __call__(self, device, candidate):
        with self.lock:
            self.overlaps += device in self.busy
            self.busy.add(device)
            self.timed.append((device, candidate))
            self.most_at_once = max(self.most_at_once, len(self.busy))
        time.sleep(self.pause)
        with self.lock:
            self.busy.discard(device)
        return self.speed(candidate) * (1 + device)  # a slower device times every candidate slower


@settings(max_examples=25, deadline=None)
@given(devices=st.integers(1, 4), candidates=st.lists(st.integers(0, 30), max_size=20),
       delay=st.sampled_from([0.0, 0.001]))
def test_every_candidate_is_timed_once_one_at_a_time_per_device(devices, candidates, delay):
    fake = FakeDevices(lambda c: float(c))

    def feed(submit):  # as compile workers finish, one after another (repeats too)
        for candidate in candidates:
            time.sleep(delay)
            submit(candidate)

    results = time_all(list(range(devices)), fake, feed)
    timed = [c for _, c in fake.timed]
    assert sorted(timed) == sorted(set(candidates)) and results.keys() == set(candidates)
    assert fake.overlaps == 0 and fake.most_at_once <= devices
    assert all(results[c] == c * (1 + d) for d, c in fake.timed)


def test_devices_work_concurrently():
    """Two devices, candidates that each take a while: both devices time at the same moment."""
    fake = FakeDevices(lambda c: 1.0, pause=0.05)
    time_all([0, 1], fake, lambda submit: [submit(c) for c in range(6)])
    assert fake.most_at_once == 2 and {d for d, _ in fake.timed} == {0, 1}


def test_a_failing_feed_stops_the_devices_and_is_raised():
    fake = FakeDevices(lambda c: 1.0)

    def feed(submit):
        submit("first")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        time_all([0, 1], fake, feed)
    assert [c for _, c in fake.timed] in ([], ["first"])
    assert not [t for t in threading.enumerate() if t.name.startswith("tilefn-tune-")]


def test_a_failing_benchmark_is_raised_and_the_queue_dropped():
    started = []

    def broken(device, candidate):
        started.append(candidate)
        raise RuntimeError(f"device {device} lost")

    with pytest.raises(RuntimeError, match="device 0 lost"):
        time_all([0], broken, lambda submit: [submit(c) for c in range(5)])
    assert started == [0]


@settings(max_examples=40, deadline=None)
@given(times=st.lists(st.one_of(st.floats(0.5, 9.0), st.just(math.inf)), min_size=1, max_size=12),
       few=st.integers(1, 4), skew=st.floats(0.5, 2.0))
def test_the_winner_is_the_fastest_of_the_few_best_timed_again(times, few, skew):
    timings = [(f"config{i}", t) for i, t in enumerate(times)]
    retimed = []

    def retime(config):  # the home device: another speed, the fastest there not always the fastest elsewhere
        retimed.append(config)
        i = int(config[len("config"):])
        return times[i] * (skew if i % 2 else 1.0)

    seconds, best = best_retimed(timings, retime, few)
    finite = sorted((t, i) for i, t in enumerate(times) if math.isfinite(t))
    chosen = [f"config{i}" for _, i in finite[:few]]
    assert sorted(retimed) == sorted(chosen)  # only the few fastest are timed again, each once
    if not chosen:
        assert (seconds, best) == (math.inf, "config0")
    else:
        want = min((retime(c), int(c[len("config"):])) for c in chosen)
        assert (seconds, best) == (want[0], f"config{want[1]}")
