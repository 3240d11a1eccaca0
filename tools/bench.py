"""``make bench``: DCGAN training-step speed per framework against the CPU's limit.

    envs/pytorch/bin/python -m tools.bench [--batch-sizes 64 256] \
        [--variants plain chapter compiled] [--out build/bench]

Measures, in one run: the machine's fp32 matrix-multiply peak (4096 x 4096,
all cores, the faster of PyTorch's BLAS and oneDNN) before and after the
framework runs; for each framework
(each in its own environment, via ``tools.bench_step``) the examples/s of the
plain and the chapter's training step at each batch size, and the data
pipeline. Writes ``results.json`` and ``bench.png`` under ``--out`` and prints
a table with the ratio to the baseline, the effective GFLOP/s and its fraction
of the measured peak.

One step costs about 2.7 GFLOP per example as the section writes it (G forward
0.21 GFLOP and D forward 0.21 GFLOP per example; D runs on real and fake
batches, G twice, and a backward pass costs about twice its forward pass);
about 2.3 GFLOP when the fake batch is reused and D's weight gradients are
skipped in the generator step. Both are reported.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import d2l_shim
from tools import FRAMEWORKS

REPO_ROOT = Path(__file__).resolve().parents[1]
GFLOP_PER_EXAMPLE = {"section": 2.7, "reuse": 2.3}


def matmul_rates(size=4096, repeats=5):
    """Best fp32 GFLOP/s of a size x size matrix product over ``repeats`` runs,
    per library: PyTorch's BLAS (MKL, which runs its AVX2 code on AMD CPUs) and
    oneDNN (which picks kernels by the CPU's instruction set, AVX-512 included)."""
    import torch
    a, b = torch.rand(size, size), torch.rand(size, size)
    products = {"blas": lambda: torch.mm(a, b)}
    if torch.backends.mkldnn.is_available():
        a_dnn, b_dnn = a.to_mkldnn(), b.to_mkldnn()
        products["onednn"] = lambda: torch.nn.functional.linear(a_dnn, b_dnn)
    rates = {}
    for name, product in products.items():
        product()  # warm-up: thread pool, allocator, kernel choice
        rates[name] = 0.0
        for _ in range(repeats):
            start = time.perf_counter()
            product()
            rates[name] = max(rates[name], 2 * size ** 3 / (time.perf_counter() - start) / 1e9)
    return rates


def matmul_peak(runs):
    """The machine's fp32 matmul peak from ``matmul_rates`` runs: the faster
    library's rate in each run, median over the runs."""
    return statistics.median(max(rates.values()) for rates in runs)


def run_framework(framework, variant, batch_sizes, warmup, repeats, steps, pipeline):
    """The JSON records that ``tools.bench_step`` prints in ``framework``'s env."""
    python = REPO_ROOT / "envs" / framework / "bin" / "python"
    command = [str(python), "-m", "tools.bench_step", "--framework", framework,
               "--variants", variant, "--batch-sizes", *map(str, batch_sizes),
               "--warmup", str(warmup), "--repeats", str(repeats), "--steps", str(steps)]
    if not pipeline:
        command.append("--no-pipeline")
    if variant == "chapter":
        command += ["--breakdown", str(GFLOP_PER_EXAMPLE["reuse"])]
    environment = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    if variant != "plain":
        # Set before the framework is imported, so each variant runs in its own process.
        environment.update(d2l_shim.process_environment(framework, os.cpu_count()))
    print(f"== {framework} {variant}: {' '.join(command[1:])}", flush=True)
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True,
                          env=environment)
    if done.returncode != 0:
        raise RuntimeError(f"{framework} benchmark failed:\n{done.stderr[-3000:]}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def step_rows(records, peak):
    """Table rows for the step records, with ratios to the same-run baseline."""
    baseline = {(r["framework"], r["batch_size"]): r["examples_per_s"]
                for r in records if r["kind"] == "step" and r["variant"] == "plain"}
    rows = []
    for r in records:
        if r["kind"] != "step":
            continue
        rate = r["examples_per_s"]
        gflops = {name: cost * rate for name, cost in GFLOP_PER_EXAMPLE.items()}
        rows.append({**r, "ratio_to_plain": rate / baseline[(r["framework"], r["batch_size"])],
                     "gflops_at_2.7": gflops["section"], "gflops_at_2.3": gflops["reuse"],
                     "fraction_of_peak_at_2.7": gflops["section"] / peak,
                     "fraction_of_peak_at_2.3": gflops["reuse"] / peak})
    return rows


def format_table(rows, pipelines, breakdowns, peak, peak_runs=()):
    lines = [f"fp32 matmul peak (median of the runs before and after): {peak:.1f} GFLOP/s"]
    for name in dict.fromkeys(name for rates in peak_runs for name in rates):
        lines.append(f"  {name}: " + ", ".join(f"{rates[name]:.1f}" for rates in peak_runs
                                               if name in rates))
    lines += ["",
             f"{'framework':<11} {'variant':<8} {'batch':>5} {'ex/s':>7} {'x plain':>8} "
             f"{'GFLOP/s@2.7':>11} {'%peak':>6} {'GFLOP/s@2.3':>11} {'%peak':>6}"]
    for r in rows:
        lines.append(
            f"{r['framework']:<11} {r['variant']:<8} {r['batch_size']:>5} "
            f"{r['examples_per_s']:>7.1f} {r['ratio_to_plain']:>8.2f} "
            f"{r['gflops_at_2.7']:>11.1f} {100 * r['fraction_of_peak_at_2.7']:>5.0f}% "
            f"{r['gflops_at_2.3']:>11.1f} {100 * r['fraction_of_peak_at_2.3']:>5.0f}%")
    for b in breakdowns:
        shares = ", ".join(f"{kind} {100 * share:.0f}%" for kind, share in b["shares"].items())
        lines += ["", f"{b['framework']} chapter step at batch {b['batch_size']}, profiled: "
                  f"{shares} of {b['seconds_per_step']:.2f} s;",
                  f"its convolutions run at {b['convolution_gflops']:.0f} GFLOP/s "
                  f"({100 * b['convolution_gflops'] / peak:.0f}% of the matmul peak)"]
    lines += ["", f"{'framework':<11} {'decode PNG':>11} {'load cache':>11} {'epoch':>10}  (images/s)"]
    for p in pipelines:
        lines.append(f"{p['framework']:<11} {p['decode_png_images_per_s']:>11.0f} "
                     f"{p['load_cached_images_per_s']:>11.0f} {p['epoch_images_per_s']:>10.0f}")
    return "\n".join(lines)


def draw_chart(rows, peak, path):
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    batch_sizes = sorted({r["batch_size"] for r in rows})
    fig, axes = plt.subplots(1, len(batch_sizes), figsize=(5 * len(batch_sizes), 3.5),
                             squeeze=False)
    for ax, batch_size in zip(axes[0], batch_sizes):
        subset = [r for r in rows if r["batch_size"] == batch_size]
        labels = [f"{r['framework']}\n{r['variant']}" for r in subset]
        ax.bar(labels, [r["gflops_at_2.7"] for r in subset],
               color=["#bbbbbb" if r["variant"] == "plain" else "#3b75af" for r in subset])
        ax.axhline(peak, color="k", linestyle="--", label=f"fp32 matmul peak {peak:.0f}")
        ax.axhline(0.85 * peak, color="r", linestyle=":", label="85% of peak")
        ax.set_title(f"batch {batch_size}")
        ax.set_ylabel("effective GFLOP/s (2.7 GFLOP/example)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frameworks", nargs="+", default=list(FRAMEWORKS))
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--variants", nargs="+", default=["plain", "chapter"],
                        choices=["plain", "chapter", "compiled"],
                        help="'compiled' adds the torch.compile / XLA trial (see tools.bench_step)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "build" / "bench")
    args = parser.parse_args(argv)
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    peak_runs = [matmul_rates()]
    records = []
    for framework in args.frameworks:
        # The plain step is the baseline of every ratio: always measured.
        for variant in ["plain"] + [v for v in args.variants if v != "plain"]:
            records += run_framework(framework, variant, args.batch_sizes, args.warmup,
                                     args.repeats, args.steps, pipeline=variant == "chapter")
    peak_runs.append(matmul_rates())
    peak = matmul_peak(peak_runs)
    rows = step_rows(records, peak)
    pipelines = [r for r in records if r["kind"] == "pipeline"]
    breakdowns = [r for r in records if r["kind"] == "breakdown"]
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"started": started, "cores": os.cpu_count(), "matmul_gflops_runs": peak_runs,
              "matmul_peak_gflops": peak, "gflop_per_example": GFLOP_PER_EXAMPLE,
              "steps": rows, "pipelines": pipelines, "breakdowns": breakdowns}
    (args.out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    draw_chart(rows, peak, args.out / "bench.png")
    print(format_table(rows, pipelines, breakdowns, peak, peak_runs))
    print(f"\nwrote {args.out / 'results.json'} and {args.out / 'bench.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
