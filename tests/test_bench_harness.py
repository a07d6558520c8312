"""The benchmark harness: separate processes, alternating windows, JSON, the headline's form.

Two trivial configurations that sleep; nothing here asserts on how fast anything is.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import sys
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "benchmarks"))
import harness  # noqa: E402

HEADLINE = re.compile(r"^demo: \d+\.\d\dx slow \(fast \d+ op/s vs \d+ op/s\)$")


def setup_sleeper(log: str, seconds: float, fail: bool = False):
    """A configuration whose step sleeps; every run(n) call is logged as 'pid n'."""
    if fail:
        raise ValueError("this configuration cannot be built")

    def run(n: int) -> None:
        time.sleep(seconds * n)
        with open(log, "a") as f:
            f.write(f"{os.getpid()} {n}\n")

    return run, {"pid": os.getpid(), "seconds": seconds}


def configs(tmp_path, fail_reference: bool = False):
    return [
        harness.Config("fast", setup_sleeper, {"log": str(tmp_path / "log"), "seconds": 0.001}),
        harness.Config("slow", setup_sleeper,
                       {"log": str(tmp_path / "log"), "seconds": 0.002, "fail": fail_reference}),
    ]


def test_windows_alternate_between_separate_processes(tmp_path):
    results, notes = harness.measure(configs(tmp_path), warmup=2, windows=3, steps=3)
    assert [r["name"] for r in results] == ["fast", "slow"] and notes == []
    pids = [r["info"]["pid"] for r in results]
    assert os.getpid() not in pids and pids[0] != pids[1]
    timed = [int(pid) for pid, n in (line.split() for line in open(tmp_path / "log")) if n == "3"]
    fast, slow = pids
    assert timed == [fast, slow, slow, fast, fast, slow]  # A B, then B A (rotated), then A B
    for r in results:
        assert len(r["window_step_s"]) == 3
        assert r["min_step_s"] <= r["median_step_s"] <= r["max_step_s"]
        assert r["peak_rss_mib"] > 0 and r["first_step_s"] > 0


def test_report_writes_json_and_ends_with_the_headline(tmp_path, capsys):
    results, notes = harness.measure(configs(tmp_path), warmup=0, windows=2, steps=2)
    machine = harness.machine_info(["pytest", "no-such-package"])
    path = tmp_path / "out" / "demo.json"
    headline = harness.report("demo", "demo", results, per_step=1, unit="op", machine=machine,
                              settings={"windows": 2}, notes=notes, json_path=path)
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == headline and HEADLINE.match(last), last
    data = json.loads(path.read_text())
    assert data["headline"] == headline
    assert data["machine"]["versions"] == {"pytest": pytest.__version__, "no-such-package": None}
    fast, slow = data["results"]
    assert data["ratio"] == pytest.approx(fast["rate"] / slow["rate"])
    assert fast["rate"] == pytest.approx(1 / fast["median_step_s"])


def test_a_failing_reference_is_left_out_with_a_note(tmp_path, capsys):
    results, notes = harness.measure(configs(tmp_path, fail_reference=True),
                                     warmup=0, windows=2, steps=1)
    assert [r["name"] for r in results] == ["fast"]
    assert notes == ["slow: left out (ValueError: this configuration cannot be built)"]
    harness.report("demo", "demo", results, per_step=1, unit="op", machine=harness.machine_info([]),
                   settings={}, notes=notes, json_path=tmp_path / "demo.json",
                   no_reference="no reference: none installed")
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert re.fullmatch(r"demo: fast \d+ op/s \(no reference: none installed\)", last), last


def test_a_failing_subject_raises(tmp_path):
    failing = harness.Config("broken", setup_sleeper,
                             {"log": str(tmp_path / "log"), "seconds": 0.0, "fail": True})
    with pytest.raises(RuntimeError, match="broken failed: ValueError"):
        harness.measure([failing], warmup=0, windows=1, steps=1)


def setup_toucher(pages: int):
    """A configuration whose step writes ``pages`` fresh 4 KiB pages of a new mapping."""
    import mmap

    def run(n: int) -> None:
        for _ in range(n if pages else 0):
            with mmap.mmap(-1, pages * 4096) as m:  # anonymous memory, unmapped again at the end
                for i in range(pages):
                    m[i * 4096] = 1  # the first write to a page faults it in

    return run, {}


@pytest.mark.skipif(sys.platform != "linux", reason="counts Linux minor page faults")
def test_page_faults_per_step_are_counted():
    results, _ = harness.measure([harness.Config("touch", setup_toucher, {"pages": 500}),
                                  harness.Config("idle", setup_toucher, {"pages": 0})],
                                 warmup=1, windows=2, steps=3)
    touch, idle = results
    assert len(touch["window_minor_faults_per_step"]) == 2
    assert 500 <= touch["minor_faults_per_step"] < 700  # its 500 pages, and a little besides
    assert idle["minor_faults_per_step"] < 50
