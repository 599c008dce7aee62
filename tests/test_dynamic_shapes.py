"""tfn.jit(static_shapes=False): one trace and one compile serve every size; results equal eager PyTorch
and tfn.interpret (which runs the same symbolic Program) under drawn Configs; guards specialise what host
code decides; the static mode still specialises."""
from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

import tilefn as tfn
import tilefn.testing as tt
from tilefn.signature_cache import CacheInfo
from tilefn import lang as tl
from kernels import layer_norm, matmul

BATCHES = [2, 3, 16, 17, 37, 50, 64, 65, 100, 130]  # ragged and divisible, one block and several


def softmax(x):
    m, _ = x.shape
    out = torch.empty_like(x)
    for tm in tl.tile(m):
        out[tm, :] = torch.softmax(x[tm, :].to(torch.float32), dim=1).to(x.dtype)
    return out


def rms_norm(x, weight):
    m, _ = x.shape
    out = torch.empty_like(x)
    for tm in tl.tile(m):
        row = x[tm, :].to(torch.float32)
        out[tm, :] = row * torch.rsqrt(torch.mean(row * row, dim=1, keepdim=True) + 1e-5) * weight[:]
    return out


def cross_entropy(logits, labels):
    n, v = logits.shape
    losses = torch.empty([n], dtype=torch.float32, device=logits.device)
    flat = logits.view(-1)  # host code on symbolic sizes: a view of (s0 * s1) elements
    for tn in tl.tile(n):
        lse = torch.logsumexp(logits[tn, :].to(torch.float32), dim=1)
        losses[tn] = lse - flat[tn.index * v + labels[tn]].to(torch.float32)
    return losses.mean()


def add_bias(x, bias):
    out = torch.empty_like(x)
    for tm, tn in tl.tile(x.shape):
        out[tm, tn] = torch.relu(x[tm, tn] + bias[tn])
    return out


def _inputs(name, m):
    g = torch.Generator().manual_seed(m)
    x = torch.randn(m, 40, generator=g)
    if name == "layer_norm":
        return x, torch.randn(40, generator=g), torch.randn(40, generator=g)
    if name in ("rms_norm", "add_bias"):
        return x, torch.randn(40, generator=g)
    if name == "matmul":
        return x, torch.randn(40, 24, generator=g)
    if name == "cross_entropy":
        return x, torch.randint(0, 40, (m,), generator=g)
    return (x,)


REFERENCES = {
    "softmax": lambda x: torch.softmax(x, 1),
    "layer_norm": lambda x, w, b: torch.nn.functional.layer_norm(x, [x.shape[1]], w, b, 1e-5),
    "rms_norm": lambda x, w: torch.nn.functional.rms_norm(x, [x.shape[1]], w, 1e-5),
    "matmul": lambda x, y: x @ y,
    "cross_entropy": lambda x, labels: torch.nn.functional.cross_entropy(x, labels),
    "add_bias": lambda x, b: torch.relu(x + b),
}
KERNELS = {"softmax": softmax, "layer_norm": layer_norm, "rms_norm": rms_norm, "matmul": matmul,
           "cross_entropy": cross_entropy, "add_bias": add_bias}


@pytest.mark.parametrize("name", list(KERNELS))
def test_one_trace_and_compile_for_ten_batch_sizes(name):
    kernel = tfn.jit(KERNELS[name], static_shapes=False)
    for m in BATCHES:
        args = _inputs(name, m)
        want = REFERENCES[name](*args)
        torch.testing.assert_close(kernel(*args), want, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(tfn.interpret(kernel)(*args), want, atol=1e-4, rtol=1e-4)
    assert kernel.cache_info() == CacheInfo(traces=1, compiles=1, tunings=0)


@pytest.mark.parametrize("name", ["softmax", "matmul", "cross_entropy", "add_bias"])
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_one_executable_serves_every_size_under_drawn_configs(name, data):
    kernel = tfn.jit(KERNELS[name], static_shapes=False)
    config = data.draw(tt.configs(kernel, *_inputs(name, 33)))
    executable = kernel.lower(*_inputs(name, 33), config=config).compile()  # compiled once, for m = 33
    for m in data.draw(st.lists(st.integers(1, 90), min_size=2, max_size=3)):
        args = _inputs(name, m)
        want = REFERENCES[name](*args)
        torch.testing.assert_close(executable(*args), want, atol=1e-4, rtol=1e-4, msg=f"m={m}, {config}")
        torch.testing.assert_close(tfn.interpret(kernel, config=config)(*args), want, atol=1e-4, rtol=1e-4)


def test_non_contiguous_inputs_key_on_their_layout_class_not_their_sizes():
    kernel = tfn.jit(add_bias, static_shapes=False)
    for m in (20, 45):
        x, bias = torch.randn(64, m).t(), torch.randn(128)[::2]  # transposed rows, a strided bias
        torch.testing.assert_close(kernel(x, bias), torch.relu(x + bias))
    wide = torch.randn(30, 96)
    for m in (7, 19):  # unit last stride, row stride 96 (a slice of the wider tensor)
        x, bias = wide[:m, :40], torch.randn(40)
        torch.testing.assert_close(kernel(x, bias), torch.relu(x + bias))
    expanded = torch.randn(40).expand(5, 40)  # stride 0: read as an expanded axis
    torch.testing.assert_close(kernel(expanded, torch.ones(40)), torch.relu(expanded + 1))
    # transposed, strided-bias; sliced rows; expanded: three layout classes, never a compile per size
    assert kernel.cache_info().compiles == 3


def test_static_mode_still_specialises_on_sizes():
    kernel = tfn.jit(softmax)
    for m in BATCHES[:4]:
        x = torch.randn(m, 40)
        torch.testing.assert_close(kernel(x), torch.softmax(x, 1))
    assert kernel.cache_info() == CacheInfo(traces=4, compiles=4, tunings=0)
    assert "s0" not in str(tfn.make_ir(kernel)(torch.randn(5, 40)))


def test_a_host_decision_on_a_size_is_a_guard_one_program_per_outcome():
    def branchy(x):
        m, n = x.shape
        out = torch.empty_like(x)
        scale = 2.0 if m > 64 else 3.0  # host code decides on a size
        for tm, tn in tl.tile([m, n]):
            out[tm, tn] = x[tm, tn] * scale
        return out

    kernel = tfn.jit(branchy, static_shapes=False)
    for m in (10, 20, 100, 200, 64, 65):
        x = torch.randn(m, 8)
        torch.testing.assert_close(kernel(x), x * (2.0 if m > 64 else 3.0))
    assert kernel.cache_info().traces == 2
    assert "# guard: s0 <= 64" in str(tfn.make_ir(kernel)(torch.randn(3, 8)))


def test_host_code_needing_a_size_as_a_number_specialises_on_it():
    def unrolled(x):
        m, n = x.shape
        out = torch.empty_like(x)
        for tn in tl.tile(n):
            acc = tl.zeros([tn], dtype=torch.float32)
            for i in range(m):  # a Python loop over a size: the Program holds m loads
                acc = acc + x[i, tn]
            out[0, tn] = acc
        return out

    kernel = tfn.jit(unrolled, static_shapes=False)
    for m in (2, 3, 3):
        x = torch.randn(m, 8)
        torch.testing.assert_close(kernel(x)[0], x.sum(0))
    assert kernel.cache_info().traces == 2
    assert "# guard: s0 == 2" in str(tfn.make_ir(kernel)(torch.randn(2, 8)))


def test_symbolic_sizes_print_and_reach_the_kernel_as_arguments():
    kernel = tfn.jit(matmul, static_shapes=False)
    x, y = torch.randn(33, 40), torch.randn(40, 24)
    text = str(tfn.make_ir(kernel)(x, y))
    assert "def matmul(x: f32[s0, s1], y: f32[s2, s3]):" in text and "torch.empty([s0, s3]" in text
    source = kernel.lower(x, y).source
    assert "def _matmul_kernel(x, y, out, s0, s1, s2, s3," in source
    assert "s0, s1 = x.shape" in source  # the launcher reads the sizes and computes the grid from them


@pytest.mark.parametrize("name", ["softmax", "matmul", "cross_entropy"])
def test_dynamic_kernels_compile_for_sm90(name):
    kernel = tfn.jit(KERNELS[name], static_shapes=False)
    args = _inputs(name, 37)
    compiled = tt.compile_for_gpu(kernel, *args, arch=90)
    assert "s0" in compiled.asm["ttir"]  # a runtime argument, not a constant


def test_helion_static_shapes_false_compiles_once():
    from tilefn import helion
    from tilefn.helion import language as hl

    @helion.kernel(static_shapes=False, config=helion.Config(block_sizes=[16, 16]))
    def add(x, y):
        out = torch.empty_like(x)
        for tile in hl.tile(out.size()):
            out[tile] = x[tile] + y[tile]
        return out

    for m in (5, 30, 70):
        x, y = torch.randn(m, 12), torch.randn(m, 12)
        torch.testing.assert_close(add(x, y), x + y)
    assert add.tuned.cache_info().compiles == 1
    assert add.jitted.cache_info().traces == 1


def test_tune_keys_a_dynamic_kernel_by_size_buckets(tmp_path, monkeypatch):
    monkeypatch.setenv("TILEFN_CACHE_DIR", str(tmp_path))
    configs = [tfn.Config(block_sizes=[16]), tfn.Config(block_sizes=[32])]
    tuned = tfn.tune(tfn.jit(softmax, static_shapes=False), configs=configs, verbose=False)
    for m in (33, 40, 64, 70):  # 33..64 share the bucket 64; 70 is in the bucket 128
        x = torch.randn(m, 40)
        torch.testing.assert_close(tuned(x), torch.softmax(x, 1))
    assert tuned.cache_info().tunings == 2
    signatures = set(tuned.table()["cpu"])
    assert signatures == {"float32[<=64, <=64]/contiguous", "float32[<=128, <=64]/contiguous"}
    entries = [p.read_text() for p in (tmp_path / "tune").glob("*.json")]
    assert len(entries) == 2 and all('"bucket": "float32[<=' in e for e in entries)


def scaled_rms_norm(x, weight, eps):
    m, _ = x.shape
    out = torch.empty_like(x)
    for tm in tl.tile(m):
        row = x[tm, :].to(torch.float32)
        out[tm, :] = row * torch.rsqrt(torch.mean(row * row, dim=1, keepdim=True) + eps) * weight[:]
    return out


def test_new_sizes_and_new_float_values_share_one_compile():
    """static_shapes=False with a runtime float: 5 batch sizes x 2 eps values, one trace and one compile,
    and the fast path (the second call of each size) takes the new float too."""
    kernel = tfn.jit(scaled_rms_norm, static_shapes=False)
    for m in (3, 8, 17, 32, 50):
        for eps in (1e-5, 0.5):
            x, w = torch.randn(m, 24), torch.randn(24)
            want = x * torch.rsqrt(x.pow(2).mean(1, keepdim=True) + eps) * w
            torch.testing.assert_close(kernel(x, w, eps), want, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(tfn.interpret(kernel)(x, w, eps), want, atol=1e-5, rtol=1e-5)
    assert kernel.cache_info() == CacheInfo(traces=1, compiles=1, tunings=0)


def specialized_width_sum(x):
    m, n = x.shape
    n = tl.specialize(n)
    out = torch.empty([m], dtype=x.dtype, device=x.device)
    for tm in tl.tile(m):
        out[tm] = x[tm, :n].sum(dim=1)
    return out


def test_specialize_of_a_symbolic_size_gives_its_int_and_one_program_per_value():
    kernel = tfn.jit(specialized_width_sum, static_shapes=False)
    for m, n in ((3, 16), (9, 16), (5, 24), (12, 24)):
        x = torch.randn(m, n)
        torch.testing.assert_close(kernel(x), x.sum(1))
        torch.testing.assert_close(tfn.interpret(kernel)(x), x.sum(1))
    assert kernel.cache_info().traces == 2  # one per width; the batch size stays symbolic


def test_helion_specialize_of_a_symbolic_size():
    from tilefn import helion
    from tilefn.helion import language as hl

    @helion.kernel(static_shapes=False, config=helion.Config(block_sizes=[4]))
    def row_sums(x):
        m, n = x.size()
        n = hl.specialize(n)
        out = torch.empty([m], dtype=x.dtype, device=x.device)
        for tile in hl.tile(m):
            out[tile] = x[tile, :n].sum(-1)
        return out

    for m in (5, 30):
        x = torch.randn(m, 12)
        torch.testing.assert_close(row_sums(x), x.sum(1))
    assert row_sums.jitted.cache_info().traces == 1
