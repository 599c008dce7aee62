"""Structural questions about a Program: kernel equations, grid and inner loops, matrix-product roles, sizes."""
import torch

import tilefn as tfn
from tilefn import lang as tl
from tilefn.lower.passes import rewrite
from tilefn.trace.queries import (dot_roles, grid_blocks, grid_loops, inner_loops, kernel_eqns, largest_value,
                                  next_power_of_2, ordered_loops)
from kernels import matmul, softmax, two_inner_loops, two_loops


def no_kernel(x):
    return x + 1


def test_next_power_of_2():
    assert [next_power_of_2(n) for n in (0, 1, 2, 3, 4, 5, 1000, 1024)] == [1, 1, 2, 4, 4, 8, 1024, 1024]


def test_loops_are_the_ones_the_knob_lists_index():
    program = tfn.make_ir(two_inner_loops)(torch.randn(6, 40))
    assert len(grid_loops(program)) == 1 and ordered_loops(program) == []
    assert len(inner_loops(program)) == 2
    program = tfn.make_ir(two_loops)(torch.randn(50), torch.randn(20, 30))
    assert len(grid_loops(program)) == 2 and len(ordered_loops(program)) == 1
    assert inner_loops(program) == []
    # a reduction chunk loop is an inner loop of the rewritten program
    program = tfn.make_ir(softmax)(torch.randn(4, 64))
    assert inner_loops(program) == []
    config = tfn.Config(block_sizes=[2], reduction_loops=[16])
    assert len(inner_loops(rewrite(program, config))) == 2  # max and sum (one online loop), store


def test_grid_blocks_are_the_grid_loops_tiles_outermost_first():
    program = tfn.make_ir(two_loops)(torch.randn(50), torch.randn(20, 30))
    assert grid_blocks(program) == [0, 1, 2]
    program = tfn.make_ir(two_inner_loops)(torch.randn(6, 40))
    assert grid_blocks(program) == [0]


def test_dot_roles_name_the_matrix_product_blocks():
    program = tfn.make_ir(matmul)(torch.randn(32, 16), torch.randn(16, 8))
    assert dot_roles(kernel_eqns(program)) == {0: "m", 1: "n", 2: "k"}
    assert dot_roles(kernel_eqns(tfn.make_ir(softmax)(torch.randn(4, 64)))) == {}


def test_kernel_eqns_walk_nested_loops_and_are_empty_without_a_kernel():
    eqns = kernel_eqns(tfn.make_ir(two_inner_loops)(torch.randn(6, 40)))
    assert sum(e.prim.name == "loop" for e in eqns) == 3  # the grid loop and its two inner loops
    assert kernel_eqns(tfn.make_ir(no_kernel)(torch.randn(3))) == []


def test_largest_value_counts_lanes_under_the_block_sizes():
    eqns = kernel_eqns(tfn.make_ir(softmax)(torch.randn(4, 100)))
    assert largest_value(eqns, tfn.Config(block_sizes=[2])) == 2 * 128  # a whole row pads to a power of two
    assert largest_value(eqns, tfn.Config(block_sizes=[8])) == 8 * 128
