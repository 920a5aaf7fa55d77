"""PyTorch adapter: torch.nn.functional losses and their nn.Module forms, differentiated by autograd.

PyTorch puts the class axis second (N, C, d1, ...): bindings move the canonical last axis there
inside the differentiated function, so gradients come back in the canonical layout.
"""

from __future__ import annotations

import os
import re

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from xentcheck.bench.floor import EXP_CHAIN
from xentcheck.problem import Problem
from xentcheck.reference import Convention

from . import ALL_FLOATS, Binding, Capabilities, Inputs, WorkerGroup
from . import pytorch_linear_ce as linear_ce
from .framework import FrameworkAdapter
from .repro import Dialect

DTYPES = ALL_FLOATS
CATEGORICAL = frozenset({"index", "onehot", "soft"})
BINARY = frozenset({"binary", "soft"})

_TORCH_DTYPES = {
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
    "float64": torch.float64,
}


def _channels_first(a: torch.Tensor) -> torch.Tensor:
    return a.movedim(-1, 1) if a.ndim > 2 else a


def _ce_kwargs(inp: Inputs) -> dict:
    kw = {"weight": inp.class_weight, "reduction": inp.reduction, "label_smoothing": inp.problem.label_smoothing}
    if inp.problem.ignore_index is not None:
        kw["ignore_index"] = inp.problem.ignore_index
    return kw


def _target_cf(inp: Inputs) -> torch.Tensor:
    return inp.target if inp.problem.target_kind == "index" else _channels_first(inp.target)


def _ce_convention(problem: Problem) -> Convention:
    # Documented: with class indices the mean divides by the sum of the targets' weights
    # (ignored rows excluded); with class probabilities it divides by the number of elements.
    return Convention(mean_by="weight_sum" if problem.target_kind == "index" else "count")


def _nll_kwargs(inp: Inputs) -> dict:
    kw = {"weight": inp.class_weight, "reduction": inp.reduction}
    if inp.problem.ignore_index is not None:
        kw["ignore_index"] = inp.problem.ignore_index
    return kw


def _bce_weight(inp: Inputs):
    return inp.class_weight  # broadcast over the last axis, as `weight` allows


def _bindings() -> list[Binding]:
    # PyTorch's layout is channels-first: spatial input always reaches it as (N, C, d1, ...)
    ce_caps = Capabilities(
        "softmax_ce",
        CATEGORICAL,
        options=frozenset({"class_weight", "ignore_index", "label_smoothing", "spatial", "channels_first"}),
        dtypes=DTYPES,
    )
    nll_caps = Capabilities(
        "softmax_ce",
        frozenset({"index"}),
        options=frozenset({"class_weight", "ignore_index", "spatial", "channels_first"}),
        dtypes=DTYPES,
    )
    logp_caps = Capabilities(
        "nll",
        frozenset({"index"}),
        options=frozenset({"class_weight", "ignore_index", "spatial", "channels_first"}),
        dtypes=DTYPES,
    )
    bce_caps = Capabilities("bce", BINARY, options=frozenset({"class_weight"}), dtypes=DTYPES)
    bcel_caps = Capabilities("sigmoid_bce", BINARY, options=frozenset({"class_weight", "pos_weight"}), dtypes=DTYPES)
    msm_caps = Capabilities("sigmoid_bce", frozenset({"binary"}), options=frozenset({"class_weight"}), dtypes=DTYPES)
    weight_sum = Convention(mean_by="weight_sum")
    return [
        Binding(
            "F.cross_entropy",
            "torch.nn.functional.cross_entropy",
            ce_caps,
            lambda x, i: F.cross_entropy(_channels_first(x), _target_cf(i), **_ce_kwargs(i)),
            _ce_convention,
            call="F.cross_entropy({x}, {t}{opts}, reduction={reduction})",
        ),
        Binding(
            "nn.CrossEntropyLoss",
            "torch.nn.CrossEntropyLoss",
            ce_caps,
            lambda x, i: nn.CrossEntropyLoss(**_ce_kwargs(i))(_channels_first(x), _target_cf(i)),
            _ce_convention,
            call="nn.CrossEntropyLoss(reduction={reduction}{opts})({x}, {t})",
        ),
        Binding(
            "F.nll_loss+log_softmax",
            "torch.nn.functional.nll_loss",
            nll_caps,
            lambda x, i: F.nll_loss(F.log_softmax(_channels_first(x), dim=1), i.target, **_nll_kwargs(i)),
            weight_sum,
            "F.nll_loss(F.log_softmax(x, dim=1), target)",
            call="F.nll_loss(F.log_softmax({x}, dim=1), {t}{opts}, reduction={reduction})",
        ),
        Binding(
            "nn.NLLLoss+LogSoftmax",
            "torch.nn.NLLLoss",
            nll_caps,
            lambda x, i: nn.NLLLoss(**_nll_kwargs(i))(nn.LogSoftmax(dim=1)(_channels_first(x)), i.target),
            weight_sum,
            "nn.NLLLoss()(nn.LogSoftmax(dim=1)(x), target)",
            call="nn.NLLLoss(reduction={reduction}{opts})(nn.LogSoftmax(dim=1)({x}), {t})",
        ),
        Binding(
            "F.nll_loss",
            "torch.nn.functional.nll_loss",
            logp_caps,
            lambda x, i: F.nll_loss(_channels_first(x), i.target, **_nll_kwargs(i)),
            weight_sum,
            "F.nll_loss(x, target) on log-probabilities as given (they need not normalise)",
            call="F.nll_loss({x}, {t}{opts}, reduction={reduction})",
        ),
        Binding(
            "nn.NLLLoss",
            "torch.nn.NLLLoss",
            logp_caps,
            lambda x, i: nn.NLLLoss(**_nll_kwargs(i))(_channels_first(x), i.target),
            weight_sum,
            "nn.NLLLoss()(x, target) on log-probabilities as given",
            call="nn.NLLLoss(reduction={reduction}{opts})({x}, {t})",
        ),
        Binding(
            "F.binary_cross_entropy",
            "torch.nn.functional.binary_cross_entropy",
            bce_caps,
            lambda x, i: F.binary_cross_entropy(x, i.target, weight=_bce_weight(i), reduction=i.reduction),
            call="F.binary_cross_entropy({x}, {t}{opts}, reduction={reduction})",
        ),
        Binding(
            "nn.BCELoss",
            "torch.nn.BCELoss",
            bce_caps,
            lambda x, i: nn.BCELoss(weight=_bce_weight(i), reduction=i.reduction)(x, i.target),
            call="nn.BCELoss(reduction={reduction}{opts})({x}, {t})",
        ),
        Binding(
            "F.binary_cross_entropy_with_logits",
            "torch.nn.functional.binary_cross_entropy_with_logits",
            bcel_caps,
            lambda x, i: F.binary_cross_entropy_with_logits(
                x, i.target, weight=_bce_weight(i), pos_weight=i.pos_weight, reduction=i.reduction
            ),
            call="F.binary_cross_entropy_with_logits({x}, {t}{opts}, reduction={reduction})",
        ),
        Binding(
            "nn.BCEWithLogitsLoss",
            "torch.nn.BCEWithLogitsLoss",
            bcel_caps,
            lambda x, i: nn.BCEWithLogitsLoss(weight=_bce_weight(i), pos_weight=i.pos_weight, reduction=i.reduction)(
                x, i.target
            ),
            call="nn.BCEWithLogitsLoss(reduction={reduction}{opts})({x}, {t})",
        ),
        Binding(
            "F.multilabel_soft_margin_loss",
            "torch.nn.functional.multilabel_soft_margin_loss",
            msm_caps,
            lambda x, i: F.multilabel_soft_margin_loss(x, i.target, weight=_bce_weight(i), reduction=i.reduction),
            Convention(mean_last_axis=True),
            "per-sample loss is the mean over the C labels",
            call="F.multilabel_soft_margin_loss({x}, {t}{opts}, reduction={reduction})",
        ),
    ]


#: the most chunks of rows a linear_ce binding with a fixed small chunk is timed with (timing_unsupported)
TIMED_CHUNKS_MAX = 64


class TorchAdapter(FrameworkAdapter):
    name = "torch"
    #: the xdist worker groups (xentcheck.protocol.WorkerGroup); the ranks order all adapters' groups as
    #: they are handed out: the compiled checks first (1-3 s of compiling per graph), then the longest
    #: eager groups (docs/performance.md)
    worker_groups = (*WorkerGroup.compiled_by_dtype("torch", 0), WorkerGroup("torch", 20))
    dialect = Dialect(
        imports="import torch\nimport torch.nn as nn\nimport torch.nn.functional as F",
        array=lambda lit, dt: f"torch.tensor({lit}, dtype=torch.{dt})",
        index=lambda lit: f"torch.tensor({lit})",
        grad="x.requires_grad_(True)\nloss = loss_fn(x)\nloss.backward(cot)\ngrad = x.grad",
        options={
            "class_weight": "weight=class_weight",
            "pos_weight": "pos_weight=pos_weight",
            "ignore_index": "ignore_index=ignore_index",
            "label_smoothing": "label_smoothing=label_smoothing",
        },
        channels_first=lambda name: f"{name}.movedim(-1, 1)",
        native_channels_first=True,
        compile="loss_fn = torch.compile(loss_fn, dynamic=False)",
    )
    compile_whole_step = False  # torch.compile the loss; autograd (AOTAutograd's compiled backward) runs outside

    def environment(self) -> dict:
        env = {
            "torch": torch.__version__,
            "torch.threads": torch.get_num_threads(),
            "torch.cuda": torch.version.cuda or "none",
        }
        if torch.cuda.is_available():
            env["torch.device"] = torch.cuda.get_device_name(0)
        env.update(linear_ce.environment())  # the optional linear_ce libraries (Liger-Kernel, Cut Cross-Entropy)
        return env

    def bindings(self) -> list[Binding]:
        devices = frozenset({"cpu", "cuda"}) if torch.cuda.is_available() else frozenset({"cpu"})
        return self.declare(_bindings() + linear_ce.bindings(), devices, self.environment())

    def asarray(self, a, dtype):
        return torch.as_tensor(np.asarray(a), dtype=_TORCH_DTYPES[dtype], device=self.device)

    def asindex(self, a):
        return torch.as_tensor(np.asarray(a), dtype=torch.int64, device=self.device)

    def value_and_vjp(self, f, x, cotangent):
        x = x.detach().requires_grad_(True)
        y = f(x)
        (g,) = torch.autograd.grad(y, x, grad_outputs=cotangent if y.ndim else None)
        return y.detach(), g

    def compile(self, f):
        # A fresh Dynamo state per compiled call: every binding and shape gets its own static-shape
        # graph (no shared automatic-dynamic graph, no silent eager fallback at the recompile limit),
        # and the first call's time is that compile.
        torch._dynamo.reset()
        return torch.compile(f, dynamic=False)

    def block(self, out):
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.synchronize()

    def set_threads(self, n):
        torch.set_num_threads(n)

    def bare(self, binding_name, problem, *, grad):
        """Hand-written native ``F.cross_entropy`` on index targets (the adapter-overhead baseline)."""
        if binding_name != "F.cross_entropy" or problem.target_kind != "index" or problem.x.ndim != 2:
            return None
        x = torch.as_tensor(problem.x, dtype=_TORCH_DTYPES[problem.dtype], device=self.device)
        t = torch.as_tensor(problem.target, device=self.device)
        red = problem.reduction

        def forward():
            y = F.cross_entropy(x, t, reduction=red)
            self.block(y)
            return y

        def forward_backward():
            xr = x.detach().requires_grad_(True)
            y = F.cross_entropy(xr, t, reduction=red)
            (g,) = torch.autograd.grad(y, xr, grad_outputs=None if y.ndim == 0 else torch.ones_like(y))
            self.block(g)
            return y, g

        return forward_backward if grad else forward

    def exp_kernels(self):
        """Candidates for the floor's exp throughput (name -> factory(n, dtype)). On a device, a fused
        chain of EXP_CHAIN exps per loaded element (one compiled kernel), so that it measures the exp
        units rather than memory bandwidth (see xentcheck.bench.floor)."""
        if self.device != "cpu":

            def chain(n, dtype):
                a = torch.rand(max(1, n // EXP_CHAIN), dtype=_TORCH_DTYPES[dtype], device=self.device)
                f = torch.compile(_exp_chain, dynamic=False)
                return lambda: self.block(f(a))

            return {f"torch.compile(exp chain of {EXP_CHAIN}) on the device": chain}

        def eager(n, dtype):
            a = torch.rand(n, dtype=_TORCH_DTYPES[dtype], device=self.device)
            out = torch.empty_like(a)
            return lambda: self.block(torch.exp(a, out=out))

        def compiled(n, dtype):
            a = torch.rand(n, dtype=_TORCH_DTYPES[dtype], device=self.device)
            f = torch.compile(torch.exp, dynamic=False)
            return lambda: self.block(f(a))

        return {"torch.exp": eager, "torch.compile(torch.exp)": compiled}

    def read_kernels(self):
        """Candidates for the floor's read bandwidth on the device (name -> factory(nbytes))."""
        if self.device == "cpu":
            return {}  # NumPy's kernels measure the host

        def total(nbytes):
            a = torch.ones(nbytes // 4, device=self.device)
            return lambda: self.block(a.sum())

        def largest(nbytes):
            a = torch.ones(nbytes // 4, device=self.device)
            return lambda: self.block(a.amax())

        return {"torch.sum on the device": total, "torch.amax on the device": largest}

    def device_cache_bytes(self):
        """The device's L2 cache (bytes), which a read buffer must far exceed."""
        if self.device == "cpu" or not torch.cuda.is_available():
            return None
        return int(getattr(torch.cuda.get_device_properties(torch.device(self.device)), "L2_cache_size", 0)) or None

    def device_peak_bytes(self, call):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        out = call()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - before
        del out
        return peak

    def matmul_kernels(self):
        """torch's own matmul for the linear_ce time floor (name -> factory(n, dtype)): ``torch.mm`` of two
        n x n matrices into a preallocated output, on the run's device."""

        def mm(n, dtype):
            g = torch.Generator(device=self.device).manual_seed(0)
            a, b = (torch.randn(n, n, generator=g, dtype=_TORCH_DTYPES[dtype], device=self.device) for _ in "ab")
            out = torch.empty(n, n, dtype=_TORCH_DTYPES[dtype], device=self.device)
            return lambda: self.block(torch.mm(a, b, out=out))

        return {"torch.mm": mm}

    def host_allocator_peak_bytes(self, call):
        """The peak bytes torch's CPU allocator held during one ``call`` above what it held before (None on
        a device): the running sum of the profiler's memory events (``profile_memory=True``), the CPU
        counterpart of ``torch.cuda.max_memory_allocated``. Counts the tensors torch allocates only."""
        if self.device != "cpu":
            return None
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            out = call()
            del out
        sizes = [(e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
        running = peak = 0
        for _, nbytes in sorted(sizes, key=lambda s: s[0]):  # stable: same-instant events keep their order
            running += nbytes
            peak = max(peak, running)
        return peak

    def timing_unsupported(self, binding, problem=None):
        """Why ``binding`` is not timed on ``problem`` here (None: it is): Triton kernels on the CPU run in
        Triton's interpreter, orders of magnitude slower than compiled code, so their time says nothing;
        a binding declared with a small fixed chunk of rows (``batch_chunk_size=4``, so that the
        conformance checks' small inputs span several chunks) is timed only up to
        :data:`TIMED_CHUNKS_MAX` chunks (at 256 x 128 x 32000 its 64 chunks take 13 s a forward on 2 CPU
        cores; at 8192 rows it would be 2048 chunks)."""
        interpreted = self.device == "cpu" and os.environ.get("TRITON_INTERPRET") == "1"
        if interpreted and binding.api.startswith("liger_kernel"):
            return "Triton kernels run in Triton's interpreter on the CPU (TRITON_INTERPRET=1): timed on a GPU only"
        rows = re.search(r"batch_chunk_size=(\d+)", binding.doc)
        if rows and problem is not None:
            chunks = -(-problem.x.shape[0] // int(rows[1]))
            if chunks > TIMED_CHUNKS_MAX:
                return (
                    f"{rows[0]} (declared for the conformance checks) makes {chunks} chunks of rows here: timed up to "
                    f"{TIMED_CHUNKS_MAX}; torch's own chunking is timed as F.linear_cross_entropy.chunked_default"
                )
        return None

    def release(self):
        super().release()
        linear_ce.release()

    def to_numpy(self, t):
        t = t.detach()
        name = str(t.dtype).removeprefix("torch.")
        return t.to("cpu", torch.float64).numpy(), name


def _exp_chain(a):
    """EXP_CHAIN dependent exps per element (exp(-y) stays in (0, 1]); compiled into one kernel."""
    for _ in range(EXP_CHAIN):
        a = torch.exp(-a)
    return a


ADAPTER = TorchAdapter()
