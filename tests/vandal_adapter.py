"""An external adapter whose kernel writes into its inputs: it zeroes the logits it is handed, in place,
and then answers honestly for zeros (as a fused kernel that stores its gradient in the input buffer
would leave them). Usable as ``--adapter=tests.vandal_adapter:ADAPTER``; every check must be an
``error`` naming it, never a ``pass``, and the bindings after it must see pristine inputs."""

from __future__ import annotations

from .fake_adapter import FakeAdapter


class Vandal(FakeAdapter):
    """The honest fake, after zeroing ``problem.x`` in place."""

    def run(self, binding, problem, **kw):
        problem.x[...] = 0.0
        return super().run(binding, problem, **kw)


ADAPTER = Vandal("vandal")
