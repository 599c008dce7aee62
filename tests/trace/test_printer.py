"""Golden text of the printed IR: `str(tfn.make_ir(kernel)(*args))` is readable and stable.

To update after an intended change of the text form, print the program and check it by eye
before pasting it here.
"""
import re
import textwrap

import torch

import tilefn as tfn
from tilefn import lang as tl

SCALE = torch.arange(8, dtype=torch.float32)  # a captured global tensor


def matmul(x, y):
    m, k = x.shape
    _, n = y.shape
    out = torch.empty([m, n], dtype=x.dtype, device=x.device)
    for tm, tn in tl.tile([m, n]):
        acc = tl.zeros([tm, tn], dtype=torch.float32)
        for tk in tl.tile(k):
            acc = torch.addmm(acc, x[tm, tk], y[tk, tn])
        out[tm, tn] = acc
    return out


def softmax(x):
    n, _ = x.size()
    out = torch.empty_like(x)
    for tile_n in tl.tile(n):
        out[tile_n, :] = torch.nn.functional.softmax(x[tile_n, :], dim=1)
    return out


def softmax_two_pass(x):
    m, n = x.size()
    out = torch.empty_like(x)
    block_size_m = tl.register_block_size(m)
    block_size_n = tl.register_block_size(n)
    for tile_m in tl.tile(m, block_size=block_size_m):
        mi = tl.full([tile_m], float("-inf"), dtype=torch.float32)
        di = tl.zeros([tile_m], dtype=torch.float32)
        for tile_n in tl.tile(n, block_size=block_size_n):
            values = x[tile_m, tile_n]
            local_amax = torch.amax(values, dim=1)
            mi_next = torch.maximum(mi, local_amax)
            di = di * torch.exp(mi - mi_next) + torch.exp(values - mi_next[:, None]).sum(dim=1)
            mi = mi_next
        for tile_n in tl.tile(n, block_size=block_size_n):
            values = x[tile_m, tile_n]
            out[tile_m, tile_n] = torch.exp(values - mi[:, None]) / di[:, None]
    return out


def layer_norm(x, weight, bias, eps: float = 1e-5):
    m, n = x.size()
    out = torch.empty([m, n], dtype=x.dtype, device=x.device)
    for tile_m in tl.tile(m):
        acc = x[tile_m, :].to(torch.float32)
        mean = torch.mean(acc, dim=-1)
        var = torch.var(acc, dim=-1, unbiased=False)
        normalized = (acc - mean[:, None]) * torch.rsqrt(var[:, None] + eps)
        acc = normalized * weight[:].to(torch.float32) + bias[:].to(torch.float32)
        out[tile_m, :] = acc.to(x.dtype)
    return out


def jagged_sum(values, offsets):
    rows = offsets.size(0) - 1
    out = torch.zeros([rows], dtype=values.dtype, device=values.device)
    for r in tl.grid(rows):
        total = tl.zeros([], dtype=torch.float32)
        for tv in tl.tile(offsets[r], offsets[r + 1], block_size=16):
            total = total + values[tv].sum()
        out[r] = total
    return out


def scaled_rows(x):
    m, n = x.shape
    out = torch.empty_like(x)
    for tm in tl.tile(m):
        out[tm, :] = x[tm, :] * SCALE[None, :]
    return out.sum(dim=0), out.view(-1)


def _golden(text: str) -> str:
    return textwrap.dedent(text).strip("\n")


def _check(kernel, args, expected):
    assert str(tfn.make_ir(kernel)(*args)) == _golden(expected)


F16, BF16 = torch.float16, torch.bfloat16


def test_matmul():
    _check(matmul, [torch.randn(64, 32, dtype=F16), torch.randn(32, 48, dtype=F16)], """
        def matmul(x: f16[64, 32], y: f16[32, 48]):
          # B0: block size over extent 64
          # B1: block size over extent 48
          # B2: block size over extent 32
          out: f16[64, 48] = torch.empty([64, 48], device='cpu', dtype=torch.float16)
          kernel(x, y, out):
            grid tm in tile(0, 64, block=B0), tn in tile(0, 48, block=B1):
              acc: f32[tm, tn] = full[value=0]
              acc_1: f32[tm, tn] = for tk in tile(0, 32, block=B2) carry(acc_2 = acc):
                v0: f16[tm, tk] = load x[tm, tk]
                v1: f16[tk, tn] = load y[tk, tn]
                acc_3: f32[tm, tn] = dot v0, v1, acc_2
                yield acc_3
              v2: f16[tm, tn] = convert[dtype=f16] acc_1
              store out[tm, tn] <- v2
          return out
    """)


def test_softmax():
    _check(softmax, [torch.randn(32, 64, dtype=F16)], """
        def softmax(x: f16[32, 64]):
          # B0: block size over extent 32
          out: f16[32, 64] = torch.empty_like(x)
          kernel(x, out):
            grid tile_n in tile(0, 32, block=B0):
              v0: f16[tile_n, 64] = load x[tile_n, 0:64]
              v1: f32[tile_n, 64] = convert[dtype=f32] v0
              v2: f32[tile_n, 1] = reduce_max[axis=1, keepdim=True] v1
              v3: f32[tile_n, 1] = stop_gradient v2
              v4: f32[tile_n, 64] = sub v1, v3
              v5: f32[tile_n, 64] = exp v4
              v6: f32[tile_n, 1] = reduce_sum[axis=1, keepdim=True] v5
              v7: f32[tile_n, 64] = div v5, v6
              v8: f16[tile_n, 64] = convert[dtype=f16] v7
              store out[tile_n, 0:64] <- v8
          return out
    """)


def test_softmax_two_pass():
    _check(softmax_two_pass, [torch.randn(32, 64)], """
        def softmax_two_pass(x: f32[32, 64]):
          # B0: block size over extent 32
          # B1: block size over extent 64
          out: f32[32, 64] = torch.empty_like(x)
          kernel(x, out):
            grid tile_m in tile(0, 32, block=B0):
              mi: f32[tile_m] = full[value=-inf]
              di: f32[tile_m] = full[value=0]
              mi_1: f32[tile_m], di_1: f32[tile_m] = for tile_n in tile(0, 64, block=B1) carry(mi_2 = mi, di_2 = di):
                values: f32[tile_m, tile_n] = load x[tile_m, tile_n]
                local_amax: f32[tile_m] = reduce_max[axis=1, keepdim=False] values
                mi_next: f32[tile_m] = maximum mi_2, local_amax
                v0: f32[tile_m] = sub mi_2, mi_next
                v1: f32[tile_m] = exp v0
                v2: f32[tile_m] = mul di_2, v1
                v3: f32[tile_m, 1] = expand_dims[axis=1] mi_next
                v4: f32[tile_m, tile_n] = sub values, v3
                v5: f32[tile_m, tile_n] = exp v4
                v6: f32[tile_m] = reduce_sum[axis=1, keepdim=False] v5
                di_3: f32[tile_m] = add v2, v6
                yield mi_next, di_3
              for tile_n_1 in tile(0, 64, block=B1):
                values_1: f32[tile_m, tile_n_1] = load x[tile_m, tile_n_1]
                v7: f32[tile_m, 1] = expand_dims[axis=1] mi_1
                v8: f32[tile_m, tile_n_1] = sub values_1, v7
                v9: f32[tile_m, tile_n_1] = exp v8
                v10: f32[tile_m, 1] = expand_dims[axis=1] di_1
                v11: f32[tile_m, tile_n_1] = div v9, v10
                store out[tile_m, tile_n_1] <- v11
          return out
    """)


def test_layer_norm():
    _check(layer_norm, [torch.randn(32, 64, dtype=BF16), torch.randn(64, dtype=BF16), torch.randn(64, dtype=BF16)], """
        def layer_norm(x: bf16[32, 64], weight: bf16[64], bias: bf16[64], eps: float):
          # B0: block size over extent 32
          out: bf16[32, 64] = torch.empty([32, 64], device='cpu', dtype=torch.bfloat16)
          kernel(x, eps, weight, bias, out):
            grid tile_m in tile(0, 32, block=B0):
              v0: bf16[tile_m, 64] = load x[tile_m, 0:64]
              v1: f32[tile_m, 64] = convert[dtype=f32] v0
              v2: f32[tile_m] = reduce_sum[axis=1, keepdim=False] v1
              mean: f32[tile_m] = div v2, 64
              v3: f32[tile_m, 1] = reduce_sum[axis=1, keepdim=True] v1
              v4: f32[tile_m, 1] = div v3, 64
              v5: f32[tile_m, 64] = sub v1, v4
              v6: f32[tile_m, 64] = mul v5, v5
              v7: f32[tile_m] = reduce_sum[axis=1, keepdim=False] v6
              var: f32[tile_m] = div v7, 64
              v8: f32[tile_m, 1] = expand_dims[axis=1] mean
              v9: f32[tile_m, 64] = sub v1, v8
              v10: f32[tile_m, 1] = expand_dims[axis=1] var
              v11: f32[tile_m, 1] = add v10, eps
              v12: f32[tile_m, 1] = rsqrt v11
              normalized: f32[tile_m, 64] = mul v9, v12
              v13: bf16[64] = load weight[0:64]
              v14: f32[64] = convert[dtype=f32] v13
              v15: f32[tile_m, 64] = mul normalized, v14
              v16: bf16[64] = load bias[0:64]
              v17: f32[64] = convert[dtype=f32] v16
              acc: f32[tile_m, 64] = add v15, v17
              v18: bf16[tile_m, 64] = convert[dtype=bf16] acc
              store out[tile_m, 0:64] <- v18
          return out
    """)


def test_jagged_sum():
    _check(jagged_sum, [torch.randn(40), torch.tensor([0, 3, 3, 40], dtype=torch.int32)], """
        def jagged_sum(values: f32[40], offsets: i32[4]):
          # B0: block size over extent dynamic, fixed at 16
          out: f32[3] = torch.zeros([3], device='cpu', dtype=torch.float32)
          kernel(offsets, values, out):
            grid r in grid(0, 3):
              total: f32[] = full[value=0]
              v0: i32[] = load offsets[r]
              v1: i32[] = add r, 1
              v2: i32[] = load offsets[v1]
              total_1: f32[] = for tv in tile(v0, v2, block=B0=16) carry(total_2 = total):
                v3: f32[tv] = load values[tv]
                v4: f32[] = reduce_sum[axis=0, keepdim=False] v3
                total_3: f32[] = add total_2, v4
                yield total_3
              store out[r] <- total_1
          return out
    """)


def test_scaled_rows():
    _check(scaled_rows, [torch.randn(4, 8)], """
        def scaled_rows(x: f32[4, 8]):
          # captured: SCALE: f32[8]
          # B0: block size over extent 4
          out: f32[4, 8] = torch.empty_like(x)
          kernel(x, SCALE, out):
            grid tm in tile(0, 4, block=B0):
              v0: f32[tm, 8] = load x[tm, 0:8]
              v1: f32[1, 8] = load SCALE[None, 0:8]
              v2: f32[tm, 8] = mul v0, v1
              store out[tm, 0:8] <- v2
          v3: f32[8] = out.sum(dim=0)
          v4: f32[32] = out.view(-1)
          return (v3, v4)
    """)


def test_printing_is_stable_across_traces_and_prints():
    x = torch.randn(32, 64)
    program = tfn.make_ir(softmax_two_pass)(x)
    assert str(program) == str(program) == str(tfn.make_ir(softmax_two_pass)(x))


def test_every_defined_name_is_unique():
    """Each variable gets its own name, even when the user reuses one (`values`, `tile_n`, `acc`)."""
    text = str(tfn.make_ir(softmax_two_pass)(torch.randn(32, 64)))
    body = text.split("\n", 1)[1]  # past the signature
    typed = re.findall(r"(\w+): (?:f|bf|i|u|b)\d+\[", body)
    handles = re.findall(r"(\w+) in (?:tile|grid)\(", body)
    carried = re.findall(r"(\w+) = \w+[,)]", "".join(re.findall(r"carry\(.*?\)", body)))
    defined = typed + handles + carried
    assert {"values", "values_1", "tile_n", "tile_n_1", "mi_2", "di_2"} <= set(defined)
    assert len(defined) == len(set(defined)), defined
