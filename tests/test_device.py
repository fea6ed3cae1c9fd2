"""``--device``: resolved once, a GPU that is not there is one ``error:`` line; concat mode keeps every tensor
of a training step on the requested device (checked on the CPU with a stand-in device, see ``FakeDevice``);
GradCache replays dropout exactly; sentence-transformers' multi-process pool gives the same vectors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten, tree_map

from univar.cli import main
from univar.device import resolve
from univar.errors import UnivarError
from univar.model import distributed
from univar.model.concat_mode import ConcatTrainer
from univar.model.config import TrainConfig
from univar.model.views import ViewSampler
from univar.qa import class_labels, qa_texts

NO_GPU = not torch.cuda.is_available()
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(NO_GPU, reason="no CUDA GPU"))]


def test_resolve_device_values():
    assert resolve("cpu") == torch.device("cpu")
    assert resolve("auto") == (torch.device("cpu") if NO_GPU else torch.device("cuda", 0))
    for bad in ("gpu", "cpu:0", "auto:1", "cuda:x", ""):
        with pytest.raises(UnivarError, match="^device must be"):
            resolve(bad)


def test_a_bad_device_is_worded_with_its_flag_on_the_command_line(capsys):
    assert main(["evaluate", "value-id", "bundled:valuebench", "--encoder", "minilm", "--device", "gpu"]) == 2
    assert capsys.readouterr().err == "error: --device must be auto, cpu, cuda or cuda:N, got 'gpu'\n"


def test_no_pool_where_the_device_names_one_gpu_or_the_cpu():
    from univar.encoders import pool_devices

    assert pool_devices("cpu") == [] and pool_devices("cuda:0") == []


@pytest.mark.skipif(not NO_GPU, reason="checks the machine without a GPU")
@pytest.mark.parametrize("argv", [
    ["train", "bundled:valuebench", "--out", "unused", "--mode", "concat", "--device", "cuda"],
    ["train", "bundled:valuebench", "--out", "unused", "--device", "cuda:1"],
    ["embed", "bundled:valuebench", "--encoder", "minilm", "--device", "cuda", "--out", "unused.npy"],
    ["evaluate", "value-id", "bundled:valuebench", "--encoder", "minilm", "--device", "cuda"],
])
def test_a_gpu_that_is_not_there_is_one_error_line_and_exit_2(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: --device cuda") and "no CUDA GPU" in err
    assert not list(tmp_path.iterdir())  # refused before any work


# --- every tensor of a concat step on the requested device -------------------------------------------------
# A CPU-only torch cannot hold a tensor on cuda:0, so the check uses a stand-in device, ``lazy:0``: a device
# type that this build knows but nothing in univar, transformers or sentence-transformers ever chooses by
# itself. ``FakeDevice`` tensors say they are on it and compute on the CPU; an op that mixes one with a
# CPU tensor raises the error a GPU would ("Expected all tensors to be on the same device"). ``OnDevice``
# turns ``.to(lazy:0)`` and factories given ``device=lazy:0`` into such tensors, and the kernels registered
# for the Lazy key cover the tensors that autograd's engine itself allocates on the device. A tensor the
# trainer forgot to move therefore fails the step, as it would on a GPU.
STAND_IN = torch.device("lazy", 0)


class FakeDevice(torch.Tensor):
    @staticmethod
    def __new__(cls, inner: torch.Tensor):
        return torch.Tensor._make_wrapper_subclass(cls, inner.shape, strides=inner.stride(), dtype=inner.dtype,
                                                   device=STAND_IN, requires_grad=inner.requires_grad)

    def __init__(self, inner: torch.Tensor):
        self.inner = inner

    def __repr__(self) -> str:
        return f"FakeDevice({self.inner!r})"

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        tensors = [x for x in tree_flatten((args, kwargs))[0] if isinstance(x, torch.Tensor)]
        stray = [x for x in tensors if not isinstance(x, FakeDevice) and x.dim() > 0]  # 0-dim CPU scalars are allowed
        if stray:
            raise RuntimeError(f"Expected all tensors to be on the same device, but found {STAND_IN} and cpu "
                               f"({func}, shapes {[tuple(x.shape) for x in stray]})")
        unwrap = lambda x: x.inner if isinstance(x, FakeDevice) else x  # noqa: E731
        to_cpu = lambda x: torch.device("cpu") if isinstance(x, torch.device) and x == STAND_IN else x  # noqa: E731
        out = func(*tree_map(unwrap, args), **tree_map(to_cpu, tree_map(unwrap, kwargs)))
        return tree_map(lambda x: FakeDevice(x) if isinstance(x, torch.Tensor) else x, out)


def _is_stand_in(device) -> bool:
    return isinstance(device, (str, torch.device)) and torch.device(device) == STAND_IN


class OnDevice(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func is torch.Tensor.to:
            device, dtype, _, _ = torch._C._nn._parse_to(*args[1:], **kwargs)
            if _is_stand_in(device):
                t = args[0].inner if isinstance(args[0], FakeDevice) else args[0]
                return FakeDevice(t if dtype is None else t.to(dtype))
        if _is_stand_in(kwargs.get("device")):
            kwargs["device"] = "cpu"
            return FakeDevice(func(*args, **kwargs))
        return func(*args, **kwargs)


@pytest.fixture
def stand_in_device():
    lib = torch.library.Library("aten", "IMPL")  # what autograd's engine allocates on the device

    def empty(size, *, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None):
        return FakeDevice(torch.empty(size, dtype=dtype))

    def empty_strided(size, stride, *, dtype=None, layout=None, device=None, pin_memory=None):
        return FakeDevice(torch.empty_strided(size, stride, dtype=dtype))

    lib.impl("empty.memory_format", empty, "Lazy")
    lib.impl("empty_strided", empty_strided, "Lazy")
    try:
        with OnDevice():
            yield STAND_IN
    finally:
        lib._destroy()


def _batch(table, lam=2, size=4):
    return ViewSampler(class_labels(table).to_numpy(), lam, size, seed=0).sample()


def test_the_stand_in_device_catches_a_tensor_left_on_the_cpu(stand_in_device):
    from univar.model.loss import InfoNCELoss

    a = torch.randn(4, 8).to(stand_in_device)
    loss = InfoNCELoss().to(stand_in_device)
    assert isinstance(loss(a, a, torch.tensor([0, 1, 2, 0]).to(stand_in_device)), FakeDevice)
    with pytest.raises(RuntimeError, match="same device"):
        loss(a, a, torch.tensor([0, 1, 2, 0]))  # class ids left on the CPU


def test_concat_step_keeps_every_tensor_on_the_requested_device(small_qa, tiny_base, stand_in_device):
    cfg = TrainConfig(mode="concat", base=str(tiny_base), max_length=48, micro_batch=3, lam=3, batch_size=6)
    trainer = ConcatTrainer(cfg, qa_texts(small_qa), distributed.Dist(device=stand_in_device))
    assert trainer.device == stand_in_device
    params = list(trainer.module.parameters())
    assert all(isinstance(p, FakeDevice) for p in params)  # the transformer and the loss were moved
    assert all(isinstance(b, FakeDevice) for b in trainer.module.buffers())
    loss = trainer.step_tensor(_batch(small_qa, 3, 6))  # tokens, class ids, both GradCache passes: or it raises
    assert isinstance(loss, FakeDevice) and float(loss.inner) > 0
    grads = [p.grad for p in params if p.grad is not None]
    assert len(grads) > len(params) // 2 and all(isinstance(g, FakeDevice) for g in grads)
    assert sum(float(g.inner.abs().sum()) for g in grads) > 0


@pytest.mark.parametrize("device", DEVICES)
def test_gradcache_replays_dropout_exactly(device, small_qa, tiny_base):
    """Pass 2 re-runs each chunk with a graph; with dropout on, it must see the very masks pass 1 drew
    (the CPU generator's, and on a GPU that device's), or the cached gradient belongs to other embeddings."""
    cfg = TrainConfig(mode="concat", base=str(tiny_base), max_length=48, micro_batch=2, lam=2, batch_size=4)
    trainer = ConcatTrainer(cfg, qa_texts(small_qa), distributed.Dist(device=torch.device(device)))
    dropouts = [m for m in trainer.module.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropouts and all(m.p > 0 for m in dropouts)
    for m in dropouts:
        m.p = 0.5  # many dropped units: two different masks cannot give equal embeddings
    outputs: list[torch.Tensor] = []
    hook = trainer.module["encoder"].register_forward_hook(lambda mod, inp, out: outputs.append(
        out["sentence_embedding"].detach().clone()))
    try:
        trainer.step_tensor(_batch(small_qa))
    finally:
        hook.remove()
    first, second = outputs[: len(outputs) // 2], outputs[len(outputs) // 2 :]
    assert len(first) == len(second) == 4  # 8 views in chunks of 2, each run twice
    for a, b in zip(first, second):
        assert a.device.type == device
        assert torch.equal(a, b)
    # fresh masks differ
    assert not torch.equal(first[0], trainer._forward(trainer._join(_batch(small_qa).a)[:2]).detach())


@pytest.mark.slow
def test_multi_process_pool_gives_the_same_vectors(small_qa, minilm):
    """The pool that spreads chunks over several GPUs, here over two CPU processes: the same vectors."""
    from univar.registry import get_encoder

    texts = qa_texts(small_qa)[:96]
    single = minilm.encode_batch(texts)
    pooled = get_encoder("minilm")
    pooled.devices = ["cpu", "cpu"]
    assert pooled.chunk >= 2 * 4 * pooled.batch_size  # several full batches per process and commit
    vectors = pooled.encode_batch(texts)
    assert vectors.dtype == np.float32 and vectors.shape == single.shape
    np.testing.assert_allclose(vectors, single, atol=1e-5)
