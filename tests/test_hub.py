"""attnlab.hub: GPT-2 in the Hugging Face layout ↔ attnlab's GPT.

Offline proofs: a tiny random GPT-2 written by our own code is loaded and its logits compared
with a NumPy forward pass of GPT-2 written here from the stored tensors (independent of
attnlab's modules); names, shapes and round trips. With the ``[parity]`` extra (torch,
transformers), the same against ``transformers.GPT2LMHeadModel`` itself.
"""

import json
import math

import jax
import numpy as np
import pytest
import safetensors.numpy

from attnlab import hub
from attnlab.gpt import GPTConfig

# config.json fields of the three Hub models (as published on the Hub), written out here.
HF_CONFIGS = {
    "gpt2": {"activation_function": "gelu_new", "n_ctx": 1024, "n_embd": 768, "n_head": 12,
             "n_layer": 12, "n_positions": 1024, "vocab_size": 50257, "resid_pdrop": 0.1,
             "layer_norm_epsilon": 1e-05, "model_type": "gpt2"},
    "distilgpt2": {"activation_function": "gelu_new", "n_ctx": 1024, "n_embd": 768,
                   "n_head": 12, "n_layer": 6, "n_positions": 1024, "vocab_size": 50257,
                   "resid_pdrop": 0.1, "layer_norm_epsilon": 1e-05, "model_type": "gpt2"},
    "gpt2-medium": {"activation_function": "gelu_new", "n_ctx": 1024, "n_embd": 1024,
                    "n_head": 16, "n_layer": 24, "n_positions": 1024, "vocab_size": 50257,
                    "resid_pdrop": 0.1, "layer_norm_epsilon": 1e-05, "model_type": "gpt2",
                    "n_inner": None},
}
# Published parameter counts (tied head counted once).
PARAMS = {"gpt2": 124_439_808, "distilgpt2": 81_912_576, "gpt2-medium": 354_823_168}


@pytest.mark.parametrize("name", sorted(HF_CONFIGS))
def test_config_mapping_of_the_three_hub_models(name):
    hf = HF_CONFIGS[name]
    config = hub.config_from_hf(hf)
    assert (config.d_model, config.n_layers, config.n_heads) == (hf["n_embd"], hf["n_layer"],
                                                                 hf["n_head"])
    assert config.context_length == 1024 and config.vocab_size == 50257
    assert config.d_ff == 4 * hf["n_embd"] and config.gelu == "tanh"
    assert config.layer_norm_epsilon == 1e-5
    assert config.num_params() == PARAMS[name]
    assert hub.config_from_hf(hub.config_to_hf(config)) == config


@pytest.mark.parametrize("change, word", [
    ({"activation_function": "relu"}, "activation_function"),
    ({"scale_attn_by_inverse_layer_idx": True}, "scale_attn_by_inverse_layer_idx"),
    ({"model_type": "llama"}, "model_type"),
    ({"n_head": None}, "n_head"),
])
def test_config_refuses_what_attnlab_does_not_compute(change, word):
    hf = {**HF_CONFIGS["gpt2"], **change}
    if change.get("n_head", 0) is None:
        del hf["n_head"]
    with pytest.raises(ValueError, match=word):
        hub.config_from_hf(hf)


def test_exact_gelu_maps_to_exact():
    assert hub.config_from_hf({**HF_CONFIGS["gpt2"], "activation_function": "gelu"}).gelu == "exact"


# --- an independent GPT-2 forward pass in NumPy ----------------------------------------------


def _layer_norm(x, w, b, eps=1e-5):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def _gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def numpy_gpt2(t, ids, n_heads):
    """GPT-2 straight from its stored tensors ``t`` (names without prefix), float64."""
    t = {k: v.astype(np.float64) for k, v in t.items()}
    B, T = ids.shape
    x = t["wte.weight"][ids] + t["wpe.weight"][:T]
    n_layers = len({k.split(".")[1] for k in t if k.startswith("h.")})
    D = x.shape[-1]
    dh = D // n_heads
    causal = np.tril(np.ones((T, T), bool))
    for i in range(n_layers):
        h = f"h.{i}."
        a = _layer_norm(x, t[h + "ln_1.weight"], t[h + "ln_1.bias"])
        qkv = a @ t[h + "attn.c_attn.weight"] + t[h + "attn.c_attn.bias"]
        q, k, v = (qkv[..., j * D:(j + 1) * D].reshape(B, T, n_heads, dh).transpose(0, 2, 1, 3)
                   for j in range(3))
        s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(dh)
        s = np.where(causal, s, -np.inf)
        w = np.exp(s - s.max(-1, keepdims=True))
        w /= w.sum(-1, keepdims=True)
        o = (w @ v).transpose(0, 2, 1, 3).reshape(B, T, D)
        x = x + o @ t[h + "attn.c_proj.weight"] + t[h + "attn.c_proj.bias"]
        m = _layer_norm(x, t[h + "ln_2.weight"], t[h + "ln_2.bias"])
        m = _gelu_tanh(m @ t[h + "mlp.c_fc.weight"] + t[h + "mlp.c_fc.bias"])
        x = x + m @ t[h + "mlp.c_proj.weight"] + t[h + "mlp.c_proj.bias"]
    x = _layer_norm(x, t["ln_f.weight"], t["ln_f.bias"])
    return x @ t["wte.weight"].T


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny random GPT-2 (2 layers, 4 heads, D 64, V 1000, C 64), no tokenizer."""
    return hub.write_tiny_gpt2(tmp_path_factory.mktemp("tiny"), tokenizer=False)


def test_tiny_checkpoint_matches_numpy_gpt2(tiny):
    model, tokenizer = hub.load_gpt2(local_dir=tiny)
    assert tokenizer is None
    tensors = safetensors.numpy.load_file(str(tiny / "model.safetensors"))
    ids = np.random.default_rng(1).integers(0, 1000, (2, 64))  # up to the context limit
    expected = numpy_gpt2(tensors, ids, n_heads=4)
    np.testing.assert_allclose(np.asarray(model(ids)), expected, atol=1e-4, rtol=0)


def test_transformers_prefix_and_mask_buffers_load_the_same(tiny, tmp_path):
    tensors = safetensors.numpy.load_file(str(tiny / "model.safetensors"))
    prefixed = {"transformer." + k: v for k, v in tensors.items()}
    prefixed["transformer.h.0.attn.bias"] = np.tril(np.ones((1, 1, 64, 64), np.float32))
    prefixed["lm_head.weight"] = tensors["wte.weight"]  # tied: equal to wte
    safetensors.numpy.save_file(prefixed, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text((tiny / "config.json").read_text())
    ids = np.arange(10)[None]
    a, _ = hub.load_gpt2(local_dir=tiny)
    b, _ = hub.load_gpt2(local_dir=tmp_path)
    np.testing.assert_array_equal(np.asarray(a(ids)), np.asarray(b(ids)))


def test_save_round_trip(tiny, tmp_path):
    model, _ = hub.load_gpt2(local_dir=tiny)
    hub.save_gpt2(model, tmp_path / "copy")
    again, _ = hub.load_gpt2(local_dir=tmp_path / "copy")
    before = safetensors.numpy.load_file(str(tiny / "model.safetensors"))
    after = safetensors.numpy.load_file(str(tmp_path / "copy" / "model.safetensors"))
    assert before.keys() == after.keys()
    for name in before:
        np.testing.assert_array_equal(before[name], after[name], err_msg=name)
    ids = np.arange(20)[None]
    np.testing.assert_array_equal(np.asarray(model(ids)), np.asarray(again(ids)))
    assert again.config == model.config


def _broken(tiny, tmp_path, edit):
    tensors = safetensors.numpy.load_file(str(tiny / "model.safetensors"))
    edit(tensors)
    safetensors.numpy.save_file(tensors, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text((tiny / "config.json").read_text())
    return tmp_path


@pytest.mark.parametrize("edit, name", [
    (lambda t: t.pop("h.1.mlp.c_fc.bias"), "h.1.mlp.c_fc.bias"),
    (lambda t: t.update({"h.0.attn.c_attn.weight": t["h.0.attn.c_attn.weight"][:, :128]}),
     "h.0.attn.c_attn.weight"),
    (lambda t: t.update({"h.0.mlp.c_fc.weight": t["h.0.mlp.c_fc.weight"].T.copy()}),
     "h.0.mlp.c_fc.weight"),  # stored as PyTorch Linear (out, in)
    (lambda t: t.update({"h.2.ln_1.weight": t["h.0.ln_1.weight"]}), "h.2.ln_1.weight"),
    (lambda t: t.update({"lm_head.weight": t["wte.weight"] + 1}), "lm_head.weight"),
])
def test_misfit_tensors_are_refused_by_name(tiny, tmp_path, edit, name):
    folder = _broken(tiny, tmp_path, edit)
    with pytest.raises(ValueError, match=name.replace(".", r"\.")):
        hub.load_gpt2(local_dir=folder)


def test_missing_files_and_bad_model_argument(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        hub.load_gpt2(local_dir=tmp_path)
    with pytest.raises(TypeError, match="GPT"):
        hub.save_gpt2("not a model", tmp_path)


def test_unknown_model_offline_is_one_clear_error(tmp_path, monkeypatch):
    pytest.importorskip("huggingface_hub")
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(OSError, match="not in the local Hugging Face cache") as info:
        hub.load_gpt2("no-such-user/no-such-gpt2", offline=True)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_offline_environment_skips_the_network(monkeypatch):
    monkeypatch.setenv("ATTNLAB_OFFLINE", "1")
    assert hub.hub_reachable() is False


# --- tokenizers ---------------------------------------------------------------------------------


def test_byte_level_tokenizer_round_trips_any_text(tmp_path):
    pytest.importorskip("tokenizers")
    folder = hub.write_tiny_gpt2(tmp_path, vocab_size=400)
    _, tokenizer = hub.load_gpt2(local_dir=folder)
    assert tokenizer.vocab_size == 400
    assert tokenizer.tokenizer.token_to_id("<|endoftext|>") == 399
    for text in ["Hello   world", "  leading spaces\n\ttabs", "emoji 🙂🚀 and é", ""]:
        ids = tokenizer.encode(text)
        assert ids.dtype == np.int32 and tokenizer.decode(ids) == text
    pieces = tokenizer.pieces("the cat")
    assert "".join(p.text for p in pieces) == "the cat"
    second_word = [p for p in pieces if p.start == 3]  # " cat" begins at the space
    assert second_word and second_word[0].token.startswith("Ġ")  # the space joins the word
    with pytest.raises(ValueError, match="ids must be in"):
        tokenizer.decode([400])


def test_char_tokenizer_saved_as_tokenizer_json(tmp_path):
    pytest.importorskip("tokenizers")
    from flax import nnx

    from attnlab.data import CharTokenizer
    from attnlab.gpt import GPT

    char = CharTokenizer.ascii()
    model = GPT(GPTConfig(vocab_size=char.vocab_size, context_length=32, n_layers=1, n_heads=2,
                          d_model=16, d_ff=32), rngs=nnx.Rngs(0))
    hub.save_gpt2(model, tmp_path, char)
    again, tokenizer = hub.load_gpt2(local_dir=tmp_path)
    text = "To be, or not\nto be."
    np.testing.assert_array_equal(tokenizer.encode(text), char.encode(text))
    assert tokenizer.decode(char.encode(text)) == text
    with pytest.raises(ValueError, match="cannot encode"):  # not dropped silently
        tokenizer.encode("café")
    np.testing.assert_array_equal(np.asarray(model(char.encode(text)[None])),
                                  np.asarray(again(char.encode(text)[None])))


# --- parity with transformers ([parity] extra) --------------------------------------------------


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A tiny random transformers GPT-2 saved with save_pretrained, every weight randomised."""
    torch = pytest.importorskip("torch", reason="parity needs the [parity] extra (torch)")
    transformers = pytest.importorskip(
        "transformers", reason="parity needs the [parity] extra (transformers)")
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=1000, n_positions=64, n_embd=64, n_layer=2,
                                     n_head=4, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    model = transformers.GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "ln" in name and name.endswith("weight"):
                parameter.copy_(1 + 0.1 * torch.randn_like(parameter))
            else:
                parameter.copy_(0.05 * torch.randn_like(parameter))
    folder = tmp_path_factory.mktemp("hf")
    model.save_pretrained(folder, safe_serialization=True)
    return torch, model, folder


def test_logits_equal_transformers(reference):
    torch, reference_model, folder = reference
    model, _ = hub.load_gpt2(local_dir=folder)
    assert json.loads((folder / "config.json").read_text())["model_type"] == "gpt2"
    rng = np.random.default_rng(0)
    for shape in [(4, 64), (2, 63), (3, 7), (1, 1)]:  # incl. the full context window
        ids = rng.integers(0, 1000, shape)
        with torch.no_grad():
            expected = reference_model(torch.tensor(ids)).logits.numpy()
        np.testing.assert_allclose(np.asarray(model(ids)), expected, atol=1e-4, rtol=0)


def test_greedy_generation_equals_transformers(reference):
    from attnlab.sampling import generate

    torch, reference_model, folder = reference
    model, _ = hub.load_gpt2(local_dir=folder)
    prompt = np.array([[5, 17, 256, 3, 999, 42]])
    ours = np.asarray(generate(model, prompt, 50, temperature=0.0, key=jax.random.key(0)))
    with torch.no_grad():
        theirs = reference_model.generate(
            torch.tensor(prompt), max_new_tokens=50, do_sample=False, pad_token_id=0,
            attention_mask=torch.ones_like(torch.tensor(prompt))).numpy()
    np.testing.assert_array_equal(ours, theirs)


def test_transformers_reads_our_files_identically(tiny, reference, tmp_path):
    torch, _, _ = reference
    from transformers import GPT2LMHeadModel

    ours, _ = hub.load_gpt2(local_dir=tiny)
    theirs = GPT2LMHeadModel.from_pretrained(tiny).eval()
    ids = np.random.default_rng(2).integers(0, 1000, (2, 64))
    with torch.no_grad():
        expected = theirs(torch.tensor(ids)).logits.numpy()
    np.testing.assert_allclose(np.asarray(ours(ids)), expected, atol=1e-4, rtol=0)


# --- the attention-head widget on a loaded GPT-2 ------------------------------------------------


def test_attention_head_explorer_follows_its_controls(tmp_path):
    pytest.importorskip("tokenizers")
    import matplotlib

    matplotlib.use("Agg")
    from attnlab.widgets import attention_head_explorer, attention_weights

    folder = hub.write_tiny_gpt2(tmp_path, vocab_size=300, n_layers=2, n_heads=2, d_model=16)
    model, tokenizer = hub.load_gpt2(local_dir=folder)
    weights, labels = attention_weights(model, tokenizer, "the cat sat")
    assert weights.shape == (2, 2, len(labels), len(labels))
    assert "".join(labels) == "the cat sat"
    np.testing.assert_allclose(weights.sum(-1), 1, atol=1e-5)
    assert np.all(np.triu(weights, k=1) == 0)  # causal: no weight on later tokens
    explorer = attention_head_explorer(model, tokenizer, text="the cat sat")  # notebook 05's
    np.testing.assert_allclose(explorer.weights, weights[0, 0], atol=1e-6)
    assert explorer.tokens == labels
    explorer.layer.value, explorer.head.value = 1, 1
    np.testing.assert_allclose(explorer.weights, weights[1, 1], atol=1e-6)
    assert "layer 1, head 1" in explorer.summary.value
    assert any(len(t) > 1 for t in labels)  # GPT-2's pieces are not single characters
    assert "tokens back on average" in explorer.summary.value
    assert "on the token itself" in explorer.summary.value and "character" not in explorer.summary.value
    explorer.text.value = "a dog"
    assert "".join(explorer.tokens) == "a dog" and explorer.weights.shape[0] == len(explorer.tokens)
    explorer.text.value = ""
    assert explorer.weights is None and "empty" in explorer.summary.value


def test_hub_path_reads_the_three_files_from_the_cache(tiny, monkeypatch):
    huggingface_hub = pytest.importorskip("huggingface_hub")
    calls = []

    def fake_download(repo_id, filename, revision=None, local_files_only=False):
        calls.append((repo_id, filename, local_files_only))
        if filename == "tokenizer.json":
            raise huggingface_hub.errors.LocalEntryNotFoundError("not cached")
        return str(tiny / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    monkeypatch.setenv("ATTNLAB_OFFLINE", "1")
    with pytest.raises(OSError, match="tokenizer.json is not in the local Hugging Face cache"):
        hub.load_gpt2("gpt2")
    assert [c[1] for c in calls] == ["config.json", "model.safetensors", "tokenizer.json"]
    assert all(c == ("gpt2", c[1], True) for c in calls)  # offline: cache only

    monkeypatch.setattr(huggingface_hub, "hf_hub_download",
                        lambda repo_id, filename, **_: str(tiny / filename))
    model, _ = hub.load_gpt2("gpt2")  # "cached": the files resolve to the tiny folder
    reference, _ = hub.load_gpt2(local_dir=tiny)
    ids = np.arange(8)[None]
    np.testing.assert_array_equal(np.asarray(model(ids)), np.asarray(reference(ids)))
