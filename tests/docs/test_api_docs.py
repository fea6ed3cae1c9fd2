"""The public API documents itself: every name ``univar`` exports, each public method of its classes and the
baseline encoders ``univar.get_encoder`` returns carry complete type hints and a numpy-style docstring whose
``Parameters`` name every parameter, with a ``Returns`` unless nothing is returned and a ``Raises`` where the
code raises a univar error itself."""

from __future__ import annotations

import dataclasses
import inspect
import re

import pytest

import univar
from univar import encoders, errors

SKIP_PARAMS = {"self", "cls"}
ERRORS = sorted(n for n, c in vars(errors).items() if isinstance(c, type) and issubclass(c, errors.UnivarError))
RAISES = re.compile(rf"raise (\w+\.)*({'|'.join(ERRORS)})\b")  # a univar error raised by the code itself


def sections(doc: str) -> dict[str, dict[str, bool]]:
    """numpy-style sections of a cleaned docstring: title -> {entry: whether an indented description follows}."""
    lines = doc.splitlines()
    out: dict[str, dict[str, bool]] = {}
    current = None
    for i, line in enumerate(lines):
        after = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if line.strip() and not line[0].isspace() and after and set(after) == {"-"}:
            current = out.setdefault(line.strip(), {})
            continue
        if current is None or not line.strip() or set(line.strip()) == {"-"} or line[0].isspace():
            continue
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        current[line.split(" : ")[0].strip().lstrip("*")] = bool(nxt.strip()) and nxt[0].isspace()
    return out


def _callables():
    """(qualified name, function or property, owner class or None) for the whole public surface."""
    classes = []
    for name in univar.__all__:
        if name == "__version__":
            continue
        obj = getattr(univar, name)
        if isinstance(obj, type):
            classes.append(obj)
        else:
            yield name, obj, None
    classes += [c for c in vars(encoders).values()
                if isinstance(c, type) and issubclass(c, univar.Encoder) and c not in classes]
    for cls in classes:
        yield cls.__name__, cls, None
        for attr, member in vars(cls).items():
            if attr.startswith("_"):
                continue
            if isinstance(member, (classmethod, staticmethod)):
                member = member.__func__
            if callable(member) or isinstance(member, property):
                yield f"{cls.__name__}.{attr}", member, cls


CALLABLES = list(_callables())


def problems(name: str, obj, owner) -> list[str]:
    """What is missing from the documentation or the hints of one public name."""
    found: list[str] = []
    if isinstance(obj, type):
        doc = inspect.cleandoc(obj.__doc__ or "")
        if dataclasses.is_dataclass(obj):
            listed = {**sections(doc).get("Parameters", {}), **sections(doc).get("Attributes", {})}
            for f in dataclasses.fields(obj):  # a field whose metadata carries its help documents itself
                if not listed.get(f.name) and not f.metadata.get("help"):
                    found.append(f"{name}: field {f.name!r} is not described")
            post_init = vars(obj).get("__post_init__")
            if post_init is not None and RAISES.search(inspect.getsource(post_init)) and "Raises" not in sections(doc):
                found.append(f"{name}: raises a univar error, but its docstring has no Raises section")
        elif "__init__" in vars(obj):  # the class docstring documents the constructor
            found += problems_of_callable(name, vars(obj)["__init__"], doc, returns=False)
        if not doc.strip() or doc.startswith(f"{obj.__name__}("):  # the dataclass default is its signature
            found.append(f"{name}: no docstring")
        return found
    if isinstance(obj, property):
        func, returns = obj.fget, False  # a property's docstring describes the value itself
    else:
        func, returns = obj, True
    doc = inspect.getdoc(getattr(owner, name.split(".")[-1]) if owner and not isinstance(obj, property) else func)
    return problems_of_callable(name, func, doc or "", returns=returns)


def problems_of_callable(name: str, func, doc: str, returns: bool) -> list[str]:
    found = []
    if not doc.strip():
        return [f"{name}: no docstring"]
    signature = inspect.signature(func)
    parts = sections(doc)
    params = [p for p in signature.parameters.values() if p.name not in SKIP_PARAMS]
    described = parts.get("Parameters", {})
    for p in params:
        if p.annotation is inspect.Parameter.empty:
            found.append(f"{name}: parameter {p.name!r} has no type hint")
        if not described.get(p.name):
            found.append(f"{name}: parameter {p.name!r} is not described under Parameters")
    if params and "Parameters" not in parts:
        found.append(f"{name}: no Parameters section")
    returned = signature.return_annotation
    if returned is inspect.Signature.empty:
        found.append(f"{name}: the return has no type hint")
    if returns and returned not in ("None", None, inspect.Signature.empty) and not parts.get("Returns"):
        found.append(f"{name}: returns {returned}, but its docstring has no Returns section")
    if RAISES.search(inspect.getsource(func)) and "Raises" not in parts:
        found.append(f"{name}: raises a univar error, but its docstring has no Raises section")
    return found


def test_the_walk_reaches_the_api_it_should():
    names = {name for name, _, _ in CALLABLES}
    for name in ("read_qa", "train", "UniVaR.load", "UniVaR.encode_views", "UniVaR.embed_llm", "Encoder.encode",
                 "ValueIdentification.evaluate", "ValueIdResult.to_dict", "ProbeScores.from_dict", "KnnScores",
                 "TfidfEncoder.fit", "SentenceTransformerEncoder.model", "TrainConfig.check"):
        assert name in names


@pytest.mark.parametrize(("name", "obj", "owner"), CALLABLES, ids=[c[0] for c in CALLABLES])
def test_public_name_has_hints_and_a_numpy_docstring(name, obj, owner):
    found = problems(name, obj, owner)
    assert not found, "\n".join(found)


def test_the_check_finds_an_undocumented_parameter_and_a_missing_hint():
    def documented(table: int, path: str) -> str:
        """Say why.

        Parameters
        ----------
        table : int
            The table.
        path : str
            Where.

        Returns
        -------
        str
            What.
        """

    def careless(table, path: str):  # noqa: D417 - undocumented on purpose
        """Say why.

        Parameters
        ----------
        table : int
        """
        raise univar.UnivarError("bad")

    assert problems_of_callable("documented", documented, inspect.getdoc(documented), returns=True) == []
    assert problems_of_callable("careless", careless, inspect.getdoc(careless), returns=True) == [
        "careless: parameter 'table' has no type hint",
        "careless: parameter 'table' is not described under Parameters",
        "careless: parameter 'path' is not described under Parameters",
        "careless: the return has no type hint",
        "careless: raises a univar error, but its docstring has no Raises section",
    ]
