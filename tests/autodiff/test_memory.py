"""Loads transpose to stores where each element is read once, to atomic adds where several programs
(or iterations, or lanes through a gather) read it."""
from __future__ import annotations

import torch

import tilefn as tfn
from tilefn.trace import primitives as p
from tilefn.trace.ir import walk_eqns
from vjp_kernels import embedding, layer_norm, matmul, pointwise_chain


def gradient_writes(program) -> dict:
    """The backward kernel's writes: target name -> the primitive writing it."""
    names = {v: n for v, n in program.hints.items()}
    return {names.get(e.inputs[0], "?"): str(e.prim) for e in walk_eqns(program.kernel.params["region"].eqns)
            if e.prim in p.WRITES}


def test_elementwise_inputs_get_plain_stores():
    x = torch.randn(5, 6, dtype=torch.float64)
    program = tfn.make_ir(tfn.vjp(pointwise_chain))(x, x, x)
    assert gradient_writes(program) == {"grad_x": "store", "grad_y": "store"}


def test_a_weight_every_row_tile_reads_gets_atomic_adds_and_the_rows_stores():
    x, w = torch.randn(5, 6, dtype=torch.float64), torch.randn(6, dtype=torch.float64)
    program = tfn.make_ir(tfn.vjp(layer_norm))(x, w, w, x)
    assert gradient_writes(program) == {"grad_x": "store", "grad_weight": "atomic_add", "grad_bias": "atomic_add"}


def test_a_gathered_row_is_scattered_back_with_atomic_adds():
    indices, weight = torch.tensor([[0, 2, 2], [1, 0, 2]]), torch.randn(3, 4, dtype=torch.float64)
    program = tfn.make_ir(tfn.vjp(embedding))(indices, weight, torch.randn(2, 3, 4, dtype=torch.float64))
    assert gradient_writes(program) == {"grad_weight": "atomic_add"}
    got = tfn.vjp(embedding)(indices, weight, torch.ones(2, 3, 4, dtype=torch.float64))
    assert got[0] is None
    assert torch.equal(got[1][:, 0], torch.tensor([2.0, 1.0, 3.0], dtype=torch.float64))  # rows read 2, 1, 3 times


def test_operands_of_a_product_reread_by_other_output_tiles_accumulate_atomically():
    x, y = torch.randn(5, 7, dtype=torch.float64), torch.randn(7, 3, dtype=torch.float64)
    program = tfn.make_ir(tfn.vjp(matmul))(x, y, torch.randn(5, 3, dtype=torch.float64))
    assert gradient_writes(program) == {"grad_x": "atomic_add", "grad_y": "atomic_add"}
