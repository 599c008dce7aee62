"""The code-generation knobs of `tfn.Config`: loop_orders, l2_groupings, range_* / static_ranges
and pid_type. Each is checked for structure (the lines it must emit) and for numerics (the kernel
compiled under it, run on Triton's CPU interpreter, equals eager PyTorch).
"""
from __future__ import annotations

import itertools
import re

import pytest
import torch

import tilefn as tfn
from tilefn.errors import ConfigError
from tilefn import lang as tl
from kernels import bmm, matmul, two_inner_loops

pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")


# --- kernels -----------------------------------------------------------------------------------
def add2d(x, y):
    out = torch.full_like(x, float("nan"))  # a tile no program writes stays NaN
    for tm, tn in tl.tile(x.shape):
        out[tm, tn] = x[tm, tn] + y[tm, tn]
    return out


def add3d(x, y):
    out = torch.full_like(x, float("nan"))
    for tb, tm, tn in tl.tile(x.shape):
        out[tb, tm, tn] = x[tb, tm, tn] + y[tb, tm, tn]
    return out


def row_sum(x):
    m, n = x.shape
    out = torch.full([m], float("nan"), dtype=torch.float32, device=x.device)
    for tm in tl.tile(m):
        acc = tl.zeros([tm], dtype=torch.float32)
        for tn in tl.tile(n):
            acc = acc + x[tm, tn].to(torch.float32).sum(dim=1)
        out[tm] = acc
    return out


def two_loops(x, y):
    a = torch.full_like(x, float("nan"))
    b = torch.full_like(y, float("nan"))
    for t in tl.tile(x.shape[0]):
        a[t] = x[t] * 2
    for tm, tn in tl.tile(y.shape):
        b[tm, tn] = y[tm, tn] - 1
    return a, b


def triangle_sum(x):
    """An inner loop whose begin depends on the outer tile: its bounds are not static."""
    m, n = x.shape
    out = torch.empty([m], dtype=torch.float32, device=x.device)
    for tm in tl.tile(m):
        acc = tl.zeros([tm], dtype=torch.float32)
        for tn in tl.tile(tm.begin, n):
            acc = acc + x[tm, tn].sum(dim=1)
        out[tm] = acc
    return out


# --- helpers -----------------------------------------------------------------------------------
def lower(fn, *args, blocks, **knobs):
    return tfn.jit(fn).lower(*args, config=tfn.Config(block_sizes=blocks, **knobs))


def run(fn, *args, blocks, **knobs):
    lowered = lower(fn, *args, blocks=blocks, **knobs)
    return lowered, lowered.compile()(*args)


def close(actual, expected, tol=1e-4):
    torch.testing.assert_close(actual, expected, atol=tol, rtol=tol)


X37, Y37 = torch.randn(37, 29), torch.randn(29, 50)  # ragged matmul: 3 x 4 tiles of 16


def check_matmul(**knobs):
    lowered, out = run(matmul, X37, Y37, blocks=[16, 16, 16], **knobs)
    close(out, X37 @ Y37)
    return lowered


def launch_grid(lowered):
    return re.search(r"_launch\(\((\d+), (\d+), (\d+)\)", lowered.source).groups()


# --- defaults ------------------------------------------------------------------------------------
def test_explicit_default_knobs_generate_todays_code():
    """Knobs set to their defaults (or lists left short) change nothing in the source."""
    default = lower(two_inner_loops, torch.randn(8, 40), blocks=[4, 16, 16]).source
    explicit = lower(two_inner_loops, torch.randn(8, 40), blocks=[4, 16, 16], pid_type="flat",
                     loop_orders=[], l2_groupings=[], range_unroll_factors=[0, None],
                     range_num_stages=[0], range_multi_buffers=[None, None], range_flattens=[False],
                     range_warp_specializes=[None], static_ranges=[False, False]).source
    assert explicit == default
    mm = lower(matmul, X37, Y37, blocks=[16, 16, 16]).source
    assert lower(matmul, X37, Y37, blocks=[16, 16, 16], loop_orders=[[0, 1]], l2_groupings=[1]).source == mm
    assert "tl.range(0, whole_tk, BLOCK_TK):" in mm and "program_id(1)" not in mm


# --- loop_orders ---------------------------------------------------------------------------------
def test_loop_order_picks_the_fastest_dimension():
    src = check_matmul(loop_orders=[[1, 0]]).kernel.kernel
    assert "off_tm = (pid % 3) * BLOCK_TM" in src  # tm now varies fastest (3 tiles of 37)
    assert re.search(r"off_tn = \(+pid // 3\)+ \* BLOCK_TN", src)


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_every_loop_order_of_a_3d_loop_covers_every_tile(order):
    x, y = torch.randn(3, 10, 13), torch.randn(3, 10, 13)
    lowered, out = run(add3d, x, y, blocks=[2, 4, 4], loop_orders=[list(order)])
    close(out, x + y)
    names = ["tb", "tm", "tn"]
    counts = [2, 3, 4]
    assert f"off_{names[order[-1]]} = (pid % {counts[order[-1]]})" in lowered.kernel.kernel


def test_a_loop_order_that_is_not_a_permutation_is_a_clear_error():
    with pytest.raises(tfn.TilefnError, match=r"loop_orders\[0\]=\[0, 0\] \(tile loop at .*\): expected a permutation of \[0, 1\]"):
        lower(matmul, X37, Y37, blocks=[16, 16, 16], loop_orders=[[0, 0]])


# --- l2_groupings --------------------------------------------------------------------------------
@pytest.mark.parametrize("group", [2, 4, 8])
def test_l2_grouping_emits_the_group_swizzle(group):
    src = check_matmul(l2_groupings=[group]).kernel.kernel
    assert f"group_id = pid // {group * 4}" in src  # GROUP rows of tiles times 4 column tiles
    assert f"first_pid = group_id * {group}" in src
    assert f"group_size = tl.minimum(3 - first_pid, {group})" in src
    assert "off_tm = (first_pid + pid_in_group % group_size) * BLOCK_TM" in src
    assert "off_tn = (pid_in_group // group_size) * BLOCK_TN" in src


def test_l2_grouping_follows_the_loop_order():
    src = check_matmul(l2_groupings=[2], loop_orders=[[1, 0]]).kernel.kernel
    assert "group_id = pid // 6" in src  # 2 tn tiles times 3 tm tiles
    assert "off_tn = (first_pid + pid_in_group % group_size) * BLOCK_TN" in src


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 0, 1)])
def test_l2_grouping_swizzles_the_two_fastest_dimensions_of_a_3d_loop(order):
    x, y = torch.randn(3, 13, 11), torch.randn(3, 13, 11)
    lowered, out = run(add3d, x, y, blocks=[1, 4, 4], l2_groupings=[2], loop_orders=[list(order)])
    close(out, x + y)
    src = lowered.kernel.kernel
    assert "pid_ab = pid % " in src and "group_id = pid_ab // " in src


def test_l2_grouping_on_a_ragged_2d_add_covers_every_tile():
    x, y = torch.randn(45, 23), torch.randn(45, 23)
    for group in (2, 3, 16):  # any int >= 1; the last group is partial
        close(run(add2d, x, y, blocks=[4, 8], l2_groupings=[group])[1], x + y)


def test_an_l2_grouping_below_one_is_a_clear_error():
    with pytest.raises(tfn.TilefnError, match=r"l2_groupings\[0\]=0 \(tile loop at .*\): expected an int >= 1"):
        lower(matmul, X37, Y37, blocks=[16, 16, 16], l2_groupings=[0])


# --- range_* and static_ranges -------------------------------------------------------------------
RANGE_CASES = [
    (dict(range_num_stages=[3]), "num_stages=3"),
    (dict(range_unroll_factors=[2]), "loop_unroll_factor=2"),
    (dict(range_multi_buffers=[False]), "disallow_acc_multi_buffer=True"),
    (dict(range_multi_buffers=[True]), "disallow_acc_multi_buffer=False"),
    (dict(range_flattens=[True]), "flatten=True"),
    (dict(range_warp_specializes=[True]), "warp_specialize=True"),
    (dict(range_num_stages=[2], range_unroll_factors=[4], range_flattens=[True]),
     "num_stages=2"),
]


@pytest.mark.parametrize("knobs,expected", RANGE_CASES)
def test_range_options_on_a_looped_row_sum(knobs, expected):
    x = torch.randn(9, 70)
    lowered, out = run(row_sum, x, blocks=[4, 16], **knobs)
    close(out, x.sum(1))
    line = next(line.strip() for line in lowered.kernel.kernel.splitlines() if "for off_tn in" in line)
    assert line.startswith("for off_tn in tl.range(0, 70, BLOCK_TN, ") and expected in line


def test_range_options_on_the_matmul_k_loop():
    src = check_matmul(range_num_stages=[3], range_unroll_factors=[2], range_multi_buffers=[False]).kernel.kernel
    assert ("for off_tk in tl.range(0, whole_tk, BLOCK_TK, loop_unroll_factor=2, num_stages=3, "
            "disallow_acc_multi_buffer=True):") in src


def test_range_lists_index_inner_loops_in_program_order():
    x = torch.randn(6, 40)
    lowered, out = run(two_inner_loops, x, blocks=[4, 16, 16], range_num_stages=[0, 2], static_ranges=[True])
    close(out, x - x.mean(1, keepdim=True))
    loops = [line.strip() for line in lowered.kernel.kernel.splitlines() if line.strip().startswith("for ")]
    assert loops == ["for off_tn in tl.static_range(0, 40, BLOCK_TN):",
                     "for off_tn_1 in tl.range(0, 40, BLOCK_TN_1, num_stages=2):"]


def test_static_range_on_the_matmul_k_loop_and_a_row_sum():
    assert "for off_tk in tl.static_range(0, 29, BLOCK_TK):" in check_matmul(static_ranges=[True]).kernel.kernel
    x = torch.randn(5, 33)
    lowered, out = run(row_sum, x, blocks=[8, 8], static_ranges=[True])
    close(out, x.sum(1))
    assert "tl.static_range(0, 33, BLOCK_TN)" in lowered.kernel.kernel


def test_static_range_needs_static_bounds():
    x = torch.randn(8, 20)
    close(run(triangle_sum, x, blocks=[4, 4])[1], torch.stack([x[i, (i // 4) * 4:].sum() for i in range(8)]))
    with pytest.raises(tfn.TilefnError, match=r"static_ranges\[0\]=True \(inner loop at .*\): .*True needs a loop with static int bounds"):
        lower(triangle_sum, x, blocks=[4, 4], static_ranges=[True])


def test_static_range_with_range_options_is_a_clear_error():
    with pytest.raises(tfn.TilefnError, match=r"static_ranges\[0\]=True \(inner loop at .*\): tl.static_range takes no range_\* options, but range_num_stages"):
        lower(row_sum, torch.randn(4, 32), blocks=[4, 16], static_ranges=[True], range_num_stages=[3])


def test_inner_tl_grid_loop_takes_range_options():
    def scalar_loop(x):
        m, n = x.shape
        out = torch.empty([m], dtype=torch.float32, device=x.device)
        for tm in tl.tile(m):
            acc = tl.zeros([tm], dtype=torch.float32)
            for j in tl.grid(n):
                acc = acc + x[tm, j]
            out[tm] = acc
        return out

    x = torch.randn(6, 5)
    lowered, out = run(scalar_loop, x, blocks=[4], range_unroll_factors=[2])
    close(out, x.sum(1))
    assert re.search(r"for j in tl\.range\(0, 5, loop_unroll_factor=2\):", lowered.kernel.kernel)
    lowered, out = run(scalar_loop, x, blocks=[4], static_ranges=[True])
    close(out, x.sum(1))
    assert re.search(r"for j in tl\.static_range\(0, 5\):", lowered.kernel.kernel)


# --- pid_type ------------------------------------------------------------------------------------
def test_xyz_puts_each_dimension_on_its_own_program_id_axis():
    lowered = check_matmul(pid_type="xyz")
    src = lowered.kernel.kernel
    assert "pid_y = tl.program_id(1)" in src
    assert "off_tn = (pid) * BLOCK_TN" in src and "off_tm = (pid_y) * BLOCK_TM" in src
    assert launch_grid(lowered) == ("4", "3", "1")
    lowered = check_matmul(pid_type="xyz", loop_orders=[[1, 0]])
    assert launch_grid(lowered) == ("3", "4", "1")
    assert "off_tm = (pid) * BLOCK_TM" in lowered.kernel.kernel


@pytest.mark.parametrize("order", [(0, 1, 2), (1, 2, 0)])
def test_xyz_with_three_dimensions(order):
    x, y = torch.randn(2, 10, 9), torch.randn(2, 10, 9)
    lowered, out = run(add3d, x, y, blocks=[1, 4, 2], pid_type="xyz", loop_orders=[list(order)])
    close(out, x + y)
    counts = [2, 3, 5]
    assert launch_grid(lowered) == tuple(str(counts[i]) for i in reversed(order))
    assert "pid_z = tl.program_id(2)" in lowered.kernel.kernel


def test_xyz_with_one_dimension_is_the_flat_kernel():
    x = torch.randn(9, 40)
    flat = lower(row_sum, x, blocks=[4, 16])
    xyz, out = run(row_sum, x, blocks=[4, 16], pid_type="xyz")
    close(out, x.sum(1))
    assert xyz.kernel.kernel == flat.kernel.kernel and launch_grid(xyz) == ("3", "1", "1")


def test_xyz_refusals():
    with pytest.raises(tfn.TilefnError, match="pid_type='xyz' needs a single top-level tile loop"):
        lower(two_loops, torch.randn(50), torch.randn(20, 30), blocks=[16, 8, 16], pid_type="xyz")
    with pytest.raises(tfn.TilefnError, match="l2_groupings needs a flat pid"):
        lower(matmul, X37, Y37, blocks=[16, 16, 16], pid_type="xyz", l2_groupings=[4])
    with pytest.raises(tfn.TilefnError, match="pid_type='zigzag': expected one of"):
        lower(matmul, X37, Y37, blocks=[16, 16, 16], pid_type="zigzag")


def test_persistent_blocked_loops_over_a_contiguous_chunk():
    lowered = check_matmul(pid_type="persistent_blocked")  # 12 tiles on 4 programs: 3 each
    src = lowered.kernel.kernel
    assert "for virtual_pid in tl.range(pid * 3, pid * 3 + 3):" in src
    assert "off_tn = (virtual_pid % 4) * BLOCK_TN" in src
    assert launch_grid(lowered) == ("4", "1", "1")


def test_persistent_interleaved_strides_by_the_number_of_programs():
    lowered = check_matmul(pid_type="persistent_interleaved")
    assert "for virtual_pid in tl.range(pid, 12, 4):" in lowered.kernel.kernel
    assert launch_grid(lowered) == ("4", "1", "1")


@pytest.mark.parametrize("pid_type", ["persistent_blocked", "persistent_interleaved"])
def test_persistent_with_a_ragged_tile_count(pid_type):
    x, y = torch.randn(19, 21), torch.randn(19, 21)  # 5 x 3 = 15 tiles on 4 programs
    lowered, out = run(add2d, x, y, blocks=[4, 8], pid_type=pid_type)
    close(out, x + y)
    if pid_type == "persistent_blocked":
        assert "for virtual_pid in tl.range(pid * 4, tl.minimum(pid * 4 + 4, 15)):" in lowered.kernel.kernel


@pytest.mark.parametrize("pid_type", ["persistent_blocked", "persistent_interleaved"])
def test_persistent_with_two_top_level_loops_and_l2_grouping(pid_type):
    x, y = torch.randn(50), torch.randn(20, 30)
    lowered, (a, b) = run(two_loops, x, y, blocks=[16, 8, 16], pid_type=pid_type, l2_groupings=[2],
                          loop_orders=[[1, 0]])
    close(a, x * 2)
    close(b, y - 1)
    src = lowered.kernel.kernel
    assert "if virtual_pid >= 4 and virtual_pid < 10:" in src
    assert "group_id = (virtual_pid - 4) // " in src
    assert launch_grid(lowered) == ("4", "1", "1")


def test_persistent_with_fewer_tiles_than_programs_launches_one_per_tile():
    x = torch.randn(5, 20)
    lowered, out = run(row_sum, x, blocks=[4, 8], pid_type="persistent_blocked", range_num_stages=[2])
    close(out, x.sum(1))
    assert launch_grid(lowered) == ("2", "1", "1")
    assert "for virtual_pid in tl.range(pid * 1, pid * 1 + 1):" in lowered.kernel.kernel


def test_range_lists_name_the_users_loops_only_not_reduction_chunk_loops():
    """Chunk loops the looped-reductions rewrite adds are no knob sites (as in Helion): they take no
    range_* options, and a range list for them is refused instead of shifting onto other loops."""
    x = torch.randn(4, 64)
    lowered, out = run(_softmax, x, blocks=[2], reduction_loops=[16])
    close(out, torch.softmax(x, 1))
    loops = [line.strip() for line in lowered.kernel.kernel.splitlines() if line.strip().startswith("for ")]
    assert [line.split(" in ")[1] for line in loops] == ["tl.range(0, 64, BLOCK_T):"] * 2  # (the max and the sum share one: online_rescale)
    with pytest.raises(ConfigError, match=r"range_num_stages has 1 entries but _softmax has 0 inner loops"):
        run(_softmax, x, blocks=[2], reduction_loops=[16], range_num_stages=[2])


def _softmax(x):
    out = torch.empty_like(x)
    for tm in tl.tile(x.shape[0]):
        out[tm, :] = torch.softmax(x[tm, :], dim=1)
    return out


def test_flatten_loops_is_refused_clearly_and_false_is_accepted():
    x, y = torch.randn(8, 16), torch.randn(8, 16)
    with pytest.raises(tfn.TilefnError, match="flatten_loops"):
        tfn.jit(add2d).lower(x, y, config=tfn.Config(block_sizes=[4, 8], flatten_loops=[True]))
    got = tfn.jit(add2d, config=tfn.Config(block_sizes=[4, 8], flatten_loops=[False]))(x, y)
    torch.testing.assert_close(got, x + y)


# --- persistent_flatten / persistent_warp_specialize ----------------------------------------------
def _range_lines(source: str) -> list:
    return [line.strip() for line in source.splitlines() if "tl.range(" in line]


@pytest.mark.parametrize("pid_type", ["persistent_blocked", "persistent_interleaved"])
def test_persistent_flatten_goes_on_the_persistent_loop_alone(pid_type):
    x, y = torch.randn(4, 32, 48), torch.randn(4, 48, 40)
    plain = _range_lines(lower(bmm, x, y, blocks=[1, 16, 16, 16], pid_type=pid_type).source)
    assert not any("flatten" in line or "warp_specialize" in line for line in plain)
    flat = _range_lines(lower(bmm, x, y, blocks=[1, 16, 16, 16], pid_type=pid_type, persistent_flatten=True).source)
    assert flat[0].startswith("for virtual_pid in") and flat[0].endswith(", flatten=True):")
    assert flat[1:] == plain[1:]  # the k loop keeps its own options (none)
    both = _range_lines(lower(bmm, x, y, blocks=[1, 16, 16, 16], pid_type=pid_type, persistent_flatten=True,
                              persistent_warp_specialize=True).source)
    assert both[0].endswith(", flatten=True, warp_specialize=True):")


@pytest.mark.parametrize("shape, blocks", [((3, 37, 29, 50), [1, 16, 16, 16]),  # ragged m, n and k (peeled k)
                                           ((5, 64, 48, 80), [1, 32, 32, 16]),
                                           ((2, 20, 16, 24), [2, 16, 16, 16])])  # two matrices a program
@pytest.mark.parametrize("pid_type", ["persistent_blocked", "persistent_interleaved"])
@pytest.mark.parametrize("indexing", ["pointer", "tensor_descriptor"])
def test_a_flattened_persistent_bmm_equals_torch_and_the_interpreter(shape, blocks, pid_type, indexing):
    b, m, k, n = shape
    x, y = torch.randn(b, m, k), torch.randn(b, k, n)
    config = tfn.Config(block_sizes=blocks, pid_type=pid_type, persistent_flatten=True, indexing=indexing)
    got = tfn.jit(bmm, config=config)(x, y)
    close(got, torch.bmm(x, y))
    close(got, tfn.interpret(bmm, config=config)(x, y))


@pytest.mark.parametrize("knob", ["persistent_flatten", "persistent_warp_specialize"])
def test_persistent_options_need_a_persistent_pid_type_and_a_bool(knob):
    with pytest.raises(ConfigError, match=f"{knob}=True configures the persistent loop.*pid_type='flat'"):
        lower(matmul, X37, Y37, blocks=[16, 16, 16], **{knob: True})
    with pytest.raises(ConfigError, match=f"{knob}=1: expected a bool"):
        lower(matmul, X37, Y37, blocks=[16, 16, 16], pid_type="persistent_blocked", **{knob: 1})


def test_the_flattened_persistent_bmm_compiles_for_hopper_to_one_pipelined_loop():
    from tilefn.testing import compile_for_gpu

    x, y = (torch.empty(64, 512, 512, dtype=torch.bfloat16) for _ in range(2))
    fields = dict(block_sizes=[1, 128, 128, 64], num_warps=8, num_stages=3, pid_type="persistent_interleaved",
                  indexing="tensor_descriptor")
    loops = {flatten: compile_for_gpu(bmm, x, y, config=tfn.Config(**fields, persistent_flatten=flatten))
             .asm["ttgir"].count("scf.for ") for flatten in (False, True)}
    assert loops == {False: 2, True: 1}  # the tile loop and the k loop, fused by Triton into one
