"""The command line: `python -m attnlab train` and `generate`, end to end on the tiny preset."""

import json
import re
import subprocess
import sys

import pytest

from attnlab import checkpoint
from attnlab.cli import build_parser, main
from attnlab.presets import PRESETS


def run_cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "attnlab", *args],
        capture_output=True, text=True, cwd=cwd, timeout=300,
    )


def test_help_explains_both_commands():
    result = run_cli("--help")
    assert result.returncode == 0
    assert "train" in result.stdout and "generate" in result.stdout
    train_help = run_cli("train", "--help").stdout
    for option in ("--preset", "--steps", "--seed", "--out"):
        assert option in train_help
    generate_help = run_cli("generate", "--help").stdout
    for option in ("--checkpoint", "--prompt", "--max-new-tokens", "--temperature", "--top-k",
                   "--top-p", "--seed"):
        assert option in generate_help


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    result = run_cli("train", "--preset", "tiny", "--out", str(out), "--no-progress")
    return out, result


def test_train_writes_checkpoint_curve_and_history(tiny_run):
    out, result = tiny_run
    assert result.returncode == 0, result.stderr
    assert (out / "model.safetensors").is_file()
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    history = json.loads((out / "history.json").read_text())
    assert len(history["train_loss"]) == PRESETS["tiny"].train["steps"]


def test_train_last_line_states_the_result(tiny_run):
    out, result = tiny_run
    last = result.stdout.strip().splitlines()[-1]
    match = re.fullmatch(r"validation loss (\d+\.\d{3}) nats/char after (\d+) steps in (\S+)", last)
    assert match, last
    assert int(match.group(2)) == PRESETS["tiny"].train["steps"]
    saved = checkpoint.load(out / "model.safetensors")
    # The printed loss is the one stored in the checkpoint (rounded differently).
    assert abs(float(match.group(1)) - saved.metadata["val_loss"]) < 1e-3
    assert saved.metadata["command"].startswith("python -m attnlab train --preset tiny")


def test_generate_continues_the_prompt_and_is_reproducible(tiny_run):
    out, _ = tiny_run
    args = ("generate", "--checkpoint", str(out / "model.safetensors"), "--prompt", "def ",
            "--max-new-tokens", "20", "--seed", "3")
    first, second = run_cli(*args), run_cli(*args)
    assert first.returncode == 0, first.stderr
    text = first.stdout[:-1]  # print() adds one newline
    assert text.startswith("def ") and len(text) == 4 + 20
    assert first.stdout == second.stdout


def test_generate_reports_bad_arguments_plainly(tiny_run, capsys):
    out, _ = tiny_run
    code = main(["generate", "--checkpoint", str(out / "model.safetensors"), "--top-p", "1.5"])
    assert code == 2
    assert "--top-p must be in (0, 1]" in capsys.readouterr().err


def test_unknown_preset_is_rejected():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--preset", "huge"])


def test_generate_names_characters_the_model_never_saw(capsys):
    assert main(["generate", "--prompt", "café"]) == 2
    assert "'é'" in capsys.readouterr().err


def test_generate_reports_a_missing_checkpoint(tmp_path, capsys):
    missing = tmp_path / "nope.safetensors"
    assert main(["generate", "--checkpoint", str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err


def test_generate_errors_name_the_flags_not_python_arguments(capsys):
    assert main(["generate", "--top-k", "-3"]) == 2
    err = capsys.readouterr().err
    assert "--top-k" in err and "top_k" not in err
    assert main(["generate", "--prompt", ""]) == 2
    assert "--prompt is empty" in capsys.readouterr().err


def test_train_rejects_a_bad_learning_rate_without_a_traceback(capsys):
    assert main(["train", "--preset", "tiny", "--learning-rate", "-1"]) == 2
    assert "learning_rate must be > 0" in capsys.readouterr().err
