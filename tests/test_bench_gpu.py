"""benchmarks/bench_gpu.py, the GPU check, runs end to end on the CPU with a tiny model.

Nothing here asserts on speed: the script must run, take the XLA attention path by itself on a
CPU, train (the loss falls), and write its JSON and headline in the documented form.
"""

from __future__ import annotations

import json
import pathlib
import re
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_gpu  # noqa: E402
import summary  # noqa: E402


def test_the_tiny_preset_runs_on_the_cpu_with_the_xla_path(tmp_path, capsys):
    path = tmp_path / "gpu.json"
    assert bench_gpu.main(["--preset", "tiny", "--quick", "--matmul-n", "256",
                           "--json", str(path)]) == 0
    data = json.loads(path.read_text())
    assert data["settings"]["implementation"] == "xla"
    fused, plain = data["results"]
    assert (fused["attention"], plain["attention"]) == ("fused", "attnlab")
    for r in data["results"]:
        assert r["last_loss"] < r["first_loss"]  # the same batch again and again: it must fall
        assert r["min_tok_s"] <= r["tok_s"] <= r["max_tok_s"]
        assert 0 < r["mfu_vs_measured_matmul"]
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == data["headline"]
    table = "\n".join(summary.section(data))
    assert "| attention=fused |" in table and "| attention=attnlab |" in table
    assert re.fullmatch(r"gpu: tiny bfloat16 training \d+ tok/s, MFU \d+% of the measured matmul "
                        r"rate \(xla attention; \d+\.\d\dx attnlab's step-by-step attention\)", last)


@pytest.mark.parametrize("kind, peak", [
    ("NVIDIA H200", 989.4), ("NVIDIA H100 80GB HBM3", 989.4), ("NVIDIA A100-SXM4-80GB", 312.0),
    ("Tesla T4", 65.0), ("NVIDIA A10", 125.0), ("NVIDIA A10G", None), ("cpu", None),
])
def test_vendor_peaks_match_whole_model_names(kind, peak):
    assert bench_gpu.vendor_peak(kind) == peak


def test_a_bad_batch_size_is_refused(tmp_path):
    with pytest.raises(SystemExit):
        bench_gpu.main(["--preset", "tiny", "--batch-size", "0", "--json", str(tmp_path / "x")])
    assert not (tmp_path / "x").exists()
