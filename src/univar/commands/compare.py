"""``univar compare``: distances between classes with bootstrap intervals, nearest neighbours, a heatmap and a
dendrogram, and a Mantel test against questionnaire ratings where the data has them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer
from rich.markup import escape

from univar.analysis import class_distances, nearest_neighbours, questionnaire_validity
from univar.commands import DataArg, EncoderOpt, MapOpt, OutDir, SeedOpt, app, embed_data, err, load_data, out, written
from univar.errors import UnivarError
from univar.files import write_json
from univar.progress import step
from univar.qa import class_names
from univar.viz import dendrogram_png, heatmap_png


@app.command()
def compare(
    data: DataArg,
    encoder: EncoderOpt = "univar",
    out_dir: OutDir = Path("compare-out"),
    bootstrap: Annotated[int, typer.Option(help="Bootstrap replicates for the confidence intervals (0: none).")] = 200,
    neighbours: Annotated[int, typer.Option(help="Nearest classes listed per class.")] = 3,
    seed: SeedOpt = 0,
    map_: MapOpt = None,
) -> None:
    """Distances between classes (cosine of means, energy distance) with bootstrap CIs, nearest neighbours,
    distances.csv + heatmap.png + dendrogram.png; a Mantel test against questionnaire ratings when present."""
    if bootstrap < 0:
        raise UnivarError(f"--bootstrap must be 0 or more, got {bootstrap}")
    if neighbours < 1:
        raise UnivarError(f"--neighbours must be at least 1, got {neighbours}")
    table = load_data(data, map_)
    enc, vectors = embed_data(table, encoder)
    labels = class_names(table)
    with step(f"distances between {len(set(labels.tolist()))} classes"
              + (f" with {bootstrap} bootstrap resamples" if bootstrap else "")):
        dist, near = write_compare_files(vectors, labels, out_dir, enc.name, " + ".join(data),
                                         groups=table["question"].to_numpy(), n_boot=bootstrap, seed=seed,
                                         neighbours=neighbours)
    ci_pct = round(100 * dist.ci)
    out.print(f"[bold]nearest classes[/bold] ({enc.name}; cosine distance between class means"
              + (f" [{ci_pct}% bootstrap CI]" if bootstrap else "") + "; energy distance)")
    index = {c: i for i, c in enumerate(dist.classes)}
    for name, group in near.groupby("class", sort=False):
        out.print(escape(name))
        for row in group.itertuples(index=False):
            i, j = index[name], index[row.neighbour]
            ci = f"  [{dist.cosine_lo[i, j]:.4f}, {dist.cosine_hi[i, j]:.4f}]" if bootstrap else ""
            out.print(f"  {row.rank}  {escape(row.neighbour):<28} {row.distance:7.4f}{ci}   "
                      f"energy {dist.energy[i, j]:.4f}", highlight=False)
    if "rating" in table.columns and "value" in table.columns and len(dist.classes) >= 3:
        try:
            validity = questionnaire_validity(table, labels, dist.matrix("cosine"))
        except UnivarError as exc:
            err.print(f"no questionnaire check: {exc}")
        else:
            write_json(out_dir / "mantel.json", validity.to_dict())
            r = validity.result
            out.print(f"questionnaire check (Mantel, {r.n} classes, {validity.n_values} values): r = {r.r:.3f}, "
                      f"p = {r.p:.4f} ({'exact, all' if r.exact else 'random'} {r.permutations} permutations)")
    out.print(f"written to {written(out_dir)}")


# --- the files `univar compare` writes (the demo writes the same) -------------------------------------

def write_compare_files(vectors: np.ndarray, labels: Sequence[str], out_dir: str | Path, encoder_name: str,
                        source: str, *, groups: Sequence[str] | None = None, n_boot: int = 200, seed: int = 0,
                        neighbours: int = 3):
    """Class distances with CIs -> ``distances.csv``, ``neighbours.csv``, ``heatmap.png`` (cosine),
    ``heatmap_energy.png`` and ``dendrogram.png``. Returns ``(distances, neighbours_frame)``.

    ``groups`` are the questions of the QAs: shared questions make them the bootstrap's units."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dist = class_distances(vectors, labels, groups=groups, n_boot=n_boot, seed=seed)
    dist.long().to_csv(out_dir / "distances.csv", index=False, float_format="%.6f")
    cos = dist.matrix("cosine")
    k = min(neighbours, len(dist.classes) - 1)
    near = nearest_neighbours(cos, k)
    energy_near = nearest_neighbours(dist.matrix("energy"), k)
    near["energy_neighbour"] = energy_near["neighbour"].to_numpy()
    near["energy"] = energy_near["distance"].to_numpy()
    near.to_csv(out_dir / "neighbours.csv", index=False, float_format="%.6f")
    ci = round(100 * dist.ci)
    heatmap_png(cos, out_dir / "heatmap.png",
                f"Cosine distance between class mean value vectors · {encoder_name} · {source}"
                + (f"\n(cells: estimate [{ci}% bootstrap CI])" if len(cos) <= 8 and dist.n_boot else ""),
                label="1 - cosine(mean, mean)",
                lo=pd.DataFrame(dist.cosine_lo) if dist.n_boot else None,
                hi=pd.DataFrame(dist.cosine_hi) if dist.n_boot else None)
    heatmap_png(dist.matrix("energy"), out_dir / "heatmap_energy.png",
                f"Energy distance between class QA distributions · {encoder_name} · {source}",
                label="energy distance")
    dendrogram_png(cos, out_dir / "dendrogram.png",
                   f"Classes clustered by value distance (average linkage, cosine) · {encoder_name}",
                   label="1 - cosine(mean, mean)")
    return dist, near
