"""Checkpoints: a saved GPT comes back bit for bit, saves are atomic, bad files say what is wrong."""

from __future__ import annotations

import dataclasses
import json
import os
from re import escape as re_escape

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import safetensors
import safetensors.numpy
from flax import nnx

from attnlab import checkpoint
from attnlab.data import CharTokenizer
from attnlab.gpt import GPT, GPTConfig

CONFIG = GPTConfig(vocab_size=11, context_length=8, n_layers=2, n_heads=2, d_model=16, d_ff=32)
TOKENIZER = CharTokenizer("\nabcdefghij")  # 11 characters, one per id


def make_model(seed: int = 1, config: GPTConfig = CONFIG) -> GPT:
    return GPT(config, rngs=nnx.Rngs(seed))


def params_by_name(model: GPT) -> dict[str, np.ndarray]:
    """Independent of the code under test: walk the module tree by attribute."""
    out = {}
    for path, variable in nnx.iter_graph(model):
        if isinstance(variable, nnx.Param):
            out[".".join(map(str, path))] = np.asarray(variable[...])
    return out


@pytest.fixture(scope="module")
def model() -> GPT:
    return make_model()


@pytest.fixture
def saved(tmp_path, model):
    return checkpoint.save(tmp_path / "mini.safetensors", model, TOKENIZER, metadata={"x": 1})


def raw_file(tmp_path) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    """Header metadata and tensors of a freshly saved checkpoint, to tamper with."""
    path = checkpoint.save(tmp_path / "source.safetensors", make_model())
    with safetensors.safe_open(str(path), framework="np") as f:
        return f.metadata(), {name: f.get_tensor(name) for name in f.keys()}


def write(tmp_path, tensors, metadata, name="tampered.safetensors"):
    path = tmp_path / name
    path.write_bytes(safetensors.numpy.save(tensors, metadata=metadata))
    return path


# --- round trip ---------------------------------------------------------------------------


def test_round_trip_is_bit_exact(tmp_path, model):
    meta = {"val_loss": 1.25, "steps": 300, "command": "python -m attnlab train --steps 300"}
    path = checkpoint.save(tmp_path / "mini.safetensors", model, TOKENIZER, metadata=meta)
    assert path == tmp_path / "mini.safetensors" and path.is_file()

    loaded = checkpoint.load(path)

    assert loaded.config == CONFIG and loaded.model.config == CONFIG
    original, restored = params_by_name(model), params_by_name(loaded.model)
    assert original.keys() == restored.keys() and len(original) == 4 + 2 * 16
    for name in original:
        assert restored[name].dtype == original[name].dtype == np.float32, name
        assert np.array_equal(restored[name], original[name]), name
    assert loaded.tokenizer.vocab == TOKENIZER.vocab
    assert loaded.metadata == meta


def test_loaded_model_gives_identical_logits(saved, model):
    tokens = jax.random.randint(jax.random.key(0), (3, CONFIG.context_length), 0, CONFIG.vocab_size)
    loaded = checkpoint.load(saved)
    assert np.array_equal(np.asarray(loaded.model(tokens)), np.asarray(model(tokens)))


def test_loaded_model_differs_from_a_fresh_one(saved):
    """Guards against load silently keeping its own random initialisation."""
    fresh = params_by_name(GPT(CONFIG, rngs=nnx.Rngs(0)))
    loaded = params_by_name(checkpoint.load(saved).model)
    assert not np.array_equal(
        fresh["blocks.0.attention.W_q.kernel"], loaded["blocks.0.attention.W_q.kernel"]
    )


def test_file_is_plain_safetensors_with_readable_names(saved, model):
    with safetensors.safe_open(str(saved), framework="np") as f:
        header, names = f.metadata(), set(f.keys())
        kernel = f.get_tensor("blocks.1.attention.W_q.kernel")
    assert header["format"] == "attnlab-gpt/1"
    assert json.loads(header["config"]) == dataclasses.asdict(CONFIG)
    assert json.loads(header["tokenizer"]) == {"type": "char", "vocab": TOKENIZER.vocab}
    assert json.loads(header["x"]) == 1
    assert names == set(params_by_name(model))
    assert {
        "token_embedding.embedding",
        "position_embedding.embedding",
        "ln_f.scale",
        "blocks.0.mlp.fc_in.kernel",
    } <= names
    assert kernel.shape == (16, 16)
    assert np.array_equal(kernel, np.asarray(model.blocks[1].attention.W_q.kernel[...]))


def test_save_without_tokenizer_or_metadata(tmp_path, model):
    loaded = checkpoint.load(checkpoint.save(str(tmp_path / "a" / "b" / "m.st"), model))
    assert loaded.tokenizer is None and loaded.metadata == {}


def test_metadata_accepts_jax_and_numpy_scalars(tmp_path, model):
    meta = {"val_loss": jnp.float32(0.5), "lr": np.float64(3e-4), "curve": np.arange(3)}
    loaded = checkpoint.load(checkpoint.save(tmp_path / "m.st", model, metadata=meta))
    assert loaded.metadata == {"val_loss": 0.5, "lr": 3e-4, "curve": [0, 1, 2]}


def test_load_into_an_existing_model(saved, model):
    target = make_model(seed=7)
    result = checkpoint.load_into(target, saved)
    assert result.model is target and result.tokenizer.vocab == TOKENIZER.vocab
    for name, value in params_by_name(model).items():
        assert np.array_equal(params_by_name(target)[name], value), name


def test_saving_over_an_existing_file_replaces_it(tmp_path):
    path = checkpoint.save(tmp_path / "m.st", make_model(1), metadata={"steps": 1})
    checkpoint.save(path, make_model(2), metadata={"steps": 2})
    assert checkpoint.load(path).metadata == {"steps": 2}
    assert os.listdir(tmp_path) == ["m.st"]


# --- atomic writes ------------------------------------------------------------------------


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_failed_save_leaves_the_old_file_and_no_temp_files(tmp_path, monkeypatch, failing):
    path = checkpoint.save(tmp_path / "m.st", make_model(1), metadata={"steps": 1})
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(checkpoint.os, failing, boom)
    with pytest.raises(OSError, match="simulated"):
        checkpoint.save(path, make_model(2), metadata={"steps": 2})
    monkeypatch.undo()

    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.st"]


def test_interrupted_save_of_a_new_file_leaves_nothing(tmp_path, monkeypatch, model):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint.os, "replace", interrupt)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(tmp_path / "m.st", model)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_saved_file_is_readable_by_others_like_any_written_file(tmp_path, model):
    """mkstemp makes owner-only files; a checkpoint to share must not stay that way."""
    path = checkpoint.save(tmp_path / "m.st", model)
    assert path.stat().st_mode & 0o777 == 0o644
    path.chmod(0o600)  # a mode the user chose on purpose is kept on overwrite
    checkpoint.save(path, model)
    assert path.stat().st_mode & 0o777 == 0o600


# --- bad input to save --------------------------------------------------------------------


def test_save_rejects_reserved_and_unserializable_metadata(tmp_path, model):
    with pytest.raises(ValueError, match="'config'"):
        checkpoint.save(tmp_path / "m.st", model, metadata={"config": "mine"})
    with pytest.raises(TypeError, match=r"metadata\['f'\]"):
        checkpoint.save(tmp_path / "m.st", model, metadata={"f": object()})
    with pytest.raises(ValueError, match="vocab_size is 11"):
        checkpoint.save(tmp_path / "m.st", model, CharTokenizer("abcdefghijkl"))
    with pytest.raises(TypeError, match="GPT"):
        checkpoint.save(tmp_path / "m.st", nnx.Linear(2, 2, rngs=nnx.Rngs(0)))
    assert os.listdir(tmp_path) == []


# --- files that do not match --------------------------------------------------------------


def test_missing_file(tmp_path):
    missing = tmp_path / "nope.safetensors"
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        checkpoint.load(missing)


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(IsADirectoryError):
        checkpoint.load(tmp_path)


def test_random_bytes_are_not_a_checkpoint(tmp_path):
    path = tmp_path / "noise.safetensors"
    path.write_bytes(np.random.default_rng(0).bytes(256))
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        checkpoint.load(path)


def test_safetensors_without_attnlab_metadata(tmp_path):
    _, tensors = raw_file(tmp_path)
    for metadata in (None, {"framework": "pt"}):
        path = write(tmp_path, tensors, metadata)
        with pytest.raises(ValueError, match="not an attnlab checkpoint"):
            checkpoint.load(path)


def test_unknown_format_version(tmp_path):
    header, tensors = raw_file(tmp_path)
    path = write(tmp_path, tensors, {**header, "format": "attnlab-gpt/99"})
    with pytest.raises(ValueError, match="attnlab-gpt/99"):
        checkpoint.load(path)


def test_missing_tensor_is_named(tmp_path):
    header, tensors = raw_file(tmp_path)
    del tensors["blocks.1.mlp.fc_out.bias"]
    with pytest.raises(ValueError, match=r"missing 1 tensor.*blocks\.1\.mlp\.fc_out\.bias"):
        checkpoint.load(write(tmp_path, tensors, header))


def test_unexpected_tensor_is_named(tmp_path):
    header, tensors = raw_file(tmp_path)
    tensors["lm_head.kernel"] = np.zeros((16, 11), np.float32)
    with pytest.raises(ValueError, match=r"1 unexpected tensor.*lm_head\.kernel"):
        checkpoint.load(write(tmp_path, tensors, header))


def test_wrong_shape_names_tensor_and_both_shapes(tmp_path):
    header, tensors = raw_file(tmp_path)
    tensors["ln_f.scale"] = np.ones((17,), np.float32)
    with pytest.raises(ValueError, match=r"'ln_f\.scale' has shape \(17,\).*expects \(16,\)"):
        checkpoint.load(write(tmp_path, tensors, header))


def test_wrong_dtype_is_named(tmp_path):
    header, tensors = raw_file(tmp_path)
    tensors["ln_f.bias"] = tensors["ln_f.bias"].astype(np.float16)
    with pytest.raises(ValueError, match=r"'ln_f\.bias' has dtype float16"):
        checkpoint.load(write(tmp_path, tensors, header))


def test_config_that_disagrees_with_the_tensors(tmp_path):
    header, tensors = raw_file(tmp_path)
    wider = dataclasses.asdict(dataclasses.replace(CONFIG, d_model=32, d_ff=64))
    with pytest.raises(
        ValueError, match=r"has shape \(16,\) in the file; the model expects \(32,\)"
    ):
        checkpoint.load(write(tmp_path, tensors, {**header, "config": json.dumps(wider)}))
    deeper = dataclasses.asdict(dataclasses.replace(CONFIG, n_layers=3))
    with pytest.raises(ValueError, match=r"missing 16 tensor.*blocks\.2\."):
        checkpoint.load(write(tmp_path, tensors, {**header, "config": json.dumps(deeper)}))


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({**dataclasses.asdict(CONFIG), "n_experts": 4}, r"unknown fields \['n_experts'\]"),
        ({**dataclasses.asdict(CONFIG), "n_heads": 3}, "n_heads must divide d_model"),
        ([1, 2], "must be a JSON object"),
    ],
)
def test_unknown_or_invalid_config(tmp_path, config, message):
    header, tensors = raw_file(tmp_path)
    path = write(tmp_path, tensors, {**header, "config": json.dumps(config)})
    with pytest.raises(ValueError, match=message):
        checkpoint.load(path)


def test_load_into_rejects_a_different_config(saved):
    other = make_model(config=dataclasses.replace(CONFIG, n_layers=1))
    before = params_by_name(other)
    with pytest.raises(ValueError, match="n_layers: file 2 vs model 1"):
        checkpoint.load_into(other, saved)
    after = params_by_name(other)
    assert all(np.array_equal(before[name], after[name]) for name in before)


# --- names stay those of the shipped checkpoint -------------------------------------------


def test_the_shipped_checkpoint_keeps_its_tensor_names():
    """Names come from Flax's flat state now; the file written before must still match."""
    from attnlab.pretrained import PRETRAINED_PATH

    with safetensors.safe_open(str(PRETRAINED_PATH), framework="np") as f:
        stored = set(f.keys())
        config = GPTConfig(**json.loads(f.metadata()["config"]))
    assert stored == set(params_by_name(make_model(config=config)))
    assert "blocks.3.attention.W_q.kernel" in stored


# --- the state of a training run ----------------------------------------------------------

DROPOUT = dataclasses.replace(CONFIG, dropout=0.1)


def trained_state(steps=2, seed=1):
    """A model (with a dropout stream) and optimizer after ``steps`` real updates."""
    from attnlab.train import TrainConfig, make_optimizer, train_step

    model = GPT(DROPOUT, rngs=nnx.Rngs(params=seed, dropout=seed + 1))
    train_config = TrainConfig(steps=10, batch_size=2, warmup_steps=2)
    optimizer = make_optimizer(model, train_config)
    x = jax.random.randint(jax.random.key(seed), (2, CONFIG.context_length), 0, CONFIG.vocab_size)
    for _ in range(steps):
        train_step(model, optimizer, x, x)
    return model, optimizer, train_config


def all_arrays(node) -> dict[str, np.ndarray]:
    """Every array of a module or optimizer by path, random keys as their raw bits."""
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(nnx.state(node))[0]:
        if jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        out[jax.tree_util.keystr(path)] = np.asarray(leaf)
    return out


def save_state(path, model, optimizer, train_config, step=2, **kwargs):
    from attnlab.train import History

    history = History(steps=[1, 2], train_loss=[2.5, 2.4], learning_rate=[1e-3, 2e-3],
                      val_steps=[0, 2], val_loss=[2.6, 2.45], elapsed_s=1.5, tokens_seen=32)
    return checkpoint.save_train_state(path, model, optimizer, step=step, key=jax.random.key(5),
                                       train_config=train_config, history=history, **kwargs)


def test_train_state_round_trip_is_bit_exact(tmp_path):
    model, optimizer, train_config = trained_state()
    path = save_state(tmp_path / "state.safetensors", model, optimizer, train_config,
                      tokenizer=TOKENIZER, metadata={"command": "x"})

    state = checkpoint.load_train_state(path)

    assert state.step == 2 and state.train_config == train_config
    assert state.history.val_loss == [2.6, 2.45] and state.history.tokens_seen == 32
    assert state.tokenizer.vocab == TOKENIZER.vocab and state.metadata == {"command": "x"}
    np.testing.assert_array_equal(jax.random.key_data(state.key),
                                  jax.random.key_data(jax.random.key(5)))
    for original, restored in ((model, state.model), (optimizer, state.optimizer)):
        want, got = all_arrays(original), all_arrays(restored)
        assert want.keys() == got.keys()
        for name in want:
            assert got[name].dtype == want[name].dtype, name
            np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    # Adam's moments are really there (not zeros from a fresh optimizer).
    assert int(state.optimizer.step[...]) == 2
    assert any(np.abs(v).max() > 0 for k, v in all_arrays(state.optimizer).items() if "mu" in k)


def test_train_state_file_names_its_parts(tmp_path):
    model, optimizer, train_config = trained_state()
    path = save_state(tmp_path / "state.safetensors", model, optimizer, train_config)
    with safetensors.safe_open(str(path), framework="np") as f:
        names, header = set(f.keys()), f.metadata()
    assert header["format"] == "attnlab-train-state/1"
    assert {f"model.{name}" for name in params_by_name(model)} <= names
    assert {"model.dropout.rngs.key", "optimizer.step", "train_key",
            "optimizer.opt_state.1.0.mu.blocks.0.attention.W_q.kernel"} <= names


def test_a_failed_train_state_write_keeps_the_last_good_one(tmp_path, monkeypatch):
    model, optimizer, train_config = trained_state(steps=1)
    path = save_state(tmp_path / "state.safetensors", model, optimizer, train_config, step=1)
    before = path.read_bytes()
    model2, optimizer2, _ = trained_state(steps=3)

    real_fdopen = os.fdopen

    class HalfWriter:
        """Writes the first half of the bytes, then the disk fills up."""

        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            self.f.write(data[: len(data) // 2])
            raise OSError(28, "No space left on device (simulated)")

    monkeypatch.setattr(checkpoint.os, "fdopen", lambda *a, **k: HalfWriter(real_fdopen(*a, **k)))
    with pytest.raises(OSError, match="simulated"):
        save_state(path, model2, optimizer2, train_config, step=3)
    monkeypatch.undo()

    assert path.read_bytes() == before and os.listdir(tmp_path) == ["state.safetensors"]
    assert checkpoint.load_train_state(path).step == 1


def test_a_model_checkpoint_is_not_a_train_state_and_back(tmp_path, saved):
    with pytest.raises(ValueError, match="weights only"):
        checkpoint.load_train_state(saved)
    model, optimizer, train_config = trained_state(steps=1)
    state = save_state(tmp_path / "state.safetensors", model, optimizer, train_config)
    with pytest.raises(ValueError, match="load_train_state"):
        checkpoint.load(state)


def test_train_state_rejects_reserved_metadata(tmp_path):
    model, optimizer, train_config = trained_state(steps=1)
    with pytest.raises(ValueError, match="'history'"):
        save_state(tmp_path / "s.st", model, optimizer, train_config, metadata={"history": 1})
    assert os.listdir(tmp_path) == []


# --- param_arrays / assign_params ---------------------------------------------------------------


def test_param_arrays_names_and_values_match_an_attribute_walk(model):
    expected = params_by_name(model)
    arrays = checkpoint.param_arrays(model)
    assert sorted(arrays) == sorted(expected)
    for name, value in expected.items():
        np.testing.assert_array_equal(arrays[name], value)


def test_assign_params_copies_another_models_weights_exactly(model):
    target = make_model(seed=7)
    checkpoint.assign_params(target, checkpoint.param_arrays(model))
    ids = jnp.arange(8)[None] % CONFIG.vocab_size
    np.testing.assert_array_equal(np.asarray(target(ids)), np.asarray(model(ids)))


def test_assign_params_casts_to_the_requested_dtype(model):
    target = make_model(seed=7)
    checkpoint.assign_params(target, checkpoint.param_arrays(model), dtype=jnp.bfloat16)
    assert {a.dtype for a in checkpoint.param_arrays(target).values()} == {np.dtype(jnp.bfloat16)}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a.pop("ln_f.scale"), "lacks the parameter 'ln_f.scale'"),
        (lambda a: a.update(extra=np.zeros(3)), "'extra'"),
        (lambda a: a.update({"ln_f.bias": np.zeros(5)}), "'ln_f.bias' has shape (16,)"),
    ],
    ids=["missing", "unknown", "misshapen"],
)
def test_assign_params_names_the_tensor_that_does_not_fit(model, change, message):
    arrays = checkpoint.param_arrays(model)
    change(arrays)
    target = make_model(seed=7)
    before = checkpoint.param_arrays(target)
    with pytest.raises(ValueError, match=re_escape(message)):
        checkpoint.assign_params(target, arrays)
    after = checkpoint.param_arrays(target)  # nothing was changed by the failed call
    assert all(np.array_equal(before[n], after[n]) for n in before)
