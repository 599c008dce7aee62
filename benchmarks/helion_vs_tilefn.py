"""Helion's own example kernels through real Helion and through tilefn.helion, side by side.

    python benchmarks/helion_vs_tilefn.py HELION_ROOT [--only softmax,rms_norm] [--efforts none,quick]

HELION_ROOT holds the examples of the Helion release that is installed (1.4.0: take them from that
tag, `git archive v1.4.0 examples`; main's may need a newer Helion). For each example file, each
side (`helion`: the installed library; `tilefn`: `import helion` aliased to tilefn.helion, as the
conformance runner does) and each effort (`none`: the default config; `quick`: quick autotuning,
HELION_AUTOTUNE_EFFORT), one subprocess imports the file with `helion._testing.run_example`
replaced by a timer and runs the file's `main()` at its own sizes. The timer calls each kernel once
(its compile and tuning: "first call" seconds), checks it against the file's first baseline, then
times it with triton.testing.do_bench. The table pairs rows by (file, call, kernel name) and shows
tilefn's speed as Helion's time over tilefn's (above 1: tilefn faster), with geometric means.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

CHILD_TIMEOUT_S = 900


def _timer(emit):
    """A stand-in for Helion's run_example that times each kernel and reports it through `emit`."""
    import torch

    calls = [0]

    def run_example(kernel_fn, baseline_fn, args, kernel_name="helion", baseline_name="torch",
                    rtol=1e-2, atol=1e-1, **_ignored):
        kernels = kernel_fn if isinstance(kernel_fn, dict) else {kernel_name: kernel_fn}
        baselines = baseline_fn if isinstance(baseline_fn, dict) else {baseline_name: baseline_fn}
        expected = next(iter(baselines.values()))(*args)
        calls[0] += 1
        for name, fn in kernels.items():
            row = {"call": calls[0], "kernel": name}
            try:
                start = time.perf_counter()
                got = fn(*args)
                _synchronize()
                row["first_call_s"] = time.perf_counter() - start
                torch.testing.assert_close(got, expected, rtol=rtol, atol=atol, check_dtype=False)
                row["ms"] = _bench(lambda: fn(*args))
            except Exception as exc:  # reported in the table, the run goes on
                row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:120]
            emit(row)
        return {}

    return run_example


def _synchronize():
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _bench(fn) -> float:
    """Milliseconds per call: triton's do_bench on a GPU, one timed call elsewhere (a smoke run)."""
    import torch

    if torch.cuda.is_available():
        from triton.testing import do_bench

        return do_bench(fn, warmup=25, rep=100)
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def child(side: str, root: Path, file: Path) -> None:
    """Runs one example file's main() on one side, printing one JSON row per kernel timed."""
    if side == "tilefn":
        from tilefn.helion.conformance import aliasing

        aliasing.install(root)
    import helion._testing as testing

    testing.run_example = _timer(lambda row: print("ROW " + json.dumps(row), flush=True))
    sys.path.insert(0, str(file.parent))
    sys.argv = [str(file)]
    testing.import_path(file).main()


def _run_child(side: str, effort: str, root: Path, file: Path, timeout_s: float) -> list[dict]:
    env = {**os.environ, "HELION_AUTOTUNE_EFFORT": effort, "TILEFN_CONFORMANCE_DEVICE": "cuda", "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, __file__, str(root), "--child", side, str(file)]
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return [{"call": 0, "kernel": "*", "error": f"timed out after {timeout_s:.0f} s"}]
    rows = [json.loads(line[4:]) for line in done.stdout.splitlines() if line.startswith("ROW ")]
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["exit code %d" % done.returncode])[-1]
        rows.append({"call": 0, "kernel": "*", "error": last[:120]})
    return rows


def _cell(row: dict | None, field: str) -> str:
    if row is None:
        return "-"
    if "error" in row:
        return "ERR"
    return f"{row[field]:.4f}" if field == "ms" else f"{row[field]:.1f}"


def table(results: dict, efforts: list[str]) -> list[str]:
    """Markdown rows: per (file, call, kernel) each effort's times, ratio and first-call seconds."""
    head = "| example | call | kernel |" + "".join(
        f" helion {e} ms | tilefn {e} ms | speedup {e} | helion {e} first s | tilefn {e} first s |" for e in efforts)
    lines = [head, "|" + "---|" * (3 + 5 * len(efforts))]
    ratios = {e: [] for e in efforts}
    keys = sorted({(f, r["call"], r["kernel"]) for (f, _, _), rows in results.items() for r in rows})
    errors = []
    for f, call, kernel in keys:
        cells = [f, str(call), kernel]
        for e in efforts:
            h, t = (next((r for r in results.get((f, s, e), []) if (r["call"], r["kernel"]) == (call, kernel)), None)
                    for s in ("helion", "tilefn"))
            ok = all(x is not None and "error" not in x for x in (h, t))
            if ok:
                ratios[e].append(h["ms"] / t["ms"])
            cells += [_cell(h, "ms"), _cell(t, "ms"), f"{h['ms'] / t['ms']:.2f}x" if ok else "-",
                      _cell(h, "first_call_s"), _cell(t, "first_call_s")]
            errors += [f"{f} {kernel} ({s}, {e}): {x['error']}" for s, x in (("helion", h), ("tilefn", t))
                       if x is not None and "error" in x]
        lines.append("| " + " | ".join(cells) + " |")
    for e in efforts:
        if ratios[e]:
            mean = math.exp(sum(map(math.log, ratios[e])) / len(ratios[e]))
            lines.append(f"\ngeometric mean speedup ({e}): {mean:.3f}x over {len(ratios[e])} kernels; "
                         f"below 0.95x: {sum(r < 0.95 for r in ratios[e])}")
    return lines + ["", "errors:"] + [f"- {e}" for e in errors]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("helion", type=Path, help="a Helion checkout of the installed release (with examples/)")
    parser.add_argument("--only", default="", help="comma-separated example names (default: all)")
    parser.add_argument("--efforts", default="none,quick", help="comma-separated autotune efforts")
    parser.add_argument("--sides", default="helion,tilefn")
    parser.add_argument("--child-timeout", type=float, default=CHILD_TIMEOUT_S, help="seconds per example and side")
    parser.add_argument("--table", type=Path, help="rewrite the table to this file after each example")
    parser.add_argument("--child", nargs=2, metavar=("SIDE", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child[0], args.helion, Path(args.child[1]))
    only = {n for n in args.only.split(",") if n}
    files = sorted(p for p in (args.helion / "examples").glob("*.py")
                   if not p.name.startswith("_") and (not only or p.stem in only))
    efforts, results = args.efforts.split(","), {}
    for file in files:
        for effort in efforts:
            for side in args.sides.split(","):
                results[(file.stem, side, effort)] = _run_child(side, effort, args.helion, file, args.child_timeout)
                print(f"{file.stem} {side} {effort}: {len(results[(file.stem, side, effort)])} rows", flush=True)
        if args.table:
            args.table.write_text("\n".join(table(results, efforts)) + "\n")
    print("\n".join(table(results, efforts)))


if __name__ == "__main__":
    main()
