"""tilefn.rng.same_draws: repeatable seeds for kernels that draw their own, the caller's generator kept."""
import torch

import tilefn as tfn
from tilefn import lang as tl
from tilefn.rng import same_draws


@tfn.jit
def noisy(x):
    out = torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        out[t] = x[t] + torch.randn_like(x[t])
    return out


def test_runs_inside_draw_the_same_seeds_and_the_generator_is_restored():
    x = torch.zeros(100)
    torch.manual_seed(7)
    with same_draws([x]):
        a = noisy(x)
    with same_draws([x]):
        b = noisy(x)
    after = torch.rand(4)
    torch.manual_seed(7)
    assert torch.equal(a, b) and torch.equal(after, torch.rand(4))
    with same_draws([x], seed=1):
        assert not torch.equal(noisy(x), a)
