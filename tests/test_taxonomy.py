"""Value taxonomy, question banks, question generation (cleaning, dedup) and paraphrase."""

from __future__ import annotations

import pandas as pd

from univar.llm import ChatBackend, ChatResult


class Scripted(ChatBackend):
    """A chat backend that replies with fixed text: tests the parsing around a model, not a model."""

    provider = "test"

    def __init__(self, replies):
        super().__init__("test/scripted", "scripted")
        self.replies = list(replies)
        self.prompts = []

    def _chat(self, messages, params):
        self.prompts.append(messages[-1]["content"])
        return ChatResult(self.replies[(len(self.prompts) - 1) % len(self.replies)])


def test_valuebench_definitions_and_frameworks():
    from univar.taxonomy import load_values, sources

    assert len(load_values("valuebench")) == 403
    assert len(set(load_values("valuebench")["source"])) == 37  # inventories with a definition in the CSV
    schwartz = load_values("schwartz")
    assert {"Self-Direction", "Universalism", "Tradition", "Power"} <= set(schwartz["value"])
    for fw, n in (("hofstede", 6), ("globe", 9), ("rokeach", 36), ("wvs", 6)):
        table = load_values(fw)
        assert len(table) == n and table["citation"].str.len().min() > 20
    assert len(load_values("pvq40")) == len(load_values("PVQ40")) > 0
    assert {"schwartz", "wvs", "hofstede", "globe", "rokeach", "SVS"} <= set(sources())
    assert not load_values()["definition"].str.contains("\\\\").any()


def test_values_and_questions_commands(capsys, monkeypatch):
    from univar.cli import main

    monkeypatch.setenv("COLUMNS", "200")
    assert main(["values", "list", "--source", "hofstede", "--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 6 and '"Power Distance"' in lines[0]
    assert main(["values", "list", "--source", "nothing"]) == 2
    assert capsys.readouterr().err.startswith("error: no values from source")
    assert main(["questions", "list"]) == 0
    listing = capsys.readouterr().out
    assert "valueconsistency" in listing and "8068" in listing and "1706" in listing
    assert main(["questions", "list", "valueconsistency", "--lang", "de", "--limit", "2"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 2


def test_question_banks():
    from importlib import resources

    from univar.elicit import load_questions

    vc = load_questions("bundled:valueconsistency")
    assert set(vc["lang"]) == {"en", "zh", "de", "ja"}
    assert vc["qid"].is_unique and vc["original_en"].notna().all()
    assert (vc.loc[vc["lang"] == "en", "question_en"] == vc.loc[vc["lang"] == "en", "question"]).all()
    assert vc.groupby("group").size().max() > 1  # paraphrase groups
    vb = load_questions("bundled:valuebench-questions")
    assert len(vb) == 1706 and vb["value"].notna().all()
    licence = resources.files("univar.data").joinpath("licenses/valueconsistency-MIT.txt").read_text()
    assert "Jared Moore" in licence and "MIT" in licence


def test_clean_and_dedup():
    from univar.taxonomy.generate import clean, dedup

    assert clean("1. Would you lie to protect a friend's feelings?") == "Would you lie to protect a friend's feelings?"
    assert (clean('- "Should I tell my boss about a mistake I made?"')
            == "Should I tell my boss about a mistake I made?")
    assert (clean("**Q3:** Is it right to break a rule for a good cause?")
            == "Is it right to break a rule for a good cause?")
    assert clean("Here are 10 questions about honesty:") is None
    assert clean("Honesty matters.") is None
    assert clean("Why?") is None
    kept = dedup(["Would you lie to a friend?", "would you LIE to a friend", "Would you ever lie to a friend?",
                  "Is tradition important to you?"])
    assert kept == ["Would you lie to a friend?", "Is tradition important to you?"]


def test_generate_from_values_and_situations():
    from univar.taxonomy import load_values
    from univar.taxonomy.generate import generate_for_situations, generate_for_values

    reply = ("Sure! Here are some questions:\n1. Would you report a colleague who cheats?\n2. would you report "
             "a colleague who cheats\n3. Is it fine to bend rules for family?\n4. Rules.\n")
    backend = Scripted([reply])
    table = generate_for_values(load_values("schwartz").head(2), backend, n=5)
    assert len(table) == 4 and set(table["value"]) == {"Self-Direction", "Stimulation"}
    assert '"Self-Direction"' in backend.prompts[0] and "5 different questions" in backend.prompts[0]
    custom = generate_for_values(load_values("schwartz").head(1), Scripted([reply]), n=1,
                                 template="Questions on {value} please ({n})")
    assert len(custom) == 1
    sit = Scripted(['"Should you lend money to a friend who never pays back?"',
                    "#Should you lend money to a friend who never pays back?"])
    out = generate_for_situations(["lending money", "lending money again"], sit)
    assert len(out) == 1 and sit.prompts[0].startswith('Given a premise about "lending money"')


def test_paraphrase_with_a_chat_backend():
    from univar.taxonomy.paraphrase import paraphrase

    questions = pd.DataFrame({"qid": ["a"], "question": ["Should I forgive a friend who lied?"], "lang": ["en"]})
    reply = ("1. Should I forgive a friend who lied?\n2. Is forgiving a lying friend right?\n"
             "3. Would you pardon a friend's lie?")
    out = paraphrase(questions, Scripted([reply]), n=4)
    assert out["question"].tolist() == ["Should I forgive a friend who lied?", "Is forgiving a lying friend right?",
                                        "Would you pardon a friend's lie?"]
    assert out["group"].tolist() == ["a", "a", "a"] and out["rephrase"].tolist() == [False, True, True]
