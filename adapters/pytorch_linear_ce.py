"""Bindings of op ``linear_ce`` on PyTorch tensors: torch's own fused linear + cross-entropy, the
unfused baseline, and the torch-family kernels of Liger-Kernel and Cut Cross-Entropy.

They are bindings of the torch adapter (``adapters/pytorch.py`` lists them), not adapters of their own:
Liger-Kernel and Cut Cross-Entropy are libraries of functions on torch tensors, differentiated by
torch's autograd, so array conversion, devices and autodiff are torch's (docs/adapters.md). Each
library is optional: where it is not installed its bindings are absent and the run says so in one
line (:func:`missing`).

Every binding is a ``step``: it differentiates the loss itself with respect to X, W and the bias and
returns ``(loss, gradient)`` with the gradient in the flat layout of :mod:`xentcheck.linear_ce` (dX,
dW, db raveled and joined). Rows of a [B, T, D] input are flattened to [B T, D] as every one of these
APIs is called in training; an unreduced loss comes back shaped [B, T].

On a machine without CUDA, Liger-Kernel's Triton kernels run in Triton's interpreter
(``TRITON_INTERPRET=1``, set before Triton is imported: :func:`adapters.load_triton_first`): slow, so
the default run keeps its sizes small.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Callable
from dataclasses import replace
from importlib.metadata import PackageNotFoundError, version

import torch
import torch.nn.functional as F
from torch import nn

from xentcheck.problem import Problem
from xentcheck.reference import Convention

from . import ALL_FLOATS, Binding, Capabilities, Inputs, load_triton_first

# Triton before any TensorFlow and, without CUDA, in its interpreter (Liger-Kernel's kernels on CPU)
load_triton_first()

_TORCH_DTYPES = {
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
    "float64": torch.float64,
}
#: optional libraries: distribution name -> module
LIBRARIES = {"liger-kernel": "liger_kernel", "cut-cross-entropy": "cut_cross_entropy", "triton": "triton"}
#: PyTorch documents the mean of index targets as divided by the targets' weight sum (ignored rows excluded)
WEIGHT_SUM = Convention(mean_by="weight_sum")
#: Cut Cross-Entropy drops ignored rows before F.cross_entropy (no class weights): a mean over counted rows
VALID_COUNT = Convention(mean_by="valid_count")
_ROW_OPTIONS = frozenset({"ignore_index"})


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def environment() -> dict:
    """Versions of the optional linear_ce libraries whose bindings are bound (for the results file and
    the registry's version ranges: a library that is installed but cannot run, without Triton, is
    listed under ``linear_ce.skipped`` instead)."""
    out = {"linear_ce.skipped": "; ".join(missing())} if missing() else {}
    for dist, module in LIBRARIES.items():
        if _installed(module) and (module == "triton" or _installed("triton")):
            try:
                out[dist] = version(dist)
            except PackageNotFoundError:
                out[dist] = "unknown"
    return out


def missing() -> list[str]:
    """One line per optional library whose bindings are skipped, and why (both import Triton)."""
    out = [
        f"{dist} is not installed; its linear_ce bindings are skipped (pip install 'xentcheck[linear]')"
        for dist, module in LIBRARIES.items()
        if module != "triton" and not _installed(module)
    ]
    if not _installed("triton"):
        out += [
            f"{dist} needs triton, which is not installed; its linear_ce bindings are skipped"
            for dist, module in LIBRARIES.items()
            if module != "triton" and _installed(module)
        ]
    return out


def _ignore(p: Problem) -> int:
    return -100 if p.ignore_index is None else p.ignore_index


#: the last classifier W converted (its NumPy array, dtype, device) and the tensor: a benchmark calls a
#: binding many times on one W, which would otherwise be copied (to the GPU: a gigabyte at 128256 x 4096)
#: inside every timed call. The array is held, so its id cannot be reused by another.
_CLASSIFIER: list = []


def classifier(a, dtype: torch.dtype, device) -> torch.Tensor:
    """W as a tensor, converted once per array, dtype and device (a fresh Parameter wraps it per call)."""
    key = (id(a), dtype, str(device))
    if not _CLASSIFIER or _CLASSIFIER[0] != key:
        _CLASSIFIER[:] = [key, a, torch.as_tensor(a, dtype=dtype, device=device)]
    return _CLASSIFIER[2]


def release() -> None:
    """Drop the converted classifier (the benchmark sweep moves on to another input)."""
    _CLASSIFIER.clear()


def _stance(compiled: bool, compiles_itself: bool):
    """Where the library compiles its own function (Cut Cross-Entropy's ``impl='torch_compile'``), eager
    mode runs that function eagerly (the same graph, without Inductor: compiling costs seconds per
    dtype, reduction and soft-cap, more than the default run's budget for the whole op) and compiled
    mode compiles it as the library ships it. Inside a trace of torch.compile (the benchmarks' compiled
    forward), the trace takes the library's function in: no stance is set there (tracing one is an error)."""
    if compiled or not compiles_itself or torch.compiler.is_compiling():
        return contextlib.nullcontext()
    return torch.compiler.set_stance("force_eager")


def _step(
    loss: Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor, Inputs], torch.Tensor],
    compiles_itself: bool = False,
    differentiate: Callable | None = None,
):
    """A ``step`` from ``loss(X2d, W, b, target1d, inputs)``: the loss and the flat gradient (dX, dW, db),
    taken by ``differentiate`` (default ``_differentiate``: one forward, one backward; a calling variant's
    otherwise)."""
    how = differentiate or _differentiate

    def step(x: torch.Tensor, inp: Inputs, compiled: bool):
        with _stance(compiled, compiles_itself):
            return how(loss, x, inp)

    return step


def _differentiate(loss, x: torch.Tensor, inp: Inputs):
    """The loss of ``x`` and its flat gradient with respect to X, W and b (fresh leaves each call)."""
    xl, w, b = _leaves(x, inp)
    y = _loss_of(loss, x, xl, w, b, inp)
    return y.detach(), torch.cat([g.reshape(-1) for g in _grads(y, _wrt(xl, w, b), inp)])


def _wrt(xl, w, b) -> list[torch.Tensor]:
    return [xl, w] + ([b] if b is not None else [])


def _leaves(x: torch.Tensor, inp: Inputs, *, x_grad: bool = True, w_grad: bool = True):
    """Fresh X, W (and bias) leaves, each requiring grad as asked: W and b as ``nn.Parameter``s, as the
    module bindings assign them to their ``nn.Linear``, converted from the problem's arrays as the binding
    receives them (the errors layer's malformed W or bias)."""
    p = inp.problem
    dt, dev = _TORCH_DTYPES[p.dtype], x.device
    wm, bias = p.handed_linear()
    xl = x.detach().requires_grad_(x_grad)
    w = nn.Parameter(classifier(wm, dt, dev), requires_grad=w_grad)
    b = None if bias is None else nn.Parameter(torch.as_tensor(bias, dtype=dt, device=dev), requires_grad=w_grad)
    return xl, w, b


def _loss_of(loss, x, xl, w, b, inp: Inputs) -> torch.Tensor:
    y = loss(xl.reshape(-1, xl.shape[-1]), w, b, inp.target.reshape(-1), inp)
    return y.reshape(x.shape[:-1]) if inp.problem.reduction == "none" else y


def _grads(y, wrt, inp: Inputs, **kw) -> list[torch.Tensor]:
    grads = torch.autograd.grad(y, wrt, grad_outputs=inp.cotangent if y.ndim else None, allow_unused=True, **kw)
    return [torch.zeros_like(t) if g is None else g for t, g in zip(wrt, grads, strict=True)]


def _separately(loss, x: torch.Tensor, inp: Inputs):
    """dX with W and b frozen (``requires_grad=False``, as when only the activations are trained), then dW
    and db with X frozen, each from its own forward: the flat gradient (dX, dW, db) of two partial steps."""
    xl, w, b = _leaves(x, inp, w_grad=False)
    y = _loss_of(loss, x, xl, w, b, inp)
    (dx,) = _grads(y, [xl], inp)
    xl, w, b = _leaves(x, inp, x_grad=False)
    dw = _grads(_loss_of(loss, x, xl, w, b, inp), _wrt(xl, w, b)[1:], inp)
    return y.detach(), torch.cat([g.reshape(-1) for g in [dx, *dw]])


def _twice(loss, x: torch.Tensor, inp: Inputs):
    """One forward, two backward passes (``retain_graph=True`` on the first): the second's gradient, which
    must equal the first's (a kernel that frees or scales its saved gradient in the backward fails)."""
    xl, w, b = _leaves(x, inp)
    y = _loss_of(loss, x, xl, w, b, inp)
    _grads(y, _wrt(xl, w, b), inp, retain_graph=True)
    return y.detach(), torch.cat([g.reshape(-1) for g in _grads(y, _wrt(xl, w, b), inp)])


def _forward(loss, compiles_itself: bool = False) -> Callable[[torch.Tensor, Inputs], torch.Tensor]:
    """The forward alone (for probing, eager), with W and b as constants."""

    def fn(x, inp):
        with _stance(False, compiles_itself):
            return _forward_once(loss, x, inp)

    return fn


def _forward_once(loss, x: torch.Tensor, inp: Inputs) -> torch.Tensor:
    xl, w, b = _leaves(x, inp, x_grad=False, w_grad=False)
    return loss(xl.reshape(-1, xl.shape[-1]), w, b, inp.target.reshape(-1), inp)


#: binding name -> its loss ``loss(X2d, W, b, target1d, inputs)`` (scripts/linear_ce_memory.py times these)
LOSSES: dict[str, Callable] = {}
#: the bindings whose library compiles its own function (see ``_stance``)
COMPILES_ITSELF: set[str] = set()


def _binding(
    name: str, api: str, caps: Capabilities, loss, convention=WEIGHT_SUM, doc: str = "", compiles_itself: bool = False
) -> Binding:
    LOSSES[name] = loss
    if compiles_itself:
        COMPILES_ITSELF.add(name)
    fwd, step = _forward(loss, compiles_itself), _step(loss, compiles_itself)
    return Binding(name, api, caps, fwd, convention, doc, step=step)


# -- PyTorch ---------------------------------------------------------------------------------------
def _torch_kwargs(inp: Inputs, b) -> dict:
    p = inp.problem
    return {
        "linear_bias": b,
        "weight": inp.class_weight,
        "reduction": p.reduction,
        "ignore_index": _ignore(p),
        "label_smoothing": p.label_smoothing,
    }


def _functional(options):
    def loss(x, w, b, t, inp):
        return F.linear_cross_entropy(x, w, t, options=options, **_torch_kwargs(inp, b))

    return loss


def _module(options):
    def loss(x, w, b, t, inp):
        p = inp.problem
        m = nn.LinearCrossEntropyLoss(
            w.shape[1],
            w.shape[0],
            bias=b is not None,
            dtype=w.dtype,
            device=w.device,
            reduction=p.reduction,
            weight=inp.class_weight,
            ignore_index=_ignore(p),
            label_smoothing=p.label_smoothing,
            options=options,
        )
        m.linear.weight = w  # the step's own leaves, so their gradients are the module's
        if b is not None:
            m.linear.bias = b
        return m(x, t)

    return loss


def _unfused(x, w, b, t, inp):
    p = inp.problem
    return F.cross_entropy(
        F.linear(x, w, b),
        t,
        weight=inp.class_weight,
        reduction=p.reduction,
        ignore_index=_ignore(p),
        label_smoothing=p.label_smoothing,
    )


def _torch_bindings() -> list[Binding]:
    from torch.nn import LinearCrossEntropyOptions as Options

    caps = Capabilities(
        "linear_ce",
        frozenset({"index"}),
        dtypes=ALL_FLOATS,
        options=frozenset({"class_weight", "ignore_index", "label_smoothing", "bias"}),
        eager_only="bound eagerly so far (the chunked path falls back to eager under torch.compile)",
    )
    # the chunked path documents a fallback to the reference path (with a warning) for label smoothing:
    # not declared, so that every check of a chunked binding runs the chunked code
    chunked = replace(caps, options=caps.options - {"label_smoothing"})
    chunk = 4  # rows per chunk: several chunks even at the catalog's small N
    out = [
        _binding(
            "F.linear+F.cross_entropy",
            "torch.nn.functional.cross_entropy(F.linear(X, W, b))",
            caps,
            _unfused,
            doc="the unfused baseline: the N x V logits materialised in the input dtype",
        ),
        _binding(
            "F.linear_cross_entropy",
            "torch.nn.functional.linear_cross_entropy",
            caps,
            _functional(None),
            doc="options=None: the reference path",
        ),
        _binding(
            "nn.LinearCrossEntropyLoss",
            "torch.nn.LinearCrossEntropyLoss",
            caps,
            _module(None),
            doc="options=None: the reference path",
        ),
        _binding(
            "nn.LinearCrossEntropyLoss.chunked",
            "torch.nn.LinearCrossEntropyLoss",
            chunked,
            _module(Options(batch_chunk_size=chunk, chunking_method=None)),
            doc=f"options=LinearCrossEntropyOptions(batch_chunk_size={chunk}, chunking_method=None)",
        ),
    ]
    out.append(
        _binding(
            "F.linear_cross_entropy.chunked_default",
            "torch.nn.functional.linear_cross_entropy",
            chunked,
            _functional(Options()),
            doc="options=LinearCrossEntropyOptions(): torch's own chunk size and accumulation policy",
        )
    )
    for policy in ("auto", "accurate", "balanced", "compact"):
        opts = Options(batch_chunk_size=chunk, chunking_method=None, acc_policy=policy)
        out.append(
            _binding(
                f"F.linear_cross_entropy.chunked_{policy}",
                "torch.nn.functional.linear_cross_entropy",
                chunked,
                _functional(opts),
                doc=f"options=LinearCrossEntropyOptions(batch_chunk_size={chunk}, acc_policy={policy!r})",
            )
        )
    return out


# -- Liger-Kernel --------------------------------------------------------------------------------
def _liger(accum_dtype):
    def loss(x, w, b, t, inp):
        from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss

        p = inp.problem
        f = LigerFusedLinearCrossEntropyLoss(
            ce_weight=inp.class_weight,
            ignore_index=_ignore(p),
            lse_square_scale=p.z_loss,
            label_smoothing=p.label_smoothing,
            reduction=p.reduction,
            softcap=p.softcap,
            accum_dtype=accum_dtype,
        )
        return f(w, x, t, b)

    return loss


def _liger_unfused(x, w, b, t, inp):
    from liger_kernel.transformers import LigerCrossEntropyLoss

    p = inp.problem
    f = LigerCrossEntropyLoss(
        weight=inp.class_weight,
        ignore_index=_ignore(p),
        lse_square_scale=p.z_loss,
        label_smoothing=p.label_smoothing,
        reduction=p.reduction,
        softcap=p.softcap,
    )
    return f(F.linear(x, w, b), t)


#: what Triton's interpreter (CPU) cannot run: the kernels call ``.to(dtype)`` on a Python float argument
#: (softcap, the class-weight sums), which compiled Triton makes a tensor and the interpreter leaves a float
#: (triton-lang/triton#5965, closed; still so in triton 3.9.0)
INTERPRETER_GAPS = {
    "softcap": "Triton's interpreter (CPU) cannot run Liger's soft-capping: InterpreterError \"'float' object has "
    "no attribute 'to'\" (a Python float argument; triton-lang/triton#5965); checked on a GPU",
    "class_weight": "Triton's interpreter (CPU) cannot run Liger's class weights: InterpreterError \"'float' "
    "object has no attribute 'to'\" (a Python float argument; triton-lang/triton#5965); checked on "
    "a GPU",
}


def _liger_bindings() -> list[Binding]:
    options = frozenset({"class_weight", "ignore_index", "label_smoothing", "bias", "softcap", "z_loss"})
    gaps = () if torch.cuda.is_available() else tuple(INTERPRETER_GAPS.items())
    caps = Capabilities(
        "linear_ce",
        frozenset({"index"}),
        dtypes=ALL_FLOATS,
        options=options - {o for o, _ in gaps},
        unavailable=gaps,
        eager_only="Triton kernels (the interpreter on CPU): torch.compile is not applied to them",
    )
    return [
        _binding(
            "liger.FusedLinearCrossEntropyLoss",
            "liger_kernel.transformers.LigerFusedLinearCrossEntropyLoss",
            caps,
            _liger(None),
            doc="accum_dtype=None: dW and db accumulated in the parameters' dtype",
        ),
        _binding(
            "liger.FusedLinearCrossEntropyLoss.fp32acc",
            "liger_kernel.transformers.LigerFusedLinearCrossEntropyLoss",
            caps,
            _liger(torch.float32),
            doc="accum_dtype=torch.float32",
        ),
        _binding(
            "liger.CrossEntropyLoss+F.linear",
            "liger_kernel.transformers.LigerCrossEntropyLoss",
            caps,
            _liger_unfused,
            doc="Liger's cross-entropy kernel on materialised logits (unfused)",
        ),
    ]


# -- Cut Cross-Entropy ---------------------------------------------------------------------------
def _cce(x, w, b, t, inp):
    from cut_cross_entropy import linear_cross_entropy

    p = inp.problem
    # the library compiles with fullgraph=True: one process running the whole catalog (every dtype,
    # reduction, soft-cap) passes Dynamo's 8 recompiles per function, which a training run never does
    with torch._dynamo.config.patch(recompile_limit=256):
        return linear_cross_entropy(
            x,
            w,
            t,
            ignore_index=_ignore(p),
            softcap=p.softcap,
            reduction=p.reduction,
            impl="torch_compile" if x.device.type == "cpu" else "cce",
        )


def _cce_bindings() -> list[Binding]:
    caps = Capabilities(
        "linear_ce",
        frozenset({"index"}),
        dtypes=ALL_FLOATS,
        options=frozenset({"ignore_index", "softcap"}),
    )
    return [
        _binding(
            "cce.linear_cross_entropy",
            "cut_cross_entropy.linear_cross_entropy",
            caps,
            _cce,
            VALID_COUNT,
            compiles_itself=True,
            doc="impl='torch_compile' on CPU (its function run eagerly in eager mode, compiled in compiled mode), "
            "'cce' (Triton) on a GPU; no bias, no class weights",
        )
    ]


#: how a training loop may call a fused loss other than one forward and one full backward, as bindings of
#: their own (suffix -> (doc, the step's differentiation or None for the value under torch.no_grad)), on one
#: binding of each library (VARIANT_OF), in float32
VARIANTS = {
    "[grad X, then W]": ("dX with W and b frozen, then dW and db with X frozen (two forwards)", _separately),
    "[retain_graph]": ("one forward, a second backward with retain_graph=True: its gradient", _twice),
    "[no_grad]": ("the value under torch.no_grad() with X and W requiring grad (evaluation)", None),
}
VARIANT_OF = (
    "F.linear_cross_entropy",
    "F.linear_cross_entropy.chunked_default",
    "liger.FusedLinearCrossEntropyLoss",
    "cce.linear_cross_entropy",
)


def _variants(b: Binding) -> list[Binding]:
    loss, compiles_itself = LOSSES[b.name], b.name in COMPILES_ITSELF
    # float32 and ignore_index only (its all-ignored rows are where the chunked paths differ): the calling
    # conventions, not the options, are what a variant checks, inside the default run's budget
    caps = replace(
        b.caps,
        dtypes=frozenset({"float32"}),
        options=b.caps.options & {"ignore_index"},
        # (the base binding's check covers its compiled mode; a variant's no_grad value is a plain forward
        # that cannot see the mode, and Cut Cross-Entropy's own compile meets torch.compile's there)
        modes=frozenset({"eager"}),
        eager_only=b.caps.eager_only or "a calling variant is checked eagerly (its binding's compiled mode is checked)",
    )
    out = []
    for suffix, (doc, differentiate) in VARIANTS.items():
        if differentiate is None:

            def value(x, inp, loss=loss):
                with torch.no_grad(), _stance(False, compiles_itself):
                    xl, w, bias = _leaves(x, inp)
                    return _loss_of(loss, x, xl, w, bias, inp)

            out.append(Binding(b.name + suffix, b.api, replace(caps, grad=False), value, b.convention, doc))
        else:
            step = _step(loss, compiles_itself, differentiate)
            out.append(
                Binding(b.name + suffix, b.api, caps, _forward(loss, compiles_itself), b.convention, doc, step=step)
            )
    return out


def bindings() -> list[Binding]:
    """Every linear_ce binding whose library is installed (torch's own always), and the calling variants of
    one binding of each library (VARIANTS)."""
    out = _bindings()
    return out + [v for b in out if b.name in VARIANT_OF for v in _variants(b)]


def _bindings() -> list[Binding]:
    out = _torch_bindings() if hasattr(F, "linear_cross_entropy") else []
    if _installed("liger_kernel") and _installed("triton"):
        out += _liger_bindings()
    if _installed("cut_cross_entropy") and _installed("triton"):  # the package imports triton
        out += _cce_bindings()
    return out
