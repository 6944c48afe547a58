"""Per-user inputs that a strategy needs beyond the reasoning graph, built outside ``models/``.

LLM4SBR needs LLM-inferred interests per window step and zero-shot LM ranking
needs per-candidate LM scores. Both come from the local LLM, which lives in
``reasoning/``; the facade (``reasonrec.fusion``) therefore hands the workspace
one :class:`InputProvider` per such need, and the workspace asks it for the
sampled users' inputs only when a variant that reads them is trained,
evaluated or explained.

A provider returns, per user token, whatever its strategy's tensorizer reads
(``StrategySpec.sample_inputs`` finds it in ``UserGraph.extras[need]``). A
provider that lacks inputs raises :class:`MissingInputsError` with the command
that builds them; it never returns stand-ins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from torch import Tensor

from models.fusion.strategy import Need

if TYPE_CHECKING:
    from models.fusion.samples import PointSet, UserGraph


class MissingInputsError(LookupError):
    """Sampled users whose inputs are not built; the message says how to build them."""


class InputProvider(Protocol):
    """Builds (or loads) one kind of per-user input for the workspace's sample.

    Attributes:
        need: the :class:`Need` it satisfies.
    """

    need: Need

    def identity(self) -> str:
        """What the inputs depend on (their store, model, prompt version): it joins the
        fused run's fingerprint, so new inputs train a new run."""
        ...

    def provide(self, users: Sequence[UserGraph], points: PointSet,
                item_table: Tensor) -> Mapping[str, Any]:
        """The inputs of every user in ``users``, by user token.

        Args:
            users: the sampled users' placed graphs (window, history, offset).
            points: their points with E_base (a provider ranking the base's top-N
                reads ``points.e_base`` and ``item_table``).
            item_table: the base model's output item table ``[n_items + 1, d]``.

        Raises:
            MissingInputsError: some users' inputs are not built (names the command).
        """
        ...
