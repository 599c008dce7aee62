"""Online rescaling: a looped max and its sum of exp(row - shift) share one loop; results stay torch's."""
import pytest
import torch

import tilefn as tfn
from tilefn import lang as tl
from tilefn.config import Config
from tilefn.interpret import run_program
from tilefn.testing import compile_for_gpu
from tilefn.lower.rewrites.reduction_loops import looped_reductions
from tilefn.trace.ir import walk_eqns
from kernels import softmax


def logsumexp(x):
    out = torch.empty([x.size(0)], dtype=x.dtype, device=x.device)
    for tm in tl.tile(x.size(0)):
        out[tm] = torch.logsumexp(x[tm, :], dim=1)
    return out


def log_softmax(x):
    out = torch.empty_like(x)
    for tm in tl.tile(x.size(0)):
        out[tm, :] = torch.log_softmax(x[tm, :], dim=1)
    return out


def cross_entropy(logits, labels):
    n, v = logits.shape
    losses = torch.empty([n], dtype=torch.float32, device=logits.device)
    flat = logits.view(-1)
    for tn in tl.tile(n):
        lse = torch.logsumexp(logits[tn, :].float(), dim=1)
        losses[tn] = lse - flat[tn.index * v + labels[tn]].float()
    return losses


def max_and_lse(x):
    """The max is stored too (its NaN propagation must survive the fused loop)."""
    mx = torch.empty([x.size(0)], dtype=x.dtype, device=x.device)
    lse = torch.empty([x.size(0)], dtype=x.dtype, device=x.device)
    for tm in tl.tile(x.size(0)):
        row = x[tm, :]
        m = row.amax(dim=1, keepdim=True)
        mx[tm] = m[:, 0]
        lse[tm] = (torch.log(torch.exp(row - m).sum(dim=1, keepdim=True)) + m)[:, 0]
    return mx, lse


def doubled_shift(x):
    """exp(row - 2 max): the shift scales the max, so the loops stay apart."""
    out = torch.empty([x.size(0)], dtype=x.dtype, device=x.device)
    for tm in tl.tile(x.size(0)):
        row = x[tm, :]
        m = row.amax(dim=1, keepdim=True)
        out[tm] = torch.exp(row - m * 2.0).sum(dim=1)
    return out


def handwritten_cross_entropy(logits, labels):
    """The max, then the sum of exp(row - max), written out (Helion's cross-entropy example)."""
    n, v = logits.shape
    losses = torch.empty([n], dtype=torch.float32, device=logits.device)
    flat = logits.view(-1)
    for tn in tl.tile(n):
        rows = logits[tn, :].float()
        row_max = rows.amax(dim=1)
        lse = row_max + torch.exp(rows - row_max[:, None]).sum(dim=1).log()
        losses[tn] = lse - flat[tn.index * v + labels[tn]].float()
    return losses


def moved_shift(x):
    """exp(row - where(m == 1, 90, m)): where the max is 1 every term is below 2**-126 (exp(-89) = 2.2e-39)."""
    out = torch.empty([x.size(0)], dtype=x.dtype, device=x.device)
    for tm in tl.tile(x.size(0)):
        row = x[tm, :]
        m = row.amax(dim=1, keepdim=True)
        out[tm] = torch.exp(row - torch.where(m == 1.0, 90.0, m)).sum(dim=1, keepdim=True)[:, 0]
    return out


def _shifted_lse(x):
    """log(sum(exp(x - max))) + max, literally (NaN where the max is infinite, unlike torch.logsumexp)."""
    m = x.amax(1, keepdim=True)
    return (torch.log(torch.exp(x - m).sum(1, keepdim=True)) + m)[:, 0]


def _labels(x):
    return torch.randint(0, x.size(1), (x.size(0),))


CASES = {
    "logsumexp": (logsumexp, lambda x: (x,), lambda x: torch.logsumexp(x, 1)),
    "softmax": (softmax, lambda x: (x,), lambda x: torch.softmax(x, 1)),
    "log_softmax": (log_softmax, lambda x: (x,), lambda x: torch.log_softmax(x, 1)),
    "cross_entropy": (cross_entropy, lambda x: (x, _labels(x)),
                      lambda x, y: torch.logsumexp(x.float(), 1) - x.float().gather(1, y[:, None])[:, 0]),
    "max_and_lse": (max_and_lse, lambda x: (x,), lambda x: (x.amax(1), _shifted_lse(x))),
    "doubled_shift": (doubled_shift, lambda x: (x,), lambda x: torch.exp(x - 2 * x.amax(1, keepdim=True)).sum(1)),
    "handwritten_cross_entropy": (handwritten_cross_entropy, lambda x: (x, _labels(x)),
                                  lambda x, y: torch.nn.functional.cross_entropy(x.float(), y, reduction="none")),
    "moved_shift": (moved_shift, lambda x: (x,),
                    lambda x: torch.exp(x - torch.where(x.amax(1, keepdim=True) == 1, 90.0, x.amax(1, keepdim=True))).sum(1)),
}
FUSED = {"softmax": 2, "logsumexp": 1, "log_softmax": 2, "cross_entropy": 1, "max_and_lse": 1, "doubled_shift": 2,
         "handwritten_cross_entropy": 1, "moved_shift": 1}


def rows(kind: str, shape) -> torch.Tensor:
    """Rows that stress the rescaling: plain, very negative, huge (exp overflows unless shifted), with -inf runs,
    +inf and NaN."""
    x = torch.randn(*shape) * 3
    if kind == "negative":
        return x - 1e4
    if kind == "huge":
        return x * 3e37
    if kind == "special":
        x[0, :] = float("-inf")
        x[1, : shape[1] // 2] = float("-inf")
        x[2, -1] = float("inf")
        x[3, 5] = float("nan")
    return x


def loops_in(program):
    return [e for e in walk_eqns(program.eqns) if e.prim.name == "loop" and not e.params["grid"]]


@pytest.mark.parametrize("name", sorted(CASES))
def test_loop_count(name):
    kernel, make_args, _ = CASES[name]
    program = tfn.make_ir(kernel)(*make_args(torch.randn(4, 40)))
    rewritten = looped_reductions(program, Config(block_sizes=[4], reduction_loops=[16]))
    assert len(loops_in(rewritten)) == FUSED[name]


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("kind", ["plain", "negative", "huge", "special"])
@pytest.mark.parametrize("shape,block,chunk", [((6, 50), 4, 16), ((5, 64), 2, 32)])
def test_fused_loop_matches_eager_and_interpreter(name, kind, shape, block, chunk):
    kernel, make_args, reference = CASES[name]
    args = make_args(rows(kind, shape))
    lowered = tfn.jit(kernel).lower(*args, config=Config(block_sizes=[block], reduction_loops=[chunk]))
    expected = reference(*args)
    opts = dict(atol=1e-4, rtol=1e-4, equal_nan=True)
    torch.testing.assert_close(lowered.compile()(*args), expected, **opts)
    torch.testing.assert_close(run_program(lowered.program, list(args), lowered.config), expected, **opts)
    torch.testing.assert_close(tfn.interpret(kernel, config=lowered.config)(*args), expected, **opts)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_rows_accumulate_in_float32(dtype):
    x = torch.randn(8, 100, dtype=dtype) * 4
    lowered = tfn.jit(logsumexp).lower(x, config=Config(block_sizes=[4], reduction_loops=[32]))
    assert len(loops_in(lowered.program)) == 1
    torch.testing.assert_close(lowered.compile()(x), torch.logsumexp(x.float(), 1).to(dtype), atol=2e-2, rtol=2e-2)


@pytest.mark.parametrize("name", ["softmax", "cross_entropy"])
def test_fused_loop_compiles_for_hopper(name):
    kernel, make_args, _ = CASES[name]
    args = make_args(torch.randn(8, 256, dtype=torch.bfloat16))
    compiled = compile_for_gpu(kernel, *args, config=Config(block_sizes=[2], reduction_loops=[64]))
    assert ".target sm_90" in compiled.asm["ptx"]


def _isinf_tests(kernel_text: str) -> tuple[int, int]:
    """How many isinf tests the fused loop's body has, and how many follow it (the rest of the kernel)."""
    loop, _, after = kernel_text.partition("        carry = v_")
    return loop.count("== float('inf')"), after.count("== float('inf')")


@pytest.mark.parametrize("name,expected", [("logsumexp", (2, 1)), ("softmax", (2, 1))])
def test_a_shift_kept_finite_by_the_program_is_not_guarded_again(name, expected):
    """logsumexp's shift is where(isinf(m), 0, m) already: the loop computes it per chunk (for the old and
    the new max) and after the loop once, with no isinf/where of the rescaling's own and no NaN step;
    softmax's shift is the max itself, which the rescaling guards (old and new) and checks after."""
    kernel, make_args, reference = CASES[name]
    x = rows("special", (6, 50))
    lowered = tfn.jit(kernel).lower(*make_args(x), config=Config(block_sizes=[4], reduction_loops=[16]))
    text = lowered.kernel.kernel
    assert _isinf_tests(text) == expected
    assert ('float("nan")' in text) == (name == "softmax")
    torch.testing.assert_close(lowered.compile()(x), reference(x), atol=1e-4, rtol=1e-4, equal_nan=True)
    torch.testing.assert_close(tfn.interpret(kernel, config=lowered.config)(x), reference(x), atol=1e-4, rtol=1e-4,
                               equal_nan=True)


def _fused_body(text: str) -> str:
    """The source of the kernel's first chunk loop's body."""
    return text.partition("    for off_t")[2].partition("\n    v_")[0]


@pytest.mark.parametrize("name", ["cross_entropy", "handwritten_cross_entropy", "logsumexp", "softmax"])
def test_the_row_is_read_once_and_summed_as_exp2(name):
    """One load of the logits, in the loop carrying (max, sum); the summed terms are exp2((a - c) log2 e) in float32."""
    kernel, make_args, reference = CASES[name]
    args = make_args(rows("plain", (6, 50)))
    lowered = tfn.jit(kernel).lower(*args, config=Config(block_sizes=[4], reduction_loops=[16]))
    text = lowered.kernel.kernel
    row = text.split("(")[1].split(",")[0]  # the kernel's first parameter: the rows
    assert text.count(f"tl.load({row} +") == (1 if "softmax" not in name else 2)  # (softmax's store loop reads it too)
    body = _fused_body(text)
    assert f"tl.load({row} +" in body and "tl.exp2(" in body and "* 1.4426950408889634" in body
    assert body.count("tl.exp(") == 1  # only the carried sum's rescaling factor, one per row
    torch.testing.assert_close(lowered.compile()(*args), reference(*args), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["moved_shift", "doubled_shift"])
def test_sums_not_holding_the_max_term_keep_exp(name):
    """A shift that can leave the max (where(m == 1, 90, m)) or is no max at all keeps exp: terms below 2**-126
    count (exp2 would flush them to 0)."""
    kernel, make_args, reference = CASES[name]
    x = -torch.rand(4, 40)
    x[:, 7] = torch.tensor([1.0, 1.0, 3.0, 0.5])  # rows 0, 1: every term exp(x - 90) below 2**-126
    lowered = tfn.jit(kernel).lower(x, config=Config(block_sizes=[4], reduction_loops=[16]))
    assert len(loops_in(lowered.program)) == FUSED[name] and "tl.exp2(" not in lowered.kernel.kernel
    if name == "moved_shift":
        assert torch.exp(x[0] - 90).max() < 2 ** -126 and reference(x)[0] > 0
    torch.testing.assert_close(lowered.compile()(x), reference(x), atol=0, rtol=1e-4)
    torch.testing.assert_close(tfn.interpret(kernel, config=lowered.config)(x), reference(x), atol=0, rtol=1e-4)


def test_float64_terms_keep_exp():
    """exp2 with a rounded log2(e) is float32's exp on the GPU, not float64's: float64 rows keep exp."""
    x = torch.randn(8, 100, dtype=torch.float64) * 10
    lowered = tfn.jit(logsumexp).lower(x, config=Config(block_sizes=[4], reduction_loops=[32]))
    assert len(loops_in(lowered.program)) == 1 and "tl.exp2(" not in lowered.kernel.kernel
    torch.testing.assert_close(lowered.compile()(x), torch.logsumexp(x, 1), atol=1e-12, rtol=1e-12)


def test_cross_entropy_at_the_benchmark_sizes_compiles_for_hopper_without_spills():
    """bench.py's 8192x32768 and 8192x131072 bf16 rows, default Config (4 warps: rows in chunks): exp2 (MUFU.EX2 alone), no local memory."""
    for v in (32768, 131072):
        logits, labels = torch.empty(8192, v, dtype=torch.bfloat16), torch.zeros(8192, dtype=torch.int64)
        compiled = compile_for_gpu(cross_entropy, logits, labels)
        ptx = compiled.asm["ptx"]
        assert ".local" not in ptx and "ex2.approx.ftz.f32" in ptx and compiled.metadata.num_warps == 4
