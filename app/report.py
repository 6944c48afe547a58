"""The app's stakeholder export: the library's report (``reasonrec.report``) under the lock.

The report is built below the app so that ``reasonrec report`` writes the same
file; this module only serializes the shared explainer (its torch modules and
caches serve every browser session).
"""

from __future__ import annotations

from typing import Any

from reasonrec.report import (CounterfactualState, ReportInput, report_html, report_input,
                              report_json)

__all__ = ["CounterfactualState", "ReportInput", "export_input", "report_html", "report_json"]


def export_input(handle: Any, point: Any, state: CounterfactualState) -> ReportInput:
    """The report of the page's scored ``point`` with the switches in ``state``.

    Args:
        handle: the app's ``FusionHandle`` (explainer and its lock).
        point: the page's scored point (not rebuilt).
        state: what is switched off now.
    """
    with handle.lock:
        return report_input(handle.explainer, point, state)
