"""`import tilefn` is light: Triton is imported at the first compilation or launch, not before."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout


def test_import_does_not_import_triton():
    assert _run("import sys, tilefn, tilefn.helion, tilefn.testing; print('triton' in sys.modules)").strip() == "False"


def test_the_first_launch_imports_triton():
    code = ("import sys, torch, tilefn as tfn\nfrom tilefn import lang as tl\n"
            "def double(x):\n    out = torch.empty_like(x)\n    for t in tl.tile(x.shape[0]):\n"
            "        out[t] = x[t] * 2\n    return out\n"
            "tfn.jit(double)(torch.randn(8))\nprint('triton' in sys.modules)")
    assert _run(code).strip() == "True"
