"""The command line: `python -m attnlab train` and `generate`, end to end on the tiny preset."""

import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import safetensors.numpy

from attnlab import checkpoint
from attnlab.cli import SEED_RANGE, STATE_FILE, main
from attnlab.presets import PRESETS

LAST_LINE = r"validation loss (\d+\.\d{3}) nats/char after (\d+) steps in (\S+)"


def run_cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "attnlab", *args],
        capture_output=True, text=True, cwd=cwd, timeout=300,
    )


# Runs main() and then says whether JAX was ever imported.
PROBE = textwrap.dedent("""
    import sys
    from attnlab.cli import main
    code = main(sys.argv[1:])
    print("jax imported" if "jax" in sys.modules else "jax not imported")
    sys.exit(code)
""")


def run_probe(*args, cwd=None):
    return subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def assert_one_error_line(result, *fragments):
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def test_help_explains_both_commands():
    result = run_cli("--help")
    assert result.returncode == 0
    assert "train" in result.stdout and "generate" in result.stdout
    assert ".venv/bin/python -m attnlab train --resume" in result.stdout
    train_help = run_cli("train", "--help").stdout
    for option in ("--preset", "--steps", "--seed", "--out", "--resume"):
        assert option in train_help
    assert "where training stops" in train_help and "schedule" in train_help
    generate_help = run_cli("generate", "--help").stdout
    for option in ("--checkpoint", "--prompt", "--max-new-tokens", "--temperature", "--top-k",
                   "--top-p", "--seed"):
        assert option in generate_help


# --- a run, and the same run stopped and resumed ------------------------------------------


@pytest.fixture(scope="module")
def run_a(tmp_path_factory):
    """`train --preset tiny --steps 30 --out A`, straight through."""
    out = tmp_path_factory.mktemp("A")
    result = run_cli("train", "--preset", "tiny", "--steps", "30", "--out", str(out),
                     "--no-progress")
    assert result.returncode == 0, result.stderr
    return out, result


@pytest.fixture(scope="module")
def run_b(tmp_path_factory):
    """`train --preset tiny --steps 12 --out B`, then `train --resume B --steps 30`."""
    out = tmp_path_factory.mktemp("B")
    first = run_cli("train", "--preset", "tiny", "--steps", "12", "--out", str(out),
                    "--no-progress")
    assert first.returncode == 0, first.stderr
    resumed = run_cli("train", "--resume", str(out), "--steps", "30", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    return out, first, resumed


def last_line(result):
    line = result.stdout.strip().splitlines()[-1]
    match = re.fullmatch(LAST_LINE, line)
    assert match, line
    return match


def test_a_stopped_and_resumed_run_prints_the_same_validation_loss(run_a, run_b):
    (a, result_a), (b, first, resumed) = run_a, run_b
    assert last_line(first).group(2) == "12"
    straight, continued = last_line(result_a), last_line(resumed)
    assert straight.group(2) == continued.group(2) == "30"
    assert straight.group(1) == continued.group(1)
    model_a = checkpoint.load(a / "model.safetensors")
    model_b = checkpoint.load(b / "model.safetensors")
    assert model_a.metadata["val_loss"] == pytest.approx(model_b.metadata["val_loss"], abs=1e-6)
    weights_a = safetensors.numpy.load_file(a / "model.safetensors")
    weights_b = safetensors.numpy.load_file(b / "model.safetensors")
    assert weights_a.keys() == weights_b.keys()
    for name in weights_a:
        np.testing.assert_array_equal(weights_b[name], weights_a[name], err_msg=name)


def test_the_resumed_history_is_the_uninterrupted_one(run_a, run_b):
    (a, _), (b, _, resumed) = run_a, run_b
    history_a = json.loads((a / "history.json").read_text())
    history_b = json.loads((b / "history.json").read_text())
    assert history_b["train_loss"] == history_a["train_loss"]
    assert history_b["learning_rate"] == history_a["learning_rate"]
    assert history_a["val_steps"] == [0, 15, 30] and history_b["val_steps"] == [0, 12, 15, 30]
    assert "resuming the run in" in resumed.stdout and "steps 13-30" in resumed.stdout


def test_train_writes_checkpoint_state_curve_and_history(run_a):
    out, _ = run_a
    assert (out / "model.safetensors").is_file()
    assert checkpoint.load_train_state(out / STATE_FILE).step == 30
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    history = json.loads((out / "history.json").read_text())
    assert len(history["train_loss"]) == PRESETS["tiny"].train["steps"]


def test_train_last_line_states_the_result(run_a):
    out, result = run_a
    match = last_line(result)
    saved = checkpoint.load(out / "model.safetensors")
    # The printed loss is the one stored in the checkpoint.
    assert abs(float(match.group(1)) - saved.metadata["val_loss"]) <= 5e-4
    assert saved.metadata["command"].startswith("python -m attnlab train --preset tiny")


def test_resuming_a_finished_run_asks_for_more_steps(run_a):
    out, _ = run_a
    assert_one_error_line(run_cli("train", "--resume", str(out), "--steps", "30"),
                          "already done 30 steps", "--steps larger than 30")


# --- generate -----------------------------------------------------------------------------


def test_generate_continues_the_prompt_and_is_reproducible(run_a):
    out, _ = run_a
    args = ("generate", "--checkpoint", str(out / "model.safetensors"), "--prompt", "def ",
            "--max-new-tokens", "20", "--seed", "3")
    first, second = run_cli(*args), run_cli(*args)
    assert first.returncode == 0, first.stderr
    text = first.stdout[:-1]  # print() adds one newline
    assert text.startswith("def ") and len(text) == 4 + 20
    assert first.stdout == second.stdout


def test_a_prompt_longer_than_the_context_is_said_once_and_echoed_whole(run_a):
    out, _ = run_a
    context = PRESETS["tiny"].model["context_length"]
    prompt = "x" * context + "The end"
    result = run_cli("generate", "--checkpoint", str(out), "--prompt", prompt,
                     "--max-new-tokens", "5")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(prompt) and len(result.stdout) == len(prompt) + 5 + 1
    note = result.stderr.strip().splitlines()
    assert len(note) == 1 and f"at most {context}" in note[0], result.stderr
    assert "Warning" not in result.stderr


def test_the_tokenizer_names_characters_the_model_never_saw():
    assert_one_error_line(run_cli("generate", "--prompt", "café"), "'é'")


def test_a_train_state_is_not_a_model_for_generate(run_a):
    out, _ = run_a
    assert_one_error_line(run_cli("generate", "--checkpoint", str(out / STATE_FILE)),
                          "load_train_state")


# --- bad arguments: answered before JAX is imported ---------------------------------------


@pytest.fixture
def a_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("a learner's notes")
    return path


BAD_ARGUMENTS = [
    (["train", "--learning-rate", "-1"], "--learning-rate must be > 0; got -1"),
    (["train", "--learning-rate", "nan"], "--learning-rate must be a finite number"),
    (["train", "--seed", "99999999999999999999"], f"[{SEED_RANGE[0]}, {SEED_RANGE[1]}]"),
    (["train", "--seed", "1.5"], "--seed must be an integer"),
    (["train", "--steps", "0"], "--steps must be >= 1; got 0"),
    (["train", "--batch-size", "-2"], "--batch-size must be >= 1"),
    (["train", "--preset", "huge"], "--preset"),
    (["train", "--resume", "no-such-run"], "--resume no-such-run does not exist"),
    (["train", "--resume", ".", "--learning-rate", "1e-3"], "drop --learning-rate"),
    (["train", "--resume", "."], f"holds no {STATE_FILE}"),
    (["generate", "--seed", "99999999999999999999"], "what jax.random.key accepts"),
    (["generate", "--top-p", "1.5"], "--top-p must be in (0, 1]; got 1.5"),
    (["generate", "--top-k", "-3"], "--top-k must be >= 0"),
    (["generate", "--temperature", "-1"], "--temperature must be >= 0"),
    (["generate", "--max-new-tokens", "-1"], "--max-new-tokens must be >= 0"),
    (["generate", "--prompt", ""], "--prompt is empty"),
    (["generate", "--checkpoint", "nope.safetensors"], "nope.safetensors does not exist"),
]


@pytest.mark.parametrize(("args", "message"), BAD_ARGUMENTS, ids=lambda v: " ".join(v)
                         if isinstance(v, list) else "")
def test_a_bad_argument_is_one_error_line_before_jax_is_imported(tmp_path, args, message):
    result = run_probe(*args, cwd=tmp_path)
    assert_one_error_line(result, message)
    assert result.stdout.strip() == "jax not imported"


def test_an_existing_file_as_out_is_refused_before_training(a_file):
    result = run_probe("train", "--preset", "tiny", "--out", str(a_file))
    assert_one_error_line(result, str(a_file), "is a file")
    assert result.stdout.strip() == "jax not imported"  # so no training started
    assert a_file.read_text() == "a learner's notes"


def test_an_out_folder_that_cannot_be_created_is_refused_before_training(a_file):
    result = run_probe("train", "--preset", "tiny", "--out", str(a_file / "run"))
    assert_one_error_line(result, "cannot be created")
    assert result.stdout.strip() == "jax not imported"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="POSIX permissions, which root ignores")
def test_a_read_only_out_folder_is_refused_before_training(tmp_path):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        result = run_probe("train", "--preset", "tiny", "--out", str(folder))
    finally:
        folder.chmod(0o700)
    assert_one_error_line(result, "not writable")
    assert result.stdout.strip() == "jax not imported"


def test_the_seed_range_is_what_jax_accepts():
    import jax

    low, high = SEED_RANGE
    jax.random.key(low), jax.random.key(high)
    for outside in (low - 1, high + 1):
        with pytest.raises(OverflowError):
            jax.random.key(outside)


# --- a failed save never loses the trained model ------------------------------------------


def test_when_saving_fails_the_model_is_written_elsewhere(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    real_save = checkpoint.save

    def disk_full_in_out(path, *args, **kwargs):
        if out in path.parents:
            raise OSError(28, "No space left on device (simulated)")
        return real_save(path, *args, **kwargs)

    monkeypatch.setattr(checkpoint, "save", disk_full_in_out)
    code = main(["train", "--preset", "tiny", "--steps", "3", "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    line = assert_one_error_line(subprocess.CompletedProcess([], 2, "", err), "simulated")
    rescue = re.search(r"are in (\S+)/ instead", line).group(1)
    loaded = checkpoint.load(f"{rescue}/model.safetensors")
    assert loaded.metadata["steps"] == 3
    assert json.loads(open(f"{rescue}/history.json").read())["steps"] == [1, 2, 3]
    assert checkpoint.load_train_state(f"{rescue}/{STATE_FILE}").step == 3
