"""More than one device: ``train(..., mesh=...)`` is data parallelism with JAX's own sharding.

JAX fixes the number of CPU devices when it starts, so every check runs in a fresh Python
process that asks for several CPU devices (``jax_num_cpu_devices``) before JAX starts. This
file is also the script those processes run (``python tests/test_distributed.py WORKER ...``);
each writes what it found to a JSON or ``.npz`` file that the tests below read.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 120  # per child process; on an idle 2-core machine each takes well under 30 s


def _env() -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)  # the workers set their device count themselves
    return env


def _run_worker(*args: str) -> None:
    """Run this file as a worker in a fresh process; kill it if it outlives TIMEOUT_S."""
    done = subprocess.run([sys.executable, __file__, *args], env=_env(), cwd=ROOT,
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, f"worker {args[0]} failed:\n{done.stdout}\n{done.stderr[-4000:]}"


# --- one process, four CPU devices --------------------------------------------------------


@pytest.fixture(scope="module")
def four_devices(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("mesh") / "four_devices.json"
    _run_worker("four_devices", str(out))
    return json.loads(out.read_text())


def test_four_cpu_devices_exist_and_the_mesh_spans_them(four_devices):
    assert four_devices["device_count"] == 4
    assert four_devices["mesh_shape"] == {"data": 4}
    assert four_devices["axis_types"] == ["Auto"]


def test_sharded_run_has_the_single_device_losses(four_devices):
    one, four = np.array(four_devices["losses_one"]), np.array(four_devices["losses_four"])
    assert len(one) == len(four) == 20
    assert one[-1] < one[0] - 0.3  # the run learns something, so the comparison means something
    # Only the order of the sums differs (each device averages its slice, then an all-reduce).
    np.testing.assert_allclose(four, one, atol=1e-5, rtol=0)
    np.testing.assert_allclose(four_devices["val_four"], four_devices["val_one"], atol=1e-5)
    # Adam divides by sqrt(v): rounding in near-zero gradients grows into weight differences
    # that are still far below how far the weights moved.
    assert four_devices["max_param_diff"] < 0.01 * four_devices["max_param_change"]


def test_batch_is_split_over_the_devices(four_devices):
    # Each of the 4 devices holds 2 of the 8 windows, each a different slice.
    assert four_devices["batch_spec"] == ["data", None]
    assert four_devices["batch_shard_shapes"] == [[2, 8]] * 4
    assert sorted(four_devices["batch_shard_rows"]) == [[0, 2], [2, 4], [4, 6], [6, 8]]


def test_weights_and_optimizer_state_are_replicated(four_devices):
    assert four_devices["params_replicated"] is True
    assert four_devices["opt_state_replicated"] is True
    assert four_devices["param_devices"] == 4
    # A step counter and moments that moved: the replicas took the same 20 updates.
    assert four_devices["opt_step"] == 20


def test_step_is_compiled_once_with_the_mesh(four_devices):
    assert four_devices["step_compiles"] == 1


def test_fsdp_splits_the_weights_and_keeps_the_losses(four_devices):
    np.testing.assert_allclose(four_devices["losses_fsdp"], four_devices["losses_one"],
                               atol=1e-5, rtol=0)
    assert four_devices["fsdp_kernel_replicated"] is False
    assert four_devices["fsdp_kernel_shards"] == [[4, 32]] * 4  # a (16, 32) kernel, 1/4 each
    assert four_devices["fsdp_moments_split"] is True  # Adam's moments of it too
    assert four_devices["fsdp_compiles"] == 1


def test_a_sharded_run_stops_and_resumes_to_the_same_weights(four_devices):
    assert four_devices["losses_resumed"] == four_devices["losses_four"]
    assert four_devices["resumed_equal"] is True


def test_explicit_axes_are_accepted(four_devices):
    # jax.make_mesh makes Explicit axes by default on new jax; train runs them as Auto.
    np.testing.assert_allclose(four_devices["losses_explicit"], four_devices["losses_four"],
                               atol=1e-6, rtol=0)


def test_bad_meshes_get_clear_errors(four_devices):
    errors = four_devices["errors"]
    assert errors["batch_size=6"][0] == "ValueError"
    message = errors["batch_size=6"][1]
    assert "batch_size=6" in message and "4" in message and "'data'" in message
    assert errors["two axes"][0] == "ValueError" and "one axis" in errors["two axes"][1]
    assert errors["not a mesh"][0] == "TypeError" and "Mesh" in errors["not a mesh"][1]
    assert errors["param_sharding"][0] == "ValueError" and "'zero'" in errors["param_sharding"][1]


def _four_devices(out: str) -> None:
    import jax

    jax.config.update("jax_num_cpu_devices", 4)
    from flax import nnx

    from attnlab import train as train_module
    from attnlab.data import get_batch
    from attnlab.train import TrainConfig, data_parallel_mesh, train

    sys.path.insert(0, str(ROOT / "tests"))
    from test_train import fresh_model, tiny_data

    data = tiny_data()
    config = TrainConfig(steps=20, batch_size=8, warmup_steps=2, eval_interval=10,
                         learning_rate=1e-2)
    key = jax.random.key(1)
    one = fresh_model()
    h_one = train(one, data, config, key=key, progress=False)
    mesh = data_parallel_mesh()
    compiles = _CompileLog()  # what JAX compiles during the sharded run, by function name
    logging.getLogger("jax").addHandler(compiles)
    jax.config.update("jax_log_compiles", True)
    four = fresh_model()
    h_four = train(four, data, config, key=key, progress=False, mesh=mesh)
    jax.config.update("jax_log_compiles", False)
    optimizer = _last_optimizer[0]
    step_compiles = compiles.names.count("train_steps")

    # The batch as train places it: the same helper, on the same first batch.
    sharding = train_module._data_parallel_sharding(mesh, config.batch_size)
    x, _ = get_batch(jax.numpy.asarray(data.train), 8, 8, jax.random.fold_in(key, 1))
    x = train_module._place(x, sharding)
    shards = sorted(x.addressable_shards, key=lambda s: s.device.id)

    params = [v[...] for _, v in nnx.to_flat_state(nnx.state(four, nnx.Param))]
    opt = jax.tree.leaves(nnx.state(optimizer))
    one_params = [v[...] for _, v in nnx.to_flat_state(nnx.state(one, nnx.Param))]
    start_params = [v[...] for _, v in nnx.to_flat_state(nnx.state(fresh_model(), nnx.Param))]

    # FSDP: weights and AdamW moments split over the devices, gathered by the compiler.
    fsdp = fresh_model()
    compiles.names.clear()
    jax.config.update("jax_log_compiles", True)
    h_fsdp = train(fsdp, data, config, key=key, progress=False, mesh=mesh, param_sharding="fsdp")
    jax.config.update("jax_log_compiles", False)
    fsdp_optimizer = _last_optimizer[0]
    fsdp_compiles = compiles.names.count("train_steps")
    kernel = fsdp.blocks[0].mlp.fc_in.kernel[...]  # (16, 32): 4 rows per device
    moments = [a for a in jax.tree.leaves(nnx.state(fsdp_optimizer)) if a.shape == kernel.shape]

    # Stopped at step 10 with save_to, resumed to 20: the same run as straight to 20.
    saved = Path(out).with_suffix(".safetensors")
    train(fresh_model(), data, dataclasses.replace(config, steps=10, decay_steps=20), key=key,
          progress=False, mesh=mesh, save_to=saved)
    resumed = fresh_model()
    h_resumed = train(resumed, data, config, progress=False, mesh=mesh, resume_from=saved)
    resumed_params = [v[...] for _, v in nnx.to_flat_state(nnx.state(resumed, nnx.Param))]

    explicit = jax.make_mesh((4,), ("data",), axis_types=(jax.sharding.AxisType.Explicit,))
    h_explicit = train(fresh_model(), data, config, key=key, progress=False, mesh=explicit)

    errors = {}
    for name, kwargs in {
        "batch_size=6": {"config": TrainConfig(steps=2, batch_size=6, warmup_steps=1),
                         "mesh": mesh},
        "two axes": {"config": config, "mesh": jax.make_mesh(
            (2, 2), ("data", "model"), axis_types=(jax.sharding.AxisType.Auto,) * 2)},
        "not a mesh": {"config": config, "mesh": jax.devices()},
        "param_sharding": {"config": config, "mesh": mesh, "param_sharding": "zero"},
    }.items():
        try:
            train(fresh_model(), data, key=key, progress=False, **kwargs)
        except Exception as error:  # noqa: BLE001 - the test inspects the type
            errors[name] = [type(error).__name__, str(error)]

    result = {
        "device_count": jax.device_count(),
        "mesh_shape": dict(mesh.shape),
        "axis_types": [t.name for t in mesh.axis_types],
        "losses_one": h_one.train_loss,
        "losses_four": h_four.train_loss,
        "losses_explicit": h_explicit.train_loss,
        "val_one": h_one.val_loss,
        "val_four": h_four.val_loss,
        "max_param_diff": max(float(np.abs(np.asarray(a) - np.asarray(b)).max())
                              for a, b in zip(params, one_params, strict=True)),
        "max_param_change": max(float(np.abs(np.asarray(a) - np.asarray(b)).max())
                                for a, b in zip(one_params, start_params, strict=True)),
        "batch_spec": list(x.sharding.spec) + [None] * (x.ndim - len(x.sharding.spec)),
        "batch_shard_shapes": [list(s.data.shape) for s in shards],
        "batch_shard_rows": [[s.index[0].start or 0, s.index[0].stop or 8] for s in shards],
        "params_replicated": all(p.sharding.is_fully_replicated for p in params),
        "opt_state_replicated": all(a.sharding.is_fully_replicated for a in opt),
        "param_devices": len(params[0].sharding.device_set),
        "opt_step": int(optimizer.step[...]),
        "step_compiles": step_compiles,
        "losses_fsdp": h_fsdp.train_loss,
        "fsdp_compiles": fsdp_compiles,
        "fsdp_kernel_shards": sorted([list(sh.data.shape) for sh in kernel.addressable_shards]),
        "fsdp_kernel_replicated": kernel.sharding.is_fully_replicated,
        "fsdp_moments_split": bool(moments) and all(
            a.addressable_shards[0].data.shape == (4, 32) for a in moments),
        "errors": errors,
        "losses_resumed": h_resumed.train_loss,
        "resumed_equal": all(np.array_equal(a, b) for a, b in zip(resumed_params, params,
                                                                   strict=True)),
    }
    Path(out).write_text(json.dumps(result))


_last_optimizer: list = []  # filled by the worker's spy on make_optimizer


class _CompileLog(logging.Handler):
    """Collects the names in JAX's "Compiling jit(NAME) ..." log lines."""

    def __init__(self):
        super().__init__()
        self.names: list[str] = []

    def emit(self, record):
        message = record.getMessage()
        if message.startswith("Compiling jit("):
            self.names.append(message[len("Compiling jit("):].split(")")[0])


# --- two processes, two CPU devices each, over loopback --------------------------------------


def _cpu_collectives_reason() -> str | None:
    """Why this jax cannot run collectives across CPU processes, or None if it can."""
    import jax

    if "jax_cpu_collectives_implementation" not in jax.config.values:
        return f"jax {jax.__version__} has no jax_cpu_collectives_implementation (gloo) option"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_take_one_data_parallel_step_to_identical_weights(tmp_path):
    reason = _cpu_collectives_reason()
    if reason:
        pytest.skip(reason)
    port = str(_free_port())
    outs = [tmp_path / f"process{i}.npz" for i in range(2)]
    children = [subprocess.Popen([sys.executable, __file__, "process", port, str(i), str(out)],
                                 env=_env(), cwd=ROOT, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)
                for i, out in enumerate(outs)]
    try:
        logs = [child.communicate(timeout=TIMEOUT_S)[0] for child in children]
    finally:
        for child in children:  # a straggler (e.g. waiting for its peer) is stopped
            if child.poll() is None:
                child.kill()
                child.wait()
    for i, child in enumerate(children):
        assert child.returncode == 0, f"process {i} failed:\n{logs[i][-4000:]}"
    first, second = (np.load(out) for out in outs)
    assert sorted(first.files) == sorted(second.files) and len(first.files) > 5
    for name in first.files:  # bit for bit: both processes applied the same all-reduced update
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)
    facts = json.loads(str(first["facts"]))
    assert facts["device_count"] == 4 and facts["local_device_count"] == 2
    assert facts["process_count"] == 2
    # ... and that update is the one a single device computes from the whole batch.
    reference, initial = _one_step(), _initial()
    for name, value in reference.items():
        np.testing.assert_allclose(first[name], value, atol=1e-6, rtol=0, err_msg=name)
    assert any(not np.array_equal(first[name], initial[name]) for name in reference)


def _one_step(mesh=None) -> dict:
    """One training step of the tiny model; its parameters by path."""
    import jax
    from flax import nnx

    from attnlab.train import TrainConfig, train

    sys.path.insert(0, str(ROOT / "tests"))
    from test_train import fresh_model, tiny_data

    model = fresh_model()
    config = TrainConfig(steps=1, batch_size=8, warmup_steps=0, learning_rate=1e-2)
    train(model, tiny_data(), config, key=jax.random.key(3), progress=False, mesh=mesh)
    return {"/".join(map(str, path)): np.asarray(v[...])
            for path, v in nnx.to_flat_state(nnx.state(model, nnx.Param))}


def _initial() -> dict:
    from flax import nnx

    sys.path.insert(0, str(ROOT / "tests"))
    from test_train import fresh_model

    return {"/".join(map(str, path)): np.asarray(v[...])
            for path, v in nnx.to_flat_state(nnx.state(fresh_model(), nnx.Param))}


def _process(port: str, process_id: str, out: str) -> None:
    import jax

    jax.config.update("jax_num_cpu_devices", 2)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2,
                               process_id=int(process_id), initialization_timeout=60)
    from attnlab.train import data_parallel_mesh

    params = _one_step(mesh=data_parallel_mesh())
    facts = {"device_count": jax.device_count(), "local_device_count": jax.local_device_count(),
             "process_count": jax.process_count()}
    np.savez(out, facts=json.dumps(facts), **params)
    jax.distributed.shutdown()


if __name__ == "__main__":
    worker, *worker_args = sys.argv[1:]
    if worker == "four_devices":
        import attnlab.train as _train

        _make = _train.make_optimizer

        def _spy(*args, **kwargs):  # keep the sharded run's optimizer to inspect its state
            _last_optimizer[:] = [_make(*args, **kwargs)]
            return _last_optimizer[0]

        _train.make_optimizer = _spy
        _four_devices(*worker_args)
    elif worker == "process":
        _process(*worker_args)
    else:
        raise SystemExit(f"unknown worker {worker!r}")
