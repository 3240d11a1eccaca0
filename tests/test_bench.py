"""tools.bench's table: ratios to the same-run baseline and fractions of the peak."""
import pytest

from tools.bench import GFLOP_PER_EXAMPLE, format_table, matmul_peak, step_rows
from tools.bench_step import OPERATOR_KINDS, breakdown_result, operator_kind


def step(framework, variant, batch_size, rate):
    return {"framework": framework, "kind": "step", "variant": variant,
            "batch_size": batch_size, "examples_per_s": rate, "runs": [rate]}


def test_rows_relate_every_variant_to_the_plain_step_of_the_same_framework_and_batch():
    records = [step("pytorch", "plain", 64, 20.0), step("pytorch", "chapter", 64, 50.0),
               step("pytorch", "compiled", 64, 40.0), step("mxnet", "plain", 64, 10.0),
               step("mxnet", "chapter", 64, 30.0),
               {"framework": "mxnet", "kind": "pipeline"}]
    rows = {(r["framework"], r["variant"]): r for r in step_rows(records, peak=135.0)}
    assert len(rows) == 5
    assert rows[("pytorch", "chapter")]["ratio_to_plain"] == pytest.approx(2.5)
    assert rows[("pytorch", "compiled")]["ratio_to_plain"] == pytest.approx(2.0)
    assert rows[("mxnet", "chapter")]["ratio_to_plain"] == pytest.approx(3.0)
    chapter = rows[("pytorch", "chapter")]
    assert chapter["gflops_at_2.7"] == pytest.approx(GFLOP_PER_EXAMPLE["section"] * 50)
    assert chapter["fraction_of_peak_at_2.7"] == pytest.approx(2.7 * 50 / 135)
    assert chapter["fraction_of_peak_at_2.3"] == pytest.approx(2.3 * 50 / 135)


def test_the_table_prints_one_line_per_step_and_pipeline():
    rows = step_rows([step("tensorflow", "plain", 256, 10.0),
                      step("tensorflow", "chapter", 256, 27.0)], peak=100.0)
    pipeline = {"framework": "tensorflow", "decode_png_images_per_s": 3000.0,
                "load_cached_images_per_s": 40000.0, "epoch_images_per_s": 120000.0}
    table = format_table(rows, [pipeline], [], peak=100.0).splitlines()
    assert table[0].endswith("100.0 GFLOP/s")
    chapter = next(line for line in table if " chapter " in line)
    assert chapter.split()[:5] == ["tensorflow", "chapter", "256", "27.0", "2.70"]
    assert "73%" in chapter  # 2.7 GFLOP x 27 ex/s = 72.9 GFLOP/s of a 100 peak
    assert any(line.startswith("tensorflow") and "120000" in line for line in table)


@pytest.mark.parametrize("name, kind", [
    ("aten::convolution_backward", "convolution"), ("aten::mkldnn_convolution", "convolution"),
    ("aten::conv_transpose2d", "convolution"), ("aten::native_batch_norm_backward", "batch norm"),
    ("aten::leaky_relu_backward", "activation"), ("aten::threshold_backward", "activation"),
    ("aten::tanh", "activation"), ("aten::addcdiv_", "other"), ("aten::copy_", "other")])
def test_operators_are_sorted_by_kind(name, kind):
    assert operator_kind(name) == kind


def test_the_breakdown_gives_shares_and_the_convolutions_rate():
    class Bench:
        def breakdown(self, batch_size, steps):
            return {"convolution": 0.5, "batch norm": 0.25, "activation": 0.15, "other": 0.1}
    result = breakdown_result(Bench(), "pytorch", 64, 3, gflop_per_step=150.0)
    assert set(result["shares"]) == set(OPERATOR_KINDS)
    assert result["seconds_per_step"] == pytest.approx(1.0)
    assert result["shares"]["batch norm"] == pytest.approx(0.25)
    assert result["convolution_gflops"] == pytest.approx(300.0)
    table = format_table([], [], [result], peak=400.0)
    assert "convolution 50%, batch norm 25%, activation 15%, other 10% of 1.00 s" in table
    assert "300 GFLOP/s (75% of the matmul peak)" in table


def test_the_peak_is_the_faster_library_in_each_run_then_the_median_over_runs():
    # MKL runs its AVX2 code on an AMD CPU with AVX-512, where oneDNN is twice as fast
    runs = [{"blas": 217.0, "onednn": 470.0}, {"blas": 215.0, "onednn": 480.0},
            {"blas": 300.0, "onednn": 290.0}]
    assert matmul_peak(runs) == pytest.approx(470.0)
    assert matmul_peak([{"blas": 190.0}]) == pytest.approx(190.0)  # a PyTorch without oneDNN
    table = format_table([], [], [], matmul_peak(runs[:2]), runs[:2]).splitlines()
    assert table[0].endswith("475.0 GFLOP/s")
    assert table[1:3] == ["  blas: 217.0, 215.0", "  onednn: 470.0, 480.0"]
