"""Our `helion._testing` shim's example checks: `check_example`, `CosSimilarity`, the matmul-precision helpers."""
from __future__ import annotations

import textwrap

import pytest
import torch

from tilefn.helion.conformance import testing_shim as shim
from tilefn.helion.conformance.outcomes import WrongResult

EXAMPLE = '''
import torch
import tilefn.helion as helion
import tilefn.helion.language as hl


@helion.kernel
def scale_pair(x):
    out, twice = torch.empty_like(x), torch.empty_like(x)
    for t in hl.tile(x.size(0)):
        out[t] = x[t] * 3.0
        twice[t] = x[t] * 2.0
    return out, twice
'''


@pytest.fixture()
def examples(tmp_path):
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "scaling.py").write_text(textwrap.dedent(EXAMPLE))
    before = shim.PROJECT_ROOT
    shim.configure(tmp_path)
    yield tmp_path
    shim.configure(before)


def test_check_example_runs_the_examples_kernel_and_compares(examples):
    x = torch.randn(40)
    code = shim.check_example("scaling", (x,), (x * 3, x * 2), fn_name="scale_pair", block_sizes=[16])
    assert "@triton.jit" in code
    assert shim.check_example("scaling", (x,), (x * 3, None), fn_name="scale_pair", emit_code=False) == ""
    with pytest.raises(WrongResult, match="scaling"):
        shim.check_example("scaling", (x,), (x * 3, x * 2.5), fn_name="scale_pair")
    shim.check_example("scaling", (x,), (x * 3, x * 2.5), fn_name="scale_pair", skip_accuracy=True)


def test_a_cosine_similarity_below_its_minimum_fails_even_within_tolerance(examples):
    x = torch.randn(4, 10)
    flipped = (x * 3).clone()
    flipped[:, 0] = -flipped[:, 0]
    similar = shim.CosSimilarity(dim=-1, min_similarity=0.999)
    with pytest.raises(WrongResult, match="cosine similarity"):
        shim.check_example("scaling", (x,), (flipped, None), fn_name="scale_pair", cos_sim=similar, atol=100.0)
    shim.check_example("scaling", (x,), (x * 3, None), fn_name="scale_pair", cos_sim=similar)


def test_static_shapes_is_set_on_the_example_kernel(examples):
    x = torch.randn(24)
    shim.check_example("scaling", (x,), (x * 3, x * 2), fn_name="scale_pair", static_shapes=False)
    kernel = shim.import_path(examples / "examples" / "scaling.py").scale_pair
    assert kernel.settings.static_shapes is False


def test_float32_matmul_precision_is_restored_after_the_block():
    before = torch.get_float32_matmul_precision()
    with shim.float32_matmul_precision("medium"):
        assert torch.get_float32_matmul_precision() == "medium"
    assert torch.get_float32_matmul_precision() == before
    assert shim.get_test_float32_matmul_precision() == "high"
