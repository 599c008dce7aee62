"""Host code reading a kernel argument's value (`int(offsets[-1].item())`, Helion's jagged_softmax): read at
trace time, printed as a guard, the Program keyed on it. Compiled, tfn.interpret and eager torch agree."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings, strategies as hs

import tilefn as tfn
import tilefn.testing as tt
from tilefn import lang as tl
from tilefn.errors import HostReadsDevice
from tilefn.testing import assert_matches, compile_for_gpu

pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")


def jagged_softmax(x_data, x_offsets):
    """Helion's jagged_softmax: a softmax over each packed row group's rows, the output sized by the last offset."""
    n = int(x_offsets[-1].item())
    rows, m = x_offsets.size(0) - 1, x_data.size(1)
    out = torch.zeros(n * m, dtype=x_data.dtype, device=x_data.device)
    x_flat = x_data.view(-1)
    for tile_b in tl.tile(rows):
        starts = x_offsets[tile_b]
        lengths = x_offsets[tile_b.index + 1] - starts
        for tile_m in tl.tile(m):
            block_max = tl.full([tile_b, tile_m], float("-inf"), dtype=x_data.dtype)
            new_max = tl.full([tile_b, tile_m], float("-inf"), dtype=x_data.dtype)
            total = tl.full([tile_b, tile_m], 0.0, dtype=x_data.dtype)
            for tile_k in tl.jagged_tile(lengths):
                flat = (starts[:, None] + tile_k.index[None, :])[:, :, None] * m + tile_m.index[None, None, :]
                piece = tl.load(x_flat, [flat])
                new_max = torch.maximum(block_max, piece.amax(dim=1))
                total = total * torch.exp(block_max - new_max) + torch.exp(piece - new_max[:, None, :]).sum(dim=1)
                block_max = new_max  # (two carries end each iteration as one value)
            for tile_k in tl.jagged_tile(lengths):
                flat = (starts[:, None] + tile_k.index[None, :])[:, :, None] * m + tile_m.index[None, None, :]
                piece = tl.load(x_flat, [flat])
                tl.store(out, [flat], torch.exp(piece - block_max[:, None, :]) / total[:, None, :])
    return out.reshape(n, m)


def eager_jagged_softmax(x_data, x_offsets):
    n = int(x_offsets[-1])
    pieces = [torch.softmax(x_data[a:b], dim=0) for a, b in zip(x_offsets[:-1].tolist(), x_offsets[1:].tolist())]
    return torch.cat(pieces, dim=0) if pieces else x_data[:n]


def _offsets(lengths):
    return torch.tensor([0] + lengths).cumsum(0)


@settings(max_examples=6, deadline=None)
@given(data=hs.data(), lengths=hs.lists(hs.integers(1, 9), min_size=1, max_size=6), m=hs.integers(1, 5),
       spare=hs.integers(0, 3))
def test_jagged_softmax_sized_by_its_last_offset(data, lengths, m, spare):
    offsets = _offsets(lengths)
    x = torch.randn(int(offsets[-1]) + spare, m)  # (rows past the last offset are not part of the output)
    assert_matches(jagged_softmax, eager_jagged_softmax, x, offsets,
                   configs=[data.draw(tt.configs(jagged_softmax, x, offsets))])


def test_jagged_softmax_compiles_for_hopper():
    offsets = _offsets([3, 1, 6])
    compile_for_gpu(jagged_softmax, torch.randn(10, 4), offsets)


def scaled_prefix(x, ends):
    """The first int(ends[0]) rows of x, times the float ends[1] / 4 (two reads of one argument)."""
    n, scale = int(ends[0]), float(ends[1]) / 4
    out = torch.empty(n, x.size(1), dtype=x.dtype, device=x.device)
    for tm, tn in tl.tile([n, x.size(1)]):
        out[tm, tn] = x[tm, tn] * scale
    return out


def test_a_new_value_traces_a_new_program_and_the_fast_path_checks_the_values():
    kernel = tfn.jit(scaled_prefix)
    x = torch.randn(9, 3)
    for n, s in [(4, 2), (7, 2), (4, 2), (4, 6), (7, 2)]:
        ends = torch.tensor([n, s])
        torch.testing.assert_close(kernel(x, ends), x[:n] * (s / 4))
        torch.testing.assert_close(tfn.interpret(kernel)(x, ends), x[:n] * (s / 4))
    assert kernel.cache_info().traces == 3 and kernel.cache_info().compiles == 3


def test_the_read_is_printed_as_a_guard():
    text = str(tfn.make_ir(scaled_prefix)(torch.randn(9, 3), torch.tensor([5, 8])))
    assert "# guard: int(ends[0]) == 5  (test_value_reads.py:" in text
    assert "# guard: float(ends[1]) == 8.0" in text
    assert "f32[5, 3]" in text and "mul" in text


def listed_prefix(x, ends):
    """`.tolist()` of an argument: one read of all its values."""
    n, scale = ends.tolist()
    out = torch.empty(n, dtype=x.dtype, device=x.device)
    for t in tl.tile(n):
        out[t] = x[t] * scale
    return out


def test_tolist_is_one_read_of_every_value():
    kernel, x = tfn.jit(listed_prefix), torch.randn(9)
    assert "# guard: ends.tolist() == [4, 2]" in str(tfn.make_ir(listed_prefix)(x, torch.tensor([4, 2])))
    for ends in ([4, 2], [6, 2], [4, 2], [4, -1]):
        want = x[:ends[0]] * ends[1]
        torch.testing.assert_close(kernel(x, torch.tensor(ends)), want)
        torch.testing.assert_close(tfn.interpret(kernel)(x, torch.tensor(ends)), want)
    assert kernel.cache_info().traces == 3


def sliced(x, ends):
    out = torch.empty_like(x)
    for t in tl.tile(x.size(0)):
        out[t] = x[t] + 1
    return out[ends[0]:ends[1]]  # a slice bounded by host tensors: reads of their values


def test_a_slice_bounded_by_an_argument_reads_its_values():
    x = torch.randn(9)
    for ends in ([1, 4], [0, 9], [1, 4]):
        tt.assert_matches(sliced, lambda x, e: (x + 1)[e[0]:e[1]], x, torch.tensor(ends))


def branching_read(x, flags):
    """Host code branching on one read and then reading another: each branch's read is part of the key."""
    out = torch.empty_like(x)
    scale = float(flags[1]) if int(flags[0]) > 0 else float(flags[2])
    for t in tl.tile(x.size(0)):
        out[t] = x[t] * scale
    return out


def test_reads_behind_a_host_branch_key_every_program():
    kernel = tfn.jit(branching_read)
    x = torch.randn(6)
    for flags in ([1, 2, 3], [0, 2, 3], [0, 2, 5], [1, 4, 5], [0, 4, 5]):
        want = x * (flags[1] if flags[0] > 0 else flags[2])
        torch.testing.assert_close(kernel(x, torch.tensor(flags)), want)


def test_host_reads_that_cannot_see_the_value_are_refused():
    def of_a_new_tensor(x):
        out = torch.empty(int((x[:1] + torch.ones(1, device=x.device))[0]), device=x.device)
        for t in tl.tile(out.size(0)):
            out[t] = x[t]
        return out

    def after_a_write(x):
        for t in tl.tile(x.size(0)):
            x[t] = x[t] + 1
        return x[: int(x[0])]

    def after_in_place(x):
        x.add_(1)
        return x[: int(x[0])]

    def of_many(x):
        return x[: int(x)]

    x = torch.arange(4.0)
    with pytest.raises(HostReadsDevice, match="a tensor host code makes"):
        tfn.make_ir(of_a_new_tensor)(x)
    with pytest.raises(HostReadsDevice, match="written before the read"):
        tfn.make_ir(after_a_write)(x)
    with pytest.raises(HostReadsDevice, match="writes in place|written before the read"):
        tfn.make_ir(after_in_place)(x)
    with pytest.raises(HostReadsDevice, match=r"int\(x\): only one element tensors"):
        tfn.make_ir(of_many)(x)
