"""``reasonrec localize`` (#17): what an intent text means in the catalogue.

Analysts ask "what does 'space battles' mean in our catalogue?"; the answer is
the top-k items the divergent stage's localizer (``reasoning.localizer``)
would attach to that intent, with their weights. :func:`register` adds the
command to the CLI's app; the CLI's helpers are looked up when it runs, so this
module never imports ``reasonrec.cli`` at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from reasonrec import cli_common as common
from reasonrec.cli_common import CommandGroups

class LocalizeUserError(ValueError):
    """A problem the user can fix (no encoder, no text); printed as one line by ``cli.main``."""


def localize_texts(localizer: Any, texts: list[str], k: int) -> dict[str, Any]:
    """``{"results": [{"text", "items": [{"item_id", "title", "weight"}]}]}`` for ``texts``."""
    catalogue = localizer.catalogue
    results = []
    for text in texts:
        items = [{"item_id": catalogue[index].item_id, "title": catalogue[index].display_name,
                  "weight": weight} for index, weight in localizer.localize(text, k)]
        results.append({"text": text, "items": items})
    return {"results": results}


def _human(payload: dict[str, Any]) -> str:
    lines = []
    for result in payload["results"]:
        lines.append(result["text"])
        lines += [f"  {rank}. {item['title']}  ({item['weight']:.2f})"
                  for rank, item in enumerate(result["items"], start=1)]
        if not result["items"]:
            lines.append("  no catalogue item")
    return "\n".join(lines)


def register(groups: CommandGroups) -> None:
    """Add ``localize`` to the CLI."""

    @groups.root.command("localize")
    def localize_command(
            ctx: typer.Context,
            texts: list[str] = typer.Option(..., "--text",
                                            help="An intent text; repeat for several."),
            k: int = typer.Option(5, "--k", min=1, max=100, help="Items per text."),
            encoder: Optional[Path] = typer.Option(
                None, "--encoder", help="A sentence-transformers directory (default: the "
                                        "packaged all-MiniLM-L6-v2)."),
            as_json: bool = typer.Option(False, "--json")) -> None:
        """The catalogue items an intent text is localized to, best first, with weights."""
        from reasoning.backend import ModelFileError
        from reasoning.localizer import open_localizer

        texts = [t.strip() for t in texts]
        if not all(texts):
            raise LocalizeUserError("--text must not be empty")
        studio = common.studio(ctx)
        overrides = {"encoder_path": str(encoder.expanduser()) if encoder else None}
        config = common.config(ctx).reasoning_settings(**overrides)
        try:
            localizer = open_localizer(studio.dataset, config)
            payload = localize_texts(localizer, texts, k)
        except ModelFileError as exc:
            raise LocalizeUserError(str(exc)) from None
        common.emit(payload, as_json, _human(payload))
