"""``univar embed``: every QA of DATA as a vector, to Parquet (QAs + embedding column) or a ``.npy`` matrix."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from univar.commands import DataArg, DeviceOpt, EncoderOpt, LogOpt, MapOpt, app, err, load_data, output_file
from univar.device import resolve
from univar.encoders.embed import EmbedStats
from univar.encoders.embed import embed as run_embed
from univar.errors import UnivarError
from univar.progress import event, log_to
from univar.qa import qa_texts


@app.command()
def embed(data: DataArg, encoder: EncoderOpt = "univar",
          out_file: Annotated[Path, typer.Option("--out", help="Output: .parquet (QAs + embedding column) or "
                                                               ".npy (matrix).")] = Path("embeddings.parquet"),
          map_: MapOpt = None, device: DeviceOpt = "auto", log: LogOpt = None) -> None:
    """Embed every QA of DATA with an encoder (cached on disk)."""
    with log_to(log):
        _embed(data, encoder, out_file, map_, device)


def _embed(data: list[str], encoder: str, out_file: Path, map_: list[str] | None, device: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from univar.registry import get_encoder  # loads torch: see univar.commands

    suffix = out_file.suffix.lower()
    if suffix not in (".parquet", ".npy"):
        raise UnivarError(f"--out must end in .parquet or .npy, got {out_file.name}")
    resolve(device)  # a GPU that is not there is an error now, before data is read
    start = time.perf_counter()
    table = load_data(data, map_)
    enc = get_encoder(encoder, device)
    stats = EmbedStats()
    with output_file(out_file) as tmp:  # renamed over --out only when complete
        if suffix == ".npy":  # streamed to disk window by window (a memory map)
            vectors = run_embed(qa_texts(table), enc, stats=stats, out=tmp)
            del vectors
        else:
            vectors = run_embed(qa_texts(table), enc, stats=stats)
            arrow = pa.Table.from_pandas(table.reset_index(drop=True), preserve_index=False)
            flat = pa.array(vectors.reshape(-1), type=pa.float32())
            arrow = arrow.append_column("embedding", pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1]))
            arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}),
                                                   b"univar.encoder": enc.id.encode(),
                                                   b"univar.encoder_name": enc.name.encode()})
            pq.write_table(arrow, tmp, compression="zstd")
    err.print(f"{stats.texts} QAs ({stats.unique} unique): {stats.embedded} embedded, {stats.cached} from cache "
              f"-> {out_file} ({stats.texts} x {enc.dim})")
    event("embed_end", encoder=enc.name, qas=stats.texts, unique=stats.unique, embedded=stats.embedded,
          cached=stats.cached, dim=enc.dim, out=str(out_file), seconds=round(time.perf_counter() - start, 3))
