"""Zero-shot LM ranking's per-user input: the stored LM scores of the base model's top-N.

The scores are built offline (``reasonrec fusion lm-scores``, LLM time) into
the data directory's :class:`reasoning.lm_scores.LMScoreStore`; the sample's
scores also ship as a bundle (``assets/lm_scores/<dataset>.jsonl.gz``). This
provider only reads them: it checks that every sampled user's validation and
test points are scored under this workspace's key (base run, N, model,
prompt) and that the stored candidates are exactly the base model's top-N
there, and raises :class:`MissingInputsError` naming the command otherwise.

Only the validation and test points are scored: the interpolation weight is
chosen on validation (nothing is trained on the training points), so their
LLM time would buy nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from models.fusion.inputs import MissingInputsError
from models.fusion.strategy import Need
from reasoning.lm_scores import LMScoreKey, LMScoreStore, Normalization, PointScores, read_bundle

if TYPE_CHECKING:
    from models.fusion.samples import PointSet, UserGraph

#: The roles whose points are scored (see the module docstring).
SCORED_ROLES = ("valid", "test")
BUILD_COMMAND = "reasonrec fusion lm-scores"


def top_candidates(e_base: Tensor, item_table: Tensor, n: int) -> Tensor:
    """The base model's top-``n`` items per row, best first, ties by item index (as ``loo``).

    Shapes:
        ``e_base [B, d]``, ``item_table [n_items + 1, d]`` -> ``[B, n]``.
    """
    scores = e_base @ item_table.T
    scores[:, 0] = -torch.inf
    return torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :n]


@dataclass(frozen=True)
class UserLMScores:
    """One user's scored points, by window step: ``(candidates, normalized LM scores)``."""

    by_step: Mapping[int, tuple[tuple[int, ...], tuple[float, ...]]]


class LMScoreProvider:
    """Reads the LM scores of the workspace's sample (store first, then the shipped bundle).

    Args:
        key: what the scores must have been built with, or a function giving it
            (the facade's hashes the GGUF, only once a variant reads LM scores).
        store_path: the data directory's LM-score database (may not exist yet).
        bundle_path: the shipped bundle, or None.
        normalization: how a title's log-probability becomes its score.
    """

    need = Need.LM_SCORES

    def __init__(self, key: LMScoreKey | Callable[[], LMScoreKey], store_path: Path,
                 bundle_path: Path | None = None,
                 normalization: Normalization = Normalization.PER_TOKEN) -> None:
        self._key = key
        self.store_path = Path(store_path)
        self.bundle_path = Path(bundle_path) if bundle_path is not None else None
        self.normalization = normalization
        self._cost: dict[str, float] | None = None

    @property
    def key(self) -> LMScoreKey:
        if not isinstance(self._key, LMScoreKey):
            self._key = self._key()
        return self._key

    def identity(self) -> str:
        return f"lm-scores:{self.key.digest}:{self.normalization.value}"

    def _stored(self, users: Sequence[str]) -> dict[tuple[str, int], PointScores]:
        found: dict[tuple[str, int], PointScores] = {}
        if self.bundle_path is not None and self.bundle_path.is_file():
            key, points = read_bundle(self.bundle_path)
            if key == self.key:
                found.update({(p.user, p.step): p for p in points})
        if self.store_path.is_file():   # the data directory's scores win over the bundle
            store = LMScoreStore(self.store_path)
            try:
                found.update({(p.user, p.step): p for p in store.points(self.key, users)})
            finally:
                store.close()
        return found

    def provide(self, users: Sequence[UserGraph], points: PointSet,
                item_table: Tensor) -> dict[str, UserLMScores]:
        stored = self._stored([u.user_id for u in users])
        wanted = [i for i, p in enumerate(points.points) if p.role in SCORED_ROLES]
        tops = top_candidates(points.e_base[wanted], item_table, self.key.top_n)
        by_user: dict[str, dict[int, tuple[tuple[int, ...], tuple[float, ...]]]] = {
            u.user_id: {} for u in users}
        missing: list[str] = []
        for row, index in enumerate(wanted):
            point = points.points[index]
            user = point.user.user_id
            scored = stored.get((user, point.step))
            if scored is None:
                missing.append(user)
                continue
            if not _same_top(scored.candidates, tops[row], points.e_base[index], item_table):
                raise ValueError(f"the stored LM scores of user {user} at step {point.step} rank "
                                 f"other candidates than the base model's top-{self.key.top_n} "
                                 f"there; rebuild them with `{BUILD_COMMAND}`")
            by_user[user][point.step] = (scored.candidates,
                                         tuple(scored.scores(self.normalization)))
        if missing:
            names = sorted(set(missing))
            raise MissingInputsError(
                f"{len(names)} of {len(users)} sampled users have no LM scores for base run "
                f"{self.key.base_run}, top-{self.key.top_n}, this model and prompt (e.g. "
                f"{', '.join(names[:5])}); build them with `{BUILD_COMMAND}`")
        self._cost = _mean_cost([stored[(u.user_id, s)] for u in users
                                 for s in by_user[u.user_id]], len(users))
        return {user: UserLMScores(steps) for user, steps in by_user.items()}

    def cost(self) -> dict[str, float]:
        """LLM calls, tokens and seconds per sampled user of the scores :meth:`provide` read."""
        if self._cost is None:
            raise RuntimeError("cost() is known once provide() has read the scores")
        return dict(self._cost)


def _same_top(stored: Sequence[int], top: Tensor, e_base: Tensor, item_table: Tensor,
              tolerance: float = 1e-4) -> bool:
    """Whether ``stored`` is the base model's top-N here, up to near-ties at its edge
    (another torch thread count may round E_base differently in the last bits)."""
    if list(stored) == top.tolist():
        return True
    scores = item_table @ e_base
    floor = float(scores[top[-1]])
    return len(set(stored)) == len(top) and all(float(scores[i]) >= floor - tolerance
                                                for i in stored)


def _mean_cost(points: Sequence[PointScores], users: int) -> dict[str, float]:
    return {"llm_calls": sum(p.calls for p in points) / users,
            "tokens": sum(p.tokens for p in points) / users,
            "llm_seconds": sum(p.seconds for p in points) / users}
