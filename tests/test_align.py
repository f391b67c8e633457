"""Word alignments from attention: pieces to words, link extraction and symmetrisation against hand
computation; forced attention against the attention greedy search reports; `seqattn align` end to end
on the RWTH gold set, scored by `seqattn evaluate --alignments`; its one-line errors."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from cli import app
from seqattn.alignment import Pieces, encode_words, hypothesis_pieces, symmetrize, word_links
from seqattn.alignment.attention import forced_attention, pick
from seqattn.alignment.links import extract, grow_diag_final, word_weights
from seqattn.config import ModelConfig, data_root
from seqattn.data.subwords import words_of_pieces
from seqattn.errors import SeqattnError
from seqattn.evaluation.alignment import alignment_error_rate, read_gold
from seqattn.models import build_model
from seqattn.search import greedy_search
from seqattn.training import load_model

ROOT = Path(__file__).resolve().parent.parent
RWTH = data_root(None) / "alignments" / "de-en-rwth"
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


# ---- pieces, words, links (hand-computed) ----------------------------------------------------------

def test_words_of_pieces():
    assert words_of_pieces(["▁Das", "▁", "Ü", "ber", "▁Haus"]) == [0, 1, 1, 1, 2]
    assert words_of_pieces(["ab", "c", "▁d"]) == [0, 0, 1]  # no '▁' first: still word 0
    assert words_of_pieces([]) == []


# source pieces "▁Das ▁Haus chen" (words 0, 1, 1), target pieces "▁the ▁hou se" (words 0, 1, 1);
# rows need not sum to 1 (the EOS column is dropped)
ALPHA = torch.tensor([[0.7, 0.2, 0.1],
                      [0.1, 0.3, 0.4],
                      [0.5, 0.1, 0.2]])
SRC_WORDS, TGT_WORDS = [0, 1, 1], [0, 1, 1]


def test_sum_aggregates_source_pieces_by_sum_and_target_pieces_by_mean():
    # source: [0.7, 0.2+0.1], [0.1, 0.3+0.4], [0.5, 0.1+0.2]; target word 1: mean of rows 1 and 2
    expected = torch.tensor([[0.7, 0.3],
                             [0.3, 0.5]])
    torch.testing.assert_close(word_weights(ALPHA, SRC_WORDS, TGT_WORDS), expected)


def test_argmax_and_threshold_over_words_and_pieces():
    links = lambda **kw: word_links(ALPHA, SRC_WORDS, TGT_WORDS, **kw)  # noqa: E731
    assert links(pieces="sum", method="argmax") == {(0, 0), (1, 1)}
    assert links(pieces="sum", method="threshold", threshold=0.4) == {(0, 0), (1, 1)}
    assert links(pieces="sum", method="threshold", threshold=0.25) == {(0, 0), (0, 1), (1, 0), (1, 1)}
    # piece argmax: row 0 -> piece 0 (word 0), row 1 -> piece 2 (word 1), row 2 -> piece 0 (word 0)
    assert links(pieces="any", method="argmax") == {(0, 0), (1, 1), (0, 1)}
    # pieces above 0.45: (row 0, piece 0) 0.7 and (row 2, piece 0) 0.5
    assert links(pieces="any", method="threshold", threshold=0.45) == {(0, 0), (0, 1)}


def test_extract_skips_rows_without_weight_and_names_bad_values():
    weights = torch.tensor([[0.0, 0.0], [0.2, 0.6]])
    assert extract(weights, "argmax") == {(1, 1)}
    assert extract(torch.zeros(2, 0), "argmax") == set()
    with pytest.raises(SeqattnError, match="--extract best: choose one of argmax, threshold"):
        extract(weights, "best")
    with pytest.raises(SeqattnError, match="--pieces max"):
        word_links(ALPHA, SRC_WORDS, TGT_WORDS, pieces="max")


# 5 source x 4 target words, drawn by hand (rows source i, columns target j):
#            j=0 j=1 j=2 j=3
#     i=0     FB  .   .   .        F: source->target model, B: target->source model
#     i=1     .   FB  .   .
#     i=2     .   .   F   B
#     i=3     F   .   .   B
#     i=4     .   F   .   .
FORWARD = {(0, 0), (1, 1), (2, 2), (3, 0), (4, 1)}
BACKWARD = {(0, 0), (1, 1), (2, 3), (3, 3)}


def test_intersection_union_and_grow_diag_final_by_hand():
    assert symmetrize(FORWARD, BACKWARD, "intersection", 5, 4) == {(0, 0), (1, 1)}
    assert symmetrize(FORWARD, BACKWARD, "union", 5, 4) == FORWARD | BACKWARD
    # grow-diag from {0-0, 1-1}: (1,1) adds its diagonal neighbour 2-2 (source 2 unaligned); (2,2) adds
    # 2-3 (target 3 unaligned) and 3-3 (source 3 unaligned). 3-0 and 4-1 touch no kept link.
    # final(F): 3-0 joins two aligned words: no; 4-1: source 4 unaligned: yes. final(B): nothing new.
    expected = {(0, 0), (1, 1), (2, 2), (2, 3), (3, 3), (4, 1)}
    assert grow_diag_final(FORWARD, BACKWARD, 5, 4) == expected
    assert symmetrize(FORWARD, BACKWARD, "grow-diag-final", 5, 4) == expected


# ---- models trained for a few steps --------------------------------------------------------------

def train(out: Path, corpus: Path, recipe: str, *overrides: str) -> Path:
    result = invoke(
        "train", ROOT / recipe, f"out_dir={out}", f"data.root={corpus}", "data.corpus=.", "subword.vocab_size=250",
        "train.max_steps=4", "train.valid_every=4", "train.batch_tokens=2000", "train.progress=false",
        "train.max_minutes=0", "search.max_len_b=3", "search.max_len_a=0.5", *overrides)
    assert result.exit_code == 0, result.output
    return out / "best.pt"


RNN = ("model.emb_dim=16", "model.hidden_dim=16", "model.attention_dim=16", "model.readout_dim=16")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory, multi30k: Path) -> dict[str, Path]:
    """An RNNsearch En->De and De->En and a two-layer Transformer En->De (alpha: layer 0, head 1)."""
    corpus = tmp_path_factory.mktemp("corpus")
    for split, n in (("train", 400), ("val", 10)):
        for lang in ("en", "de"):
            lines = (multi30k / f"{split}.{lang}").read_text(encoding="utf-8").splitlines()[:n]
            (corpus / f"{split}.{lang}").write_text("\n".join(lines) + "\n", encoding="utf-8")
    runs = tmp_path_factory.mktemp("runs")
    return {
        "rnn": train(runs / "rnn", corpus, "recipes/bahdanau2015/rnnsearch.yaml", *RNN),
        "rnn_de_en": train(runs / "rnn_de_en", corpus, "recipes/bahdanau2015/rnnsearch.yaml", *RNN,
                           "data.src=de", "data.tgt=en"),
        "transformer": train(
            runs / "transformer", corpus, "recipes/vaswani2017/transformer.yaml", "model.emb_dim=16",
            "model.hidden_dim=16", "model.ffn_dim=32", "model.heads=2", "model.encoder_layers=2",
            "model.decoder_layers=2", "model.attention_layer=0", "model.attention_head=1", "train.precision=fp32"),
    }


@pytest.fixture(scope="module")
def rwth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 12 RWTH sentence pairs and their gold links (Latin-1, gold 1-based, German first)."""
    if not RWTH.is_dir():
        pytest.skip(f"real data not found at {RWTH}")
    folder = tmp_path_factory.mktemp("rwth")
    for name in ("de", "en", "alignmentDeEn.talp"):
        lines = (RWTH / name).read_text(encoding="latin-1").splitlines()[:12]
        (folder / name).write_text("\n".join(lines) + "\n", encoding="latin-1")
    return folder


def test_words_encode_as_the_whole_sentence(models: dict[str, Path], rwth: Path):
    """Word-by-word encoding gives the pieces of the whole sentence, each word its own."""
    _, _, task = load_model(models["rnn"])
    for line in (rwth / "en").read_text(encoding="latin-1").splitlines():
        pieces = encode_words(task.src_tok, line.split())
        assert pieces.ids == task.src_tok.encode([line])[0]
        assert words_of_pieces(task.src_tok.pieces(pieces.ids)) == pieces.words
        assert len(line.split()) == pieces.words[-1] + 1


@pytest.mark.parametrize("name", ["rnn", "transformer"])
def test_forced_attention_is_greedy_search_attention(models: dict[str, Path], rwth: Path, name: str):
    """Force-decoding greedy search's output reproduces the attention the search reported, per
    sentence, in batches of other lengths; the Transformer's of its alpha layer and head (0, 1)."""
    model, _, task = load_model(models[name])
    lines = (rwth / "en").read_text(encoding="latin-1").splitlines()[:6]
    sources = [encode_words(task.src_tok, line.split()) for line in lines]
    for source in sources:
        src = torch.tensor([source.ids + [model.eos_id]])
        [hyp] = greedy_search(model, src, src.ne(model.pad_id), max_len_a=1.0, max_len_b=2)
        target = hypothesis_pieces(task.tgt_tok, hyp.tokens)[0]
        [weights] = forced_attention(model, [source], [target], batch_size=1, device=torch.device("cpu"))
        layer, head = model.alpha_choice()
        torch.testing.assert_close(pick(weights, layer, head), hyp.alpha[: len(hyp.tokens), :-1], atol=1e-5, rtol=1e-4)
    if name == "transformer":
        assert model.alpha_choice() == (0, 1)
        targets = [Pieces(s.ids[:3], s.words[:3]) for s in sources]
        batched = forced_attention(model, sources, targets, batch_size=4, device=torch.device("cpu"))
        alone = [forced_attention(model, [s], [t], 1, torch.device("cpu"))[0] for s, t in zip(sources, targets)]
        assert batched[0].shape[:2] == (2, 2)  # [layers, heads, T, S]
        for b, a in zip(batched, alone):
            torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-4)
            assert (a.sum(-1) <= 1.0 + 1e-6).all()  # the EOS column dropped


# ---- seqattn align -------------------------------------------------------------------------------

LINKS = re.compile(r"^(\d+-\d+( \d+-\d+)*)?$")


def read_links(path: Path) -> list[set[tuple[int, int]]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert all(LINKS.match(line) for line in lines), lines
    return [{tuple(map(int, link.split("-"))) for link in line.split()} for line in lines]


def inside(links: list[set[tuple[int, int]]], src: Path, tgt: Path) -> bool:
    src_lines, tgt_lines = (p.read_text(encoding="latin-1").splitlines() for p in (src, tgt))
    return all(i < len(s.split()) and j < len(t.split()) for sentence, s, t in zip(links, src_lines, tgt_lines)
               for i, j in sentence)


def test_align_writes_pharaoh_lines_that_evaluate_scores(models: dict[str, Path], rwth: Path, tmp_path: Path):
    out = tmp_path / "en-de.align"
    result = invoke("align", "-c", models["rnn"], "--src", rwth / "en", "--tgt", rwth / "de", "-o", out,
                    "--encoding", "latin-1", "--pieces", "sum")
    assert result.exit_code == 0, result.output
    links = read_links(out)
    assert len(links) == 12 and all(links) and inside(links, rwth / "en", rwth / "de")
    # one link per target word with argmax over summed pieces
    assert [len(s) for s in links] == [len(t.split()) for t in (rwth / "de").read_text(encoding="latin-1").splitlines()]
    scored = invoke("evaluate", "--hyp", out, "--alignments", rwth / "alignmentDeEn.talp", "--reverse-hyp",
                    "--src", rwth / "de", "--ref", rwth / "en", "--encoding", "latin-1")
    assert scored.exit_code == 0, scored.output
    assert re.match(r"AER \d+\.\d% \(\d+\.\d%/\d+\.\d%/\d+\)", scored.stdout)


def test_align_symmetrizes_with_a_reverse_model(models: dict[str, Path], rwth: Path, tmp_path: Path):
    found = {}
    for method in ("intersection", "union", "grow-diag-final"):
        out = tmp_path / method
        result = invoke("align", "-c", models["rnn_de_en"], "--reverse-checkpoint", models["rnn"], "--symmetrize", method,
                        "--src", rwth / "de", "--tgt", rwth / "en", "-o", out, "--encoding", "latin-1")
        assert result.exit_code == 0, result.output
        found[method] = read_links(out)
    assert inside(found["union"], rwth / "de", rwth / "en")
    for i, g, u in zip(found["intersection"], found["grow-diag-final"], found["union"]):
        assert i <= g <= u
    assert found["intersection"] != found["union"]
    # RNNsearch has one layer: --layer auto takes it and writes the links of the sentences after the held-out 4,
    # symmetrised with those sentences' lengths
    out = tmp_path / "auto"
    result = invoke("align", "-c", models["rnn_de_en"], "--reverse-checkpoint", models["rnn"], "--src", rwth / "de",
                    "--tgt", rwth / "en", "-o", out, "--encoding", "latin-1", "--layer", "auto",
                    "--gold", rwth / "alignmentDeEn.talp", "--held-out", 4)
    assert result.exit_code == 0, result.output
    assert read_links(out) == found["grow-diag-final"][4:]


def test_align_transformer_layers_heads_and_own_translations(models: dict[str, Path], rwth: Path, tmp_path: Path):
    common = ["-c", models["transformer"], "--src", rwth / "en", "--encoding", "latin-1"]
    heads = [invoke("align", *common, "--tgt", rwth / "de", "--layer", -1, "--head", h).stdout for h in (0, 1)]
    assert all(len(h.splitlines()) == 12 for h in heads)

    translations = tmp_path / "own.de"
    own = invoke("align", *common, "--own-translations", "--translations", translations, "-o", tmp_path / "own.align")
    assert own.exit_code == 0, own.output
    links = read_links(tmp_path / "own.align")
    words = translations.read_text(encoding="utf-8").splitlines()
    assert len(links) == len(words) == 12
    assert all({j for _, j in s} == set(range(len(w.split()))) for s, w in zip(links, words))  # argmax: every word


def talp(links: list[set[tuple[int, int]]]) -> str:
    """Links as a gold file: talp, 1-based, source first."""
    return "".join(" ".join(f"{i + 1}-{j + 1}" for i, j in sorted(s)) + "\n" for s in links)


def test_layer_auto_chooses_on_the_held_out_sentences_and_aligns_the_others(models: dict[str, Path], rwth: Path,
                                                                            tmp_path: Path):
    """A gold file that agrees with layer 0 on the 4 held-out sentences and with layer 1 on the 8 others:
    auto takes layer 0 and writes layer 0's links of the 8 others only, which evaluate scores with --skip-gold 4."""
    common = ["-c", models["transformer"], "--src", rwth / "en", "--tgt", rwth / "de", "--encoding", "latin-1",
              "--head", -1]
    layers = []
    for layer in (0, 1):
        result = invoke("align", *common, "--layer", layer, "-o", tmp_path / f"layer{layer}")
        assert result.exit_code == 0, result.output
        layers.append(read_links(tmp_path / f"layer{layer}"))
    gold = tmp_path / "gold.talp"
    gold.write_text(talp(layers[0][:4] + layers[1][4:]))
    on_all = [alignment_error_rate(read_gold(gold), links).aer for links in layers]
    assert on_all[1] < on_all[0], on_all  # chosen on all 12 sentences (or on the 8 others), layer 1 would win

    out = tmp_path / "auto.align"
    auto = invoke("align", *common, "--layer", "auto", "--gold", gold, "--held-out", 4, "-o", out)
    assert auto.exit_code == 0, auto.output
    assert "layer 0: AER 0.0% " in auto.stderr and "on the 4 held-out sentences" in auto.stderr
    assert "aligning with layer 0" in auto.stderr
    assert f"{out}: links of sentences 5-12 of {rwth / 'en'}, the first 4 chose the layer" in auto.stderr
    assert read_links(out) == layers[0][4:]
    scored = invoke("evaluate", "--hyp", out, "--alignments", gold, "--skip-gold", 4,
                    "--src", rwth / "en", "--ref", rwth / "de", "--encoding", "latin-1")
    assert scored.exit_code == 0, scored.output
    assert scored.stdout == alignment_error_rate(read_gold(gold)[4:], layers[0][4:]).text + "\n"


def test_align_errors_are_one_line(models: dict[str, Path], rwth: Path, tmp_path: Path, babi: Path):
    short = tmp_path / "short.de"
    short.write_text("Das stimmt nicht !\n", encoding="utf-8")
    one = tmp_path / "one.talp"
    one.write_text("1-1\n")
    qa = tmp_path / "qa"
    result = invoke("train", ROOT / "recipes/sukhbaatar2015/memn2n.yaml", f"out_dir={qa}", "model.emb_dim=8",
                    "babi.tasks=[1]", "train.max_steps=1", "train.valid_every=1", "babi.valid_fraction=0.01")
    assert result.exit_code == 0, result.output
    base = ["-c", models["rnn"], "--src", rwth / "en", "--encoding", "latin-1"]
    auto = [*base, "--tgt", rwth / "de", "--layer", "auto", "--gold", rwth / "alignmentDeEn.talp"]
    for args, message in [
        ([*base, "--tgt", short], f"{short}: 1 sentences, but {rwth / 'en'} has 12"),
        (["-c", qa / "best.pt", "--src", rwth / "en", "--tgt", rwth / "de"], f"{qa / 'best.pt'}: model memn2n does not translate"),
        ([*base, "--tgt", rwth / "de", "--extract", "best"], "--extract best: choose one of argmax, threshold"),
        ([*base, "--tgt", rwth / "de", "--pieces", "mean"], "--pieces mean: choose one of sum, any"),
        ([*base, "--tgt", rwth / "de", "--symmetrize", "grow"], "--symmetrize grow: choose one of"),
        ([*base, "--tgt", rwth / "de", "--layer", "last"], "--layer last: give a decoder layer"),
        ([*base, "--tgt", rwth / "de", "--layer", 1], "--layer 1: model rnnsearch has 1 attention layer(s)"),
        ([*base, "--tgt", rwth / "de", "--layer", "auto"], "--layer auto and --gold"),
        ([*auto, "--held-out", 12], f"--held-out 12: give 1 to 11 of the 12 sentences of {rwth / 'en'} to choose the layer on"),
        ([*auto, "--held-out", 0], "--held-out 0: give 1 to 11 of the 12 sentences"),
        ([*base, "--tgt", rwth / "de", "--layer", "auto", "--gold", one, "--held-out", 2],
         f"--held-out 2: {one} has 1 sentences; hold out at most that many"),
        (base, "--tgt: give the target sentences, or --own-translations"),
        ([*base, "--own-translations"], "--translations: give the file"),
        ([*base, "--tgt", tmp_path / "missing.de"], "missing.de"),
        ([*base, "--tgt", rwth / "de", "--reverse-checkpoint", qa / "best.pt"], "model memn2n does not translate"),
    ]:
        result = invoke("align", *args)
        assert result.exit_code == 2 and message in result.stderr, (args, result.output)
        assert "Traceback" not in result.output and len(result.stderr.strip().splitlines()) == 1


def test_a_model_without_attention_says_so():
    """RNNencdec has no attention: asking for its attention names the model; RNNsearch gives one layer of one head."""
    rnnencdec = build_model(ModelConfig(arch="rnnencdec", emb_dim=8, hidden_dim=8, readout_dim=8), 20, 20, 0, 2, 3)
    src, tgt_in = torch.tensor([[5, 6, 3]]), torch.tensor([[2, 7, 8, 9]])
    with pytest.raises(SeqattnError, match="RNNSeq2Seq has no attention over its source"):
        rnnencdec.cross_attention(src, src.ne(0), tgt_in)
    rnnsearch = build_model(ModelConfig(arch="rnnsearch", emb_dim=8, hidden_dim=8, attention_dim=8, readout_dim=8),
                            20, 20, 0, 2, 3)
    assert rnnsearch.attention_shape() == (1, 1) and rnnsearch.alpha_choice() == (0, -1)
    assert rnnsearch.cross_attention(src, src.ne(0), tgt_in).shape == (1, 1, 1, 4, 3)
