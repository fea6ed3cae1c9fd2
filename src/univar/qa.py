"""The QA table: one row per question-answer pair, with the LLM and language that produced it.

Every stage of univar reads and writes this table, so it is validated once, here, at the boundary.
Required columns are ``question``, ``answer``, ``model`` and ``lang``; everything else (``question_en``,
``answer_en``, ``qid``, ``value``, ``source``, ``split``, provenance) is optional and kept as is. One optional
column has a meaning of its own: ``stance``, a label of the position an answer takes on its question
(agree / disagree, refuse / comply, the option chosen), read as text with missing values meaning "unlabelled";
``univar evaluate stance`` asks whether an encoder's geometry sees it (:mod:`univar.evaluate.stance`).

Errors name the file and the row, so that a researcher can open the file at the bad line:
``<what>, <file>:<row>``. Rows are counted as a text editor counts lines (the CSV header is line 1);
for Parquet the row is the 1-based record number; a problem of the file as a whole (missing, empty, unreadable)
names the file alone. A missing value is None, NaN or a Parquet null alike. The text columns (the required ones,
``question_en`` and ``answer_en``) must hold text: a number or boolean there (Parquet, JSONL) is refused rather
than turned into the text "1", "1.5" or "True" (:func:`_check_text`). CSV fields of any size are read.
Rows with an empty answer are dropped and logged; exact duplicate rows are kept and logged with their rows
(see :func:`_report_duplicates`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from univar.data import bundled_file
from univar.errors import QAError, UnivarError
from univar.files import atomic_path

log = logging.getLogger("univar")

REQUIRED = ("question", "answer", "model", "lang")
# Columns whose empty value makes a row unusable (an empty answer is dropped instead, and counted).
MUST_HAVE_VALUE = ("question", "model", "lang")
CLASS_SEP = "$"
SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet",
            ".pq": "parquet"}
BUNDLED_PREFIX = "bundled:"
STANCE = "stance"  # the optional column of position labels (see the module docstring)
# Optional columns that are embedded in place of question / answer when present: text, as the required ones.
OPTIONAL_TEXT = ("question_en", "answer_en")


def parse_mapping(items: Iterable[str] | None) -> dict[str, str]:
    """Turn ``["answer=completion", ...]`` (the CLI's ``--map new=old``) into ``{"completion": "answer"}``."""
    mapping: dict[str, str] = {}
    for item in items or ():
        new, sep, old = item.partition("=")
        if not sep or not new.strip() or not old.strip():
            raise QAError(f"--map expects NEW=OLD, got {item!r}", "--map", 0)
        mapping[old.strip()] = new.strip()
    return mapping


def _decode(raw: bytes, file: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise QAError(f"undecodable bytes (not UTF-8: byte 0x{raw[exc.start]:02x})", file, line) from None


def _allow_any_field_size() -> None:
    """Raise the csv module's field limit (131,072 characters by default) to the largest this platform takes.

    Why: an LLM caught in a loop writes answers of megabytes, which JSONL and Parquet read; the limit guards a
    streaming reader's memory, but univar parses text already in memory, so no field can outgrow it. The limit
    is the process's, and only ever raised, to the same value each time (safe with concurrent reads).
    """
    limit = sys.maxsize
    while limit > csv.field_size_limit():
        try:
            csv.field_size_limit(limit)
            return
        except OverflowError:  # a C long of 32 bits (Windows)
            limit //= 2


def _read_delimited(text: str, file: str, delimiter: str) -> tuple[pd.DataFrame, list[int]]:
    _allow_any_field_size()
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise QAError("empty file (no header)", file, 0) from None
    except csv.Error as exc:
        raise QAError(f"malformed CSV header ({exc})", file, 1) from None
    header = [h.strip() for h in header]
    rows: list[dict[str, str]] = []
    lines: list[int] = []
    start = reader.line_num + 1
    while True:
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise QAError(f"malformed CSV ({exc})", file, start) from None
        if record:  # a blank line is not a row
            if len(record) != len(header):  # too few: often a file cut short in its last record
                raise QAError(f"{len(record)} field{'s' if len(record) != 1 else ''} but the header has {len(header)}",
                              file, start)
            rows.append(dict(zip(header, record)))
            lines.append(start)
        start = reader.line_num + 1
    if not header or header == [""]:
        raise QAError("empty file (no header)", file, 0)
    return pd.DataFrame.from_records(rows, columns=header), lines


def _read_jsonl(text: str, file: str) -> tuple[list[dict], list[int]]:
    rows: list[dict] = []
    lines: list[int] = []
    # JSON Lines are separated by "\n" only; str.splitlines would also split inside text at U+0085, U+2028...
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise QAError(f"invalid JSON ({exc.msg})", file, number) from None
        if not isinstance(obj, dict):
            raise QAError(f"expected a JSON object per line, got {type(obj).__name__}", file, number)
        rows.append(obj)
        lines.append(number)
    return rows, lines


def _read_parquet(path: Path, file: str) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pandas()
    except (pa.ArrowInvalid, pa.ArrowException, OSError) as exc:
        raise QAError(f"not a readable Parquet file ({str(exc).splitlines()[0]})", file, 0) from None


def read_qa(source: str | Path, mapping: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Read one QA file (CSV, TSV, JSONL or Parquet) or a ``bundled:<name>`` dataset, validated once here.

    Every later stage trusts the table this returns, so any problem is reported now, naming the file and
    the row (``<what>, <file>:<row>``). Rows with an empty answer are dropped and logged with their rows;
    exact duplicate rows are kept and logged.

    Parameters
    ----------
    source : str or pathlib.Path
        A file whose suffix says its format (``.csv``, ``.tsv``, ``.jsonl``/``.ndjson``, ``.parquet``/``.pq``),
        or ``"bundled:<name>"`` for a dataset shipped with univar (``"bundled:valuebench"``).
    mapping : Mapping[str, str], optional
        Columns to rename first, ``{old: new}`` (the CLI's ``--map new=old``, see :func:`parse_mapping`),
        for files whose columns are not yet named ``question``, ``answer``, ``model`` and ``lang``.

    Returns
    -------
    pandas.DataFrame
        One row per QA, index ``0..n-1``: the required columns as text plus any other columns as they were.
        ``attrs`` holds ``source``, ``dropped_empty_answers`` and ``duplicate_rows``.

    Raises
    ------
    QAError
        (a :class:`~univar.errors.UnivarError`) when the file is missing, of an unknown type, unreadable,
        lacks a required column or value, or has no usable rows.
    """
    label = str(source)
    if label.startswith(BUNDLED_PREFIX):
        path = bundled_file(label[len(BUNDLED_PREFIX):])
    else:
        path = Path(source)
    if not path.exists():
        raise QAError("file not found", label, 0)
    if path.is_dir():
        raise QAError("is a directory, expected a CSV, JSONL or Parquet file", label, 0)
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise QAError(
            f"unsupported file type {path.suffix or '(none)'!r} (expected .csv, .tsv, .jsonl or .parquet)", label, 0
        )

    if kind == "parquet":
        frame = _read_parquet(path, label)
        rows_at = list(range(1, len(frame) + 1))
    else:
        raw = path.read_bytes()
        if b"\x00" in raw[:4096]:
            raise QAError(f"binary content in a .{kind} file", label, raw.count(b"\n", 0, raw.index(b"\x00")) + 1)
        text = _decode(raw, label)
        if kind == "jsonl":
            records, rows_at = _read_jsonl(text, label)
            if not records:
                raise QAError("empty file (no records)", label, 0)
            frame = pd.DataFrame.from_records(records)
        else:
            frame, rows_at = _read_delimited(text, label, "\t" if kind == "tsv" else ",")
    return validate(frame, label, rows_at, mapping, header_row=1 if kind in ("csv", "tsv") else 0)


def validate(
    frame: pd.DataFrame, label: str, rows_at: Sequence[int] | None = None, mapping: Mapping[str, str] | None = None,
    header_row: int = 0,
) -> pd.DataFrame:
    """Check an in-memory table as :func:`read_qa` does.

    ``rows_at`` gives each row's line for messages and ``header_row`` the line of the column names
    (1 for CSV, 0 where the format has no header line).
    """
    rows_at = list(rows_at) if rows_at is not None else list(range(1, len(frame) + 1))
    if mapping:
        missing = [old for old in mapping if old not in frame.columns]
        if missing:
            raise QAError(f"column {missing[0]!r} named in --map not found", label, header_row)
        frame = frame.drop(columns=[c for c in mapping.values() if c in frame.columns and c not in mapping])
        frame = frame.rename(columns=dict(mapping))
    for column in REQUIRED:
        if column not in frame.columns:
            hint = f" (columns: {', '.join(map(str, frame.columns))}; rename with --map {column}=OLD)"
            raise QAError(f"missing column {column!r}{hint}", label, header_row)
    if len(frame) == 0:
        raise QAError("no rows", label, header_row)

    frame = frame.reset_index(drop=True)
    for column in REQUIRED + tuple(c for c in OPTIONAL_TEXT if c in frame.columns):
        _check_text(frame[column], column, label, rows_at)
    for column in REQUIRED:
        col = frame[column]
        if isinstance(col.dtype, pd.StringDtype):  # already text (Arrow-backed from Parquet): no per-value
            frame[column] = col.fillna("")         # Python objects, which would double a large table's memory
        else:
            frame[column] = col.map(lambda v: "" if _missing(v) else v)
    if STANCE in frame.columns:
        frame[STANCE] = _stance_column(frame[STANCE], label, rows_at)
    for column in MUST_HAVE_VALUE:
        empty = frame[column].str.strip() == ""
        if empty.any():
            i = int(empty.to_numpy().argmax())
            raise QAError(f"missing value in required column {column!r}", label, rows_at[i])

    empty_answer = (frame["answer"].str.strip() == "").to_numpy()
    if empty_answer.any():
        dropped = [rows_at[i] for i in empty_answer.nonzero()[0]]
        log.warning("dropped %d row(s) with an empty answer, %s: rows %s", len(dropped), label, _rows(dropped))
        frame = frame.loc[~empty_answer].reset_index(drop=True)
        if len(frame) == 0:
            raise QAError("every answer is empty", label, header_row)
        rows_at = [r for r, empty in zip(rows_at, empty_answer) if not empty]
    duplicates = _report_duplicates(frame, label, rows_at)
    frame.attrs["source"] = label
    frame.attrs["dropped_empty_answers"] = int(empty_answer.sum())
    frame.attrs["duplicate_rows"] = duplicates
    return frame


def _check_text(col: pd.Series, column: str, label: str, rows_at: Sequence[int]) -> None:
    """Raise a :class:`QAError` naming the first present value of ``col`` that is not text, with its row.

    Why refuse rather than convert: a model or answer written as 1, 1.5 or True in Parquet or JSONL is a wrong
    export (a shifted column, a misnamed field), and its text would differ by format (CSV has "1.0" where
    Parquet has 1). Numbers stay welcome in ``stance`` (:func:`_stance_column`).
    """
    if isinstance(col.dtype, pd.StringDtype):  # text by its type
        return
    bad = col.map(lambda v: not _missing(v) and not isinstance(v, str))
    if bad.any():
        i = int(bad.to_numpy().argmax())
        raise QAError(f"column {column!r} holds {type(col.iloc[i]).__name__}, expected text", label, rows_at[i])


_INTEGRAL = re.compile(r"[-+]?\d+\.0*")  # "7.0": a whole number written as a float


def _stance_column(col: pd.Series, label: str, rows_at: Sequence[int]) -> pd.Series:
    """Position labels as text (``pd.NA`` where unlabelled): 7, 7.0, "7" and "7.0" are one label, so a numeric
    column (a rating, an option number) and its CSV copy, where pandas wrote 7.0, give the same groups."""
    def text(v: object) -> object:
        if _missing(v) or (isinstance(v, str) and not v.strip()):
            return pd.NA
        if isinstance(v, (bool, np.bool_)):
            return str(bool(v))
        if isinstance(v, str) and _INTEGRAL.fullmatch(v.strip()):
            v = float(v)
        if isinstance(v, (float, np.floating)) and float(v).is_integer():
            return str(int(v))
        return str(v).strip()

    bad = col.map(lambda v: not _missing(v) and not isinstance(v, (str, int, float, bool, np.generic)))
    if bad.any():
        i = int(bad.to_numpy().argmax())
        raise QAError(f"column {STANCE!r} holds {type(col.iloc[i]).__name__}, expected a label (text or number)",
                      label, rows_at[i])
    return col.map(text).astype("string")


def stance_labels(table: pd.DataFrame) -> pd.Series:
    """Each QA's position label (``pd.NA`` where it has none); all missing when the table has no ``stance``.

    Parameters
    ----------
    table : pandas.DataFrame
        A QA table from :func:`read_qa` (which normalises the column to text).

    Returns
    -------
    pandas.Series
        String dtype, aligned with ``table``'s rows.
    """
    if STANCE not in table.columns:
        return pd.Series(pd.NA, index=table.index, dtype="string")
    return table[STANCE].astype("string")


def _missing(value: object) -> bool:
    """None, NaN, pd.NA (nullable Parquet columns) and NaT: an absent value, never the text "nan"."""
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value)


def _rows(rows: Sequence[int]) -> str:
    return ", ".join(map(str, rows[:10])) + (" ..." if len(rows) > 10 else "")


def _report_duplicates(frame: pd.DataFrame, label: str, rows_at: Sequence[int]) -> int:
    """Log rows that repeat an earlier (question, answer, model, lang); they are kept, never dropped.

    A row equal to an earlier one in every column is a copy (a file concatenated twice, a resumed export):
    a warning names the first rows. A row that repeats the QA with other labels (ValueBench asks the same
    item under several questionnaires and values) is said only with ``--verbose``. Returns the copies.
    """
    same_qa = frame.duplicated(subset=list(REQUIRED), keep="first").to_numpy()
    if not same_qa.any():
        return 0
    try:
        copy = frame.duplicated(keep="first").to_numpy()
    except TypeError:  # unhashable values (lists from JSON) in optional columns
        copy = frame.astype(str).duplicated(keep="first").to_numpy()
    relabelled = same_qa & ~copy
    if copy.any():
        rows = [rows_at[i] for i in copy.nonzero()[0]]
        log.warning("kept %d exact duplicate row(s) (every column equal to an earlier row), %s: rows %s",
                    len(rows), label, _rows(rows))
    if relabelled.any():
        rows = [rows_at[i] for i in relabelled.nonzero()[0]]
        log.info("%d row(s) repeat an earlier question, answer, model and lang with other labels (kept), %s: rows %s",
                 len(rows), label, _rows(rows))
    return int(copy.sum())


def read_many(sources: Sequence[str | Path], mapping: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Read several QA files into one table (the CLI's ``DATA...``), remembering which file each row came from.

    Training validates per dataset (``--val-select mean-gain``), so with more than one source each row gets
    a ``dataset`` column (the source as given) unless its file has one already.

    Parameters
    ----------
    sources : Sequence[str or pathlib.Path]
        One or more files or ``bundled:<name>`` datasets, each read by :func:`read_qa`.
    mapping : Mapping[str, str], optional
        Columns to rename in every file, ``{old: new}``, as in :func:`read_qa`.

    Returns
    -------
    pandas.DataFrame
        The validated rows of every source in order, index ``0..n-1``; ``attrs["source"]`` joins the sources
        with ``" + "``. A single source's table is returned as :func:`read_qa` gives it.

    Raises
    ------
    QAError
        When ``sources`` is empty, or as :func:`read_qa` does for any one source.
    """
    if not sources:
        raise QAError("no DATA given", "(command line)", 0)
    frames = [read_qa(s, mapping) for s in sources]
    if len(frames) == 1:
        return frames[0]
    for source, frame in zip(sources, frames):  # which file each row came from (training validates per dataset)
        if "dataset" not in frame.columns:
            frame["dataset"] = str(source)
    table = pd.concat(frames, ignore_index=True, sort=False)
    table.attrs["source"] = " + ".join(str(s) for s in sources)
    return table


def class_labels(table: pd.DataFrame, target: str = "class") -> pd.Series:
    """The label each QA is identified by: ``model$lang`` (a UniVaR "value" class), ``model`` or ``lang``."""
    if target == "class":
        return table["model"].astype(str) + CLASS_SEP + table["lang"].astype(str)
    if target in ("model", "lang"):
        return table[target].copy()
    raise ValueError(f"unknown target {target!r} (expected class, model or lang)")



def class_names(table: pd.DataFrame) -> np.ndarray:
    """Each QA's (LLM, language) class label, as an object array for the map's colours and legend."""
    return class_labels(table).to_numpy(dtype=object)

def split_class(label: str) -> tuple[str, str]:
    """``model$lang`` -> ``(model, lang)``; the language is what follows the last ``$`` (a model name may hold one).

    A label without ``$`` is a model with no language: ``(label, "")``.
    """
    model, sep, lang = str(label).rpartition(CLASS_SEP)
    return (model, lang) if sep else (str(label), "")


def _pick(table: pd.DataFrame, preferred: str, fallback: str) -> pd.Series:
    if preferred in table.columns:
        english = table[preferred].fillna("").astype(str)
        return english.where(english.str.strip() != "", table[fallback])
    return table[fallback]


class QATexts(Sequence):
    """The texts of a QA table, built on demand: ``Q: {question} A: {answer}``.

    Why lazy: on hundreds of thousands of QAs a list of every formatted text would double the memory the
    table already uses; ``embed`` reads it one window at a time. Indexing with a slice gives a list.
    """

    def __init__(self, questions: pd.Series, answers: pd.Series):
        self._q, self._a = questions.reset_index(drop=True), answers.reset_index(drop=True)

    def __len__(self) -> int:
        return len(self._q)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [qa_text(q, a) for q, a in zip(self._q.iloc[index], self._a.iloc[index])]
        if index < 0:
            index += len(self)
        return qa_text(self._q.iloc[index], self._a.iloc[index])

    def __iter__(self):
        for q, a in zip(self._q, self._a):
            yield qa_text(q, a)

    def __eq__(self, other: object) -> bool:
        return list(self) == list(other) if isinstance(other, (list, tuple, QATexts)) else NotImplemented

    def __repr__(self) -> str:
        return f"QATexts({len(self)} QAs)"


# Question folds. Every question-disjoint split in univar -- value identification's ``question`` split, training
# validation, the map's cross-fitted evidence -- partitions QAs by a hash of the question alone, so that the
# same question lands in the same fold in every file, every run and every tool, and a test fold is never
# trained on. Fold 0 is the held-out test fold; the shipped model never saw it.
N_FOLDS = 5
TEST_FOLD = 0


def question_digest(question: object) -> str:
    """SHA-1 (hex) of ``str(question).strip().lower()``: one question's identity, whatever its case or surrounding
    spaces; the question folds and the training-question hashes of a model folder (``univar.seen``) both use it."""
    return hashlib.sha1(str(question).strip().lower().encode("utf-8")).hexdigest()


def question_fold(question: str) -> int:
    """The fold (0..4) of a question: ``int(sha1(question.strip().lower()), 16) % 5``.

    Parameters
    ----------
    question : str
        The question text; case and surrounding spaces do not change its fold.

    Returns
    -------
    int
        The fold; :data:`TEST_FOLD` (0) is the question-disjoint test fold.
    """
    return int(question_digest(question), 16) % N_FOLDS


def question_folds(questions: Iterable[object]) -> np.ndarray:
    """The fold of every question, as an int64 array (see :func:`question_fold`)."""
    return np.array([question_fold(str(q)) for q in questions], dtype=np.int64)


def qa_text(question: object, answer: object) -> str:
    """The one text a QA is embedded as: ``Q: {question} A: {answer}``."""
    return f"Q: {str(question).strip()} A: {str(answer).strip()}"


def as_texts(qas) -> Sequence[str]:
    """A QA table, ``(question, answer)`` pairs, or ready ``Q: .. A: ..`` texts -> the texts to embed."""
    if isinstance(qas, pd.DataFrame):
        return qa_texts(qas)
    if isinstance(qas, (str, bytes)):
        raise UnivarError("expected QA texts, (question, answer) pairs or a QA table, got a single string; "
                          "wrap it in a list")
    out = []
    for item in qas:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, (tuple, list)) and len(item) == 2:
            out.append(qa_text(*item))
        else:
            raise UnivarError(f"expected a QA text or a (question, answer) pair, got {type(item).__name__}")
    return out


def qa_texts(table: pd.DataFrame) -> QATexts:
    """The text a QA is embedded as, ``Q: {question} A: {answer}``, from the English columns when present."""
    return QATexts(_pick(table, "question_en", "question"), _pick(table, "answer_en", "answer"))


def question_texts(table: pd.DataFrame) -> QATexts:
    """Each QA's question alone, as a QA with an empty answer (``Q: {question} A: .``).

    Topic removal (``univar.model.heads.TopicRemoval``) predicts a QA's embedding from this text's, so it is
    formatted like the QA itself: the same prefix, the answer replaced by a full stop.
    """
    questions = _pick(table, "question_en", "question")
    return QATexts(questions, pd.Series(["."] * len(questions), dtype=object))


def question_text_of(qa_text: str) -> str:
    """The question-alone text of a ``Q: {question} A: {answer}`` text (split at the first `` A: ``)."""
    head, sep, _ = qa_text.partition(" A: ")
    return f"{head} A: ." if sep else qa_text


def write_qa(table: pd.DataFrame, path: str | Path) -> Path:
    """Write a QA table in the format its suffix names, so that :func:`read_qa` reads the same rows back.

    Parameters
    ----------
    table : pandas.DataFrame
        The QA table (usually from :func:`read_qa` or ``univar elicit``); every column is written, the index
        is not.
    path : str or pathlib.Path
        The file to write: ``.csv``, ``.tsv``, ``.jsonl``/``.ndjson`` or ``.parquet``/``.pq`` (zstd).
        Missing parent folders are created; an existing file is replaced only once the new one is whole.

    Returns
    -------
    pathlib.Path
        ``path``, as a ``Path``.

    Raises
    ------
    QAError
        When the suffix is none of the formats above.
    """
    path = Path(path)
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise QAError(f"unsupported output type {path.suffix or '(none)'!r}", str(path), 0)
    with atomic_path(path) as tmp:  # a killed write leaves the earlier file, never half a table
        if kind == "parquet":
            table.to_parquet(tmp, index=False, compression="zstd")
        elif kind == "jsonl":
            table.to_json(tmp, orient="records", lines=True, force_ascii=False)
        else:
            # RFC 4180 line ends: the writer then quotes any field holding a bare "\r", which a reader would
            # otherwise take for a line break
            table.to_csv(tmp, index=False, sep="\t" if kind == "tsv" else ",", lineterminator="\r\n")
    return path
