"""tilefn.helion's top-level helpers and `helion.runtime` under Helion's names."""
from __future__ import annotations

import math

import pytest
import torch

import tilefn.helion as helion
import tilefn.helion.language as hl
from tilefn.helion.runtime.settings import RefMode, Settings, _get_backend


@pytest.mark.parametrize("a, b", [(0, 4), (1, 4), (4, 4), (5, 4), (1023, 32), (7, 1)])
def test_cdiv_is_the_ceiling_of_a_quotient(a, b):
    assert helion.cdiv(a, b) == math.ceil(a / b)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 64, 65, 1000])
def test_next_power_of_2(n):
    p = helion.next_power_of_2(n)
    assert p >= max(n, 1) and p & (p - 1) == 0 and (p == 1 or p // 2 < n)


def test_get_num_sm_on_the_cpu_and_refusal_elsewhere():
    assert helion.runtime.get_num_sm(torch.device("cpu")) == 1
    with pytest.raises(ValueError, match="CUDA devices and the CPU"):
        helion.runtime.get_num_sm(torch.device("meta"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_get_num_sm_counts_the_gpus_sms_less_reserved():
    count = torch.cuda.get_device_properties(0).multi_processor_count
    assert helion.runtime.get_num_sm(torch.device("cuda"), reserved_sms=2) == count - 2


def test_runtime_settings_module_and_ref_mode_enum():
    assert Settings is helion.Settings and _get_backend() == "triton"

    def add_one(x):
        out = torch.empty_like(x)
        for t in hl.tile(x.size()):
            out[t] = x[t] + 1
        return out

    k = helion.kernel(config=helion.Config(block_sizes=[4]), ref_mode=RefMode.EAGER)(add_one)
    assert k.settings.ref_mode == "eager"
    x = torch.randn(10)
    torch.testing.assert_close(k(x), x + 1)


def test_jit_is_kernel_and_aot_kernel_runs_and_warns_on_its_phases():
    assert helion.jit is helion.kernel

    def double(x):
        out = torch.empty_like(x)
        for t in hl.tile(x.size()):
            out[t] = x[t] * 2
        return out

    x = torch.randn(33)
    k = helion.aot_kernel(config=helion.Config(block_sizes=[8]))(double)
    torch.testing.assert_close(k(x), x * 2)
    with pytest.warns(UserWarning, match=r"\['collect_fn'\] have no effect"):
        helion.aot_kernel(double, collect_fn=lambda: [(x,)], config=helion.Config(block_sizes=[8]))
