"""``univar datasets``: the bundled datasets and which carry stance labels."""

from __future__ import annotations

from univar.commands import app, out
from univar.data import BUNDLED, STANCE_LABELS


@app.command("datasets")
def datasets() -> None:
    """List the bundled datasets (use them as bundled:<name>) and which carry stance labels."""
    for name, (_, about) in sorted(BUNDLED.items()):
        out.print(f"[bold]bundled:{name}[/bold]  {about}", markup=True, highlight=False)
        if name in STANCE_LABELS:
            out.print(f"    stance labels: {STANCE_LABELS[name]}", markup=False, highlight=False)
