"""Early stopping on validation NDCG@10 with the best weights kept, as one reusable tracker.

Every trained model's loop (the base models' ``NeuralRecommender.fit`` and the
fused models' ``fit_fusion``; the transcribed RecBole reference keeps its own)
reports each epoch to :class:`EarlyStopping`, which keeps the
:class:`~models.recommenders.base.FitReport`, a copy of the best weights and
the count of epochs without improvement.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

from torch import nn

from models.recommenders.base import EpochLog, FitReport

METRIC = "NDCG@10"


class EarlyStopping:
    """Tracks the best validation score of ``module`` and says when to stop.

    Args:
        module: the model whose ``state_dict`` is kept at its best epoch.
        patience: epochs without a strictly better score before stopping.
        start: validation metrics of the untrained starting point, recorded in the
            report (``start_valid``). None: no start was scored.
        start_is_candidate: the start counts as epoch 0, so a fit where no epoch
            beats it returns the start. False: the first epoch is the first
            candidate, and the start is only reported (a fused model must be a
            trained one to show what its inputs do).
    """

    def __init__(self, module: nn.Module, patience: int,
                 start: Mapping[str, float] | None = None,
                 start_is_candidate: bool = True) -> None:
        if patience < 1:
            raise ValueError(f"patience must be at least 1, got {patience}")
        self.module = module
        self.patience = patience
        self.report = FitReport()
        self.best_score = float("-inf")
        self.best_state: dict | None = None
        self.bad_epochs = 0
        if start is not None:
            self.report.start_valid = dict(start)
            if start_is_candidate:
                self._keep(0, start)

    def _keep(self, epoch: int, valid: Mapping[str, float]) -> None:
        self.best_score, self.bad_epochs = float(valid[METRIC]), 0
        self.best_state = copy.deepcopy(self.module.state_dict())
        self.report.best_epoch, self.report.best_valid = epoch, dict(valid)

    def step(self, epoch: int, loss: float, valid: Mapping[str, float], seconds: float) -> bool:
        """Log an epoch; True when training should stop (``patience`` epochs without gain)."""
        self.report.epochs.append(EpochLog(epoch=epoch, loss=loss, valid_ndcg10=valid[METRIC],
                                           seconds=seconds))
        if valid[METRIC] > self.best_score:
            self._keep(epoch, valid)
        else:
            self.bad_epochs += 1
        return self.bad_epochs >= self.patience

    def restore(self) -> FitReport:
        """Load the best weights into the module; returns the report."""
        if self.best_state is not None:
            self.module.load_state_dict(self.best_state)
        return self.report
