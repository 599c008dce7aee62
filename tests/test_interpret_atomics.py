"""`tfn.interpret`'s atomics: sequential, lane by lane, so they are exact (the oracle for compiled atomics)."""
import torch

import tilefn as tfn
from tilefn import lang as tl


def test_atomics_run_lane_by_lane_so_repeated_elements_see_each_earlier_update():
    def running(out, idx, x):
        old = torch.empty_like(x)
        for t in tl.tile(idx.shape[0]):
            old[t] = tl.atomic_add(out, [idx[t]], x[t])
        return old

    idx = torch.tensor([2, 0, 2, 2, 1, 0, 2])
    x = torch.arange(1.0, 8.0)
    out = torch.full((3,), 10.0)
    want_out, want_old = out.clone(), torch.empty(7)
    for lane in range(7):  # one tile of all lanes, updated in lane order
        want_old[lane] = want_out[idx[lane]]
        want_out[idx[lane]] += x[lane]
    old = tfn.interpret(running, config=tfn.Config(block_sizes=[8]))(out, idx, x)
    assert torch.equal(old, want_old) and torch.equal(out, want_out)
