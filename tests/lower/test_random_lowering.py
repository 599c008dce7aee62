"""Random numbers compiled (Triton's tl.rand/randn/randint) vs tfn.interpret (tilefn.trace.philox) vs
eager Philox over each element's global index: the same under every Config, bit for bit for rand and
randint (randn's log/cos/sqrt may round differently in the last bits on each backend)."""
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings, strategies as st

import tilefn as tfn
import tilefn.testing as tt
from tilefn import lang as tl
from tilefn.trace import philox

SETTINGS = settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))


@tfn.jit
def draws(x, seed: int):
    u = torch.empty_like(x)
    n = torch.empty_like(x)
    i = torch.empty(x.shape, dtype=torch.int32, device=x.device)
    for tm, tn in tl.tile(x.shape):
        u[tm, tn] = tl.rand([tm, tn], seed)
        n[tm, tn] = tl.randn([tm, tn], seed)
        i[tm, tn] = tl.randint([tm, tn], seed, -5, 17)
    return u, n, i


def _global(shape, device="cpu"):
    return torch.arange(torch.Size(shape).numel(), device=device).view(shape)


def _bits_equal(a, b):
    return torch.equal(a.view(torch.int32), b.view(torch.int32))


@SETTINGS
@given(data=st.data(), m=st.integers(1, 40), n=st.integers(1, 90), seed=st.integers(-2**63, 2**63 - 1))
def test_same_seed_same_tensor_under_drawn_configs(data, m, n, seed):
    x = torch.zeros(m, n)
    config = data.draw(tt.configs(draws, x, seed), label="config")
    u, z, i = draws.lower(x, seed, config=config).compile()(x, seed)
    ui, zi, ii = tfn.interpret(draws, config=config)(x, seed)
    key, offsets = torch.tensor(seed), _global((m, n))
    assert _bits_equal(u, ui) and _bits_equal(u, philox.rand(key, offsets))
    assert torch.equal(i, ii) and torch.equal(i, philox.randint(key, offsets, low=-5, high=17))
    assert _bits_equal(zi, philox.randn(key, offsets))
    torch.testing.assert_close(z, zi, atol=2e-6, rtol=2e-6)


@tfn.jit
def row_sums(x, seed: int):
    m, n = x.shape
    out = torch.empty([m], dtype=torch.float32, device=x.device)
    for tm in tl.tile(m):
        out[tm] = (tl.rand([tm, n], seed) * x[tm, :]).sum(-1)
    return out


@SETTINGS
@given(data=st.data(), n=st.sampled_from([100, 4096, 20000]))
def test_reduction_loops_see_the_same_numbers(data, n):
    x = torch.randn(3, n)
    config = data.draw(st.sampled_from([tfn.Config(block_sizes=[1], reduction_loops=[r])
                                        for r in (None, 64, 1024)]) | tt.configs(row_sums, x, 9))
    got = row_sums.lower(x, 9, config=config).compile()(x, 9)
    expected = (philox.rand(torch.tensor(9), _global((3, n))) * x).sum(-1)
    torch.testing.assert_close(got, expected, atol=1e-3, rtol=1e-4)


@tfn.jit
def spaced(x, seed: int):
    a, b = torch.empty_like(x), torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        a[t] = tl.rand([], seed, offsets=t.index * 3)
        b[t] = tl.rand([], seed, offsets=t.index * 3 + 1)
    return a, b


def test_explicit_offsets_are_the_counters():
    x = torch.zeros(300)
    a, b = spaced.lower(x, 4, config=tfn.Config(block_sizes=[64])).compile()(x, 4)
    idx = torch.arange(300, dtype=torch.int32)
    assert _bits_equal(a, philox.rand(torch.tensor(4), idx * 3))
    assert _bits_equal(b, philox.rand(torch.tensor(4), idx * 3 + 1))
    assert _bits_equal(a, tfn.interpret(spaced)(x, 4)[0])


@tfn.jit
def seeded_by_tensor(x, seed):
    out = torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        out[t] = tl.rand([t], seed)
    return out


@tfn.jit
def seeded_by_loaded_scalar(x, seeds):
    out = torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        out[t] = tl.rand([t], seeds[1])
    return out


def test_seed_from_a_tensor_argument_or_a_loaded_value_is_a_runtime_value():
    x = torch.zeros(257)
    key = 2**40 + 11
    expected = philox.rand(torch.tensor(key), torch.arange(257))
    assert _bits_equal(seeded_by_tensor(x, torch.tensor([key])), expected)
    assert _bits_equal(seeded_by_loaded_scalar(x, torch.tensor([1, key, 3])), expected)
    other = seeded_by_tensor(x, torch.tensor([key + 1]))  # the same executable, another seed
    assert not torch.equal(other, expected)
    assert str(key) not in seeded_by_tensor.lower(x, torch.tensor([key])).source
    assert _bits_equal(tfn.interpret(seeded_by_tensor)(x, torch.tensor([key])), expected)


@tfn.jit
def torch_spellings(x):
    u, n, d = torch.empty_like(x), torch.empty_like(x), torch.empty_like(x)
    for tm, tn in tl.tile(x.shape):
        v = x[tm, tn]
        u[tm, tn] = torch.rand_like(v)
        n[tm, tn] = torch.randn_like(v)
        d[tm, tn] = F.dropout(v, 0.25, training=True)
    return u, n, d


def test_torch_spellings_draw_a_seed_per_call_that_manual_seed_repeats():
    x = torch.randn(33, 65)
    config = tfn.Config(block_sizes=[16, 32])
    compiled = torch_spellings.lower(x, config=config).compile()
    torch.manual_seed(5)
    first = compiled(x)
    second = compiled(x)
    torch.manual_seed(5)
    again = compiled(x)
    torch.manual_seed(5)
    interpreted = tfn.interpret(torch_spellings)(x)
    assert all(_bits_equal(a, b) for a, b in zip(first, again))
    assert not any(torch.equal(a, b) for a, b in zip(first, second))
    assert _bits_equal(first[0], interpreted[0]) and _bits_equal(first[2], interpreted[2])
    torch.testing.assert_close(first[1], interpreted[1], atol=2e-6, rtol=2e-6)
    assert not torch.equal(first[0], first[1]) and not torch.equal(first[0] < 0.75, first[2] != 0)


def test_torch_spellings_are_config_independent():
    x = torch.randn(40, 50)
    outs = []
    for config in (tfn.Config(block_sizes=[8, 64]), tfn.Config(block_sizes=[32, 16], num_warps=2)):
        torch.manual_seed(0)
        outs.append(torch_spellings.lower(x, config=config).compile()(x))
    assert all(_bits_equal(a, b) for a, b in zip(outs[0][::2], outs[1][::2]))


@tfn.jit
def per_row(x):
    out = torch.empty_like(x)
    for i in tl.grid(x.shape[0]):
        for tn in tl.tile(x.shape[1]):
            out[i, tn] = torch.rand_like(x[i, tn])
    return out


def test_rows_of_a_grid_loop_draw_different_numbers():
    x = torch.zeros(6, 50)
    torch.manual_seed(3)
    got = per_row.lower(x, config=tfn.Config(block_sizes=[16])).compile()(x)
    torch.manual_seed(3)
    seed = torch.randint(-2**63, 2**63 - 1, (1,), dtype=torch.int64)
    assert _bits_equal(got, philox.rand(seed[0], _global((6, 50)).to(torch.int32)))
    assert len({tuple(row.tolist()) for row in got}) == 6


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_random_kernels_compile_for_hopper(dtype):
    x = torch.zeros(48, 80, dtype=dtype)
    for kernel, args in ((draws, (x.float(), 7)), (torch_spellings, (x,)), (seeded_by_tensor, (x[0], torch.tensor([3])))):
        compiled = tt.compile_for_gpu(kernel, *args, arch=90)
        assert ".target sm_90" in compiled.asm["ptx"] and "mul.hi.u32" in compiled.asm["ptx"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_gpu_rand_and_randint_match_the_interpreter_bit_for_bit():
    x = torch.zeros(333, 129, device="cuda")
    u, z, i = draws(x, 1234)
    ui, zi, ii = tfn.interpret(draws)(x, 1234)
    assert _bits_equal(u.cpu(), ui.cpu()) and torch.equal(i.cpu(), ii.cpu())
    torch.testing.assert_close(z.cpu(), zi.cpu(), atol=1e-5, rtol=1e-5)
    torch.manual_seed(1)
    compiled = torch_spellings(x)
    torch.manual_seed(1)
    interpreted = tfn.interpret(torch_spellings)(x)
    assert _bits_equal(compiled[0].cpu(), interpreted[0].cpu())
    assert torch.equal(compiled[2].cpu(), interpreted[2].cpu())


@tfn.jit
def four_draws(x, seed: int):
    outs = [torch.empty_like(x) for _ in range(5)]
    for tm, tn in tl.tile(x.shape):
        r0, r1, r2, r3 = tl.rand4x([tm, tn], seed)
        outs[0][tm, tn], outs[1][tm, tn], outs[2][tm, tn], outs[3][tm, tn] = r0, r1, r2, r3
        outs[4][tm, tn] = tl.rand([tm, tn], seed)
    return outs


@SETTINGS
@given(data=st.data())
def test_rand4x_is_four_philox_words_and_its_first_is_rand(data):
    x = torch.zeros(37, 70)
    config = data.draw(tt.configs(four_draws, x, 11))
    got = four_draws.lower(x, 11, config=config).compile()(x, 11)  # Triton's own tl.rand4x / tl.rand
    expected = philox.rand4x(torch.tensor(11), _global((37, 70)))
    assert all(_bits_equal(g, e) for g, e in zip(got, expected))
    assert _bits_equal(got[0], got[4])  # one Philox draw: its first word is tl.rand's
    assert all(_bits_equal(g, i) for g, i in zip(got, tfn.interpret(four_draws)(x, 11)))
    assert len({g.sum().item() for g in got[:4]}) == 4  # four different streams
    assert all(((g >= 0) & (g < 1)).all() for g in got)
