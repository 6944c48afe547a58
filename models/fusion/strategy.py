"""What a fusion strategy declares, so that fitting, the bench and explanations need no `if`.

A strategy is two things: its trained model, a
:class:`models.fusion.base.FusionStrategy` (forward, collate, branches,
training hooks), and a :class:`StrategySpec`, which says

* which per-user inputs it needs (:class:`Need`), which the workspace builds
  and caches (reasoning graphs from the graph source, the intent table from
  the text encoder, cached on disk);
* how one user at one window step becomes the model's per-sample inputs
  (:meth:`StrategySpec.sample_inputs`, the tensorizer; the model's ``collate``
  batches them);
* its constructor arguments from the config (:meth:`StrategySpec.model_kwargs`);
* what an explanation can remove and the inputs without it
  (:attr:`StrategySpec.removable`, :meth:`StrategySpec.counterfactual_input`).

The explainer reads only the small :class:`Counterfactuals` protocol (which a
bound variant, ``models.fusion.samples.Variant``, implements), never a
strategy class.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import networkx as nx
import numpy as np
from torch import Tensor

from models.explain_removal import Removal
from models.fusion.registry import StrategyKind
from models.graph_data import GraphOptions, GraphPair, IntentIndex, counterfactual_pair

if TYPE_CHECKING:
    from models.fusion.base import FusionStrategy
    from models.fusion.samples import UserGraph


class Need(Enum):
    """A per-user input a strategy reads, besides the frozen base model's E_base."""

    #: the session window of the user's reasoning graph (every strategy: the
    #: sample's points are the graph's window steps)
    SESSION = "session window"
    #: the reasoning graph itself (chains, intents, candidates)
    REASONING_GRAPH = "reasoning graph"
    #: #3's text-encoder vectors of the sample's intent texts (cached on disk)
    INTENT_TABLE = "intent table"
    #: per-candidate LM log-likelihoods (zero-shot LM ranking; not built yet)
    LM_SCORES = "LM scores"
    #: LLM-inferred long- and short-term interests per window (LLM4SBR; not built yet)
    LLM_INTERESTS = "LLM interests"


class RemovableKind(Enum):
    """What a counterfactual can take out of a user's point, for a strategy that reads it."""

    CHAIN = "chain"
    INTEREST = "intent or candidate"
    REASONING_EDGE = "chain or diverge edge"
    SESSION_ITEM = "session item"


@dataclass(frozen=True)
class StrategyContext:
    """What the workspace built that constructor arguments may read.

    Attributes:
        intents: the intent rows of the sample's graphs.
        intent_table: their text-encoder vectors ``[len(intents), text_dim]``,
            or None (not needed, or a learned table in LLM-free tests).
        gnn_steps: gated propagation steps of graph encoders (``fusion.gnn_steps``).
        provided: the sample's provided inputs by need, then user token (only the
            needs the variant reads; e.g. LLM4SBR reads its interests' width).
    """

    intents: IntentIndex
    intent_table: Tensor | None
    gnn_steps: int
    provided: Mapping[Need, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class InputNote:
    """A provided input a model read at a point, for its explanation (e.g. an LLM interest).

    Attributes:
        branch: the model branch that reads it: ``branch_effects`` measures zeroing it.
        label: what it is, in words ("long-term interest").
        text: its text (untrusted: LLM output).
        items: ``(catalogue index, weight)`` of the items it stands for.
    """

    branch: str
    label: str
    text: str
    items: tuple[tuple[int, float], ...] = ()


@dataclass(frozen=True)
class ModelInput:
    """One point's inputs after a removal.

    Attributes:
        session: the window items left (window order), from which E_base is
            recomputed when it differs from the point's window prefix.
        inputs: the per-sample strategy inputs (for ``FusionStrategy.collate``).
    """

    session: tuple[int, ...]
    inputs: Mapping[str, Any]

    def key(self) -> bytes:
        """Bytes equal exactly when two inputs give the model the same input.

        Every tensor attribute of every input counts (shape and values);
        bookkeeping that is not a tensor (node ids) does not.
        """
        parts = [str(len(self.session)).encode(),
                 np.asarray(self.session, dtype=np.int64).tobytes()]
        for name in sorted(self.inputs):
            value = self.inputs[name]
            tensors = ({k: value[k] for k in sorted(value.keys())} if hasattr(value, "keys")
                       else {"": value})
            for field_name, tensor in tensors.items():
                if isinstance(tensor, Tensor):
                    parts += [f"{name}.{field_name}{tuple(tensor.shape)}".encode(),
                              tensor.numpy().tobytes()]
        return b"|".join(parts)


class Counterfactuals(Protocol):
    """What the explainer needs of a fused model's variant: nothing strategy-specific.

    ``strategy`` is the registry kind (checked against the model's ``name``).
    """

    name: str
    strategy: StrategyKind

    @property
    def removable(self) -> frozenset[RemovableKind]: ...

    def sample_inputs(self, user: UserGraph, step: int) -> dict[str, Any]: ...

    def counterfactual_input(self, graph: nx.DiGraph, intents: IntentIndex, step: int,
                             removal: Removal) -> ModelInput: ...

    def describe_inputs(self, user: UserGraph, step: int) -> list[InputNote]: ...


class StrategySpec(ABC):
    """Declares one fusion strategy; subclasses are registered in ``models.fusion.registry``.

    Subclasses set the class attributes and implement the abstract methods.

    Attributes:
        kind: the registry kind.
        needs: the per-user inputs it reads.
        removable: what a counterfactual can take out (removing anything else
            leaves its inputs, and so its scores, unchanged).
    """

    kind: ClassVar[StrategyKind]
    needs: ClassVar[frozenset[Need]]
    removable: ClassVar[frozenset[RemovableKind]]

    @classmethod
    @abstractmethod
    def model_class(cls) -> type[FusionStrategy]:
        """The trained model. Its constructor is ``(n_items, base_dim, *, item_init,
        identity_init, **model_kwargs)``."""

    @abstractmethod
    def parse_options(self, raw: Mapping[str, Any]) -> Any:
        """A variant's plain options as this strategy's typed options.

        Raises:
            ValueError: an unknown option, naming it.
        """

    @abstractmethod
    def sample_inputs(self, user: UserGraph, step: int, options: Any) -> dict[str, Any]:
        """The tensorizer: the per-sample inputs of ``user`` at window ``step``."""

    @abstractmethod
    def model_kwargs(self, context: StrategyContext, options: Any) -> dict[str, Any]:
        """Constructor arguments. All but tensors are saved as JSON in ``fusion.json``; a
        tensor must be a buffer of the model (restored from ``model.pt``), its shape
        given by the JSON arguments."""

    @abstractmethod
    def counterfactual_input(self, graph: nx.DiGraph, intents: IntentIndex, step: int,
                             removal: Removal, options: Any) -> ModelInput:
        """The per-sample inputs at ``step`` of ``graph`` with ``removal`` applied."""

    def describe_inputs(self, user: UserGraph, step: int, options: Any) -> list[InputNote]:
        """Provided inputs the model reads at ``step``, for explanations (none by default:
        a graph strategy's inputs are explained by its paths)."""
        return []


def removed_pair(graph: nx.DiGraph, intents: IntentIndex, step: int, removal: Removal,
                 options: GraphOptions) -> GraphPair:
    """G_rea and G_div at ``step`` of ``graph`` with ``removal`` applied.

    Edges are taken out of the whole graph first; ``counterfactual_pair`` then
    cuts the prefix and removes chains and nodes, and with them the intents
    and candidates nothing proposes any more.
    """
    if removal.edges:
        graph = graph.copy()
        graph.remove_edges_from(removal.edges)
    return counterfactual_pair(graph, intents, step, chains=removal.chains, nodes=removal.nodes,
                               options=options)
