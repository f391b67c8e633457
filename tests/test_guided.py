"""Guided alignment training (Chen et al. 2016; Garg et al. 2019): the piece-level target of word
links against a hand-made example, the loss by hand and its zero gradient on unaligned rows, the
alignment lines kept in step with filtered pairs, the one-line errors, and a tiny Transformer and a tiny
RNNsearch whose guided attention aligns their training sentences better than the unguided ones'."""
from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from cli import app
from seqattn.config import load_config
from seqattn.data import collate, prepare
from seqattn.data.alignments import alignment_target, piece_links, read_hypothesis
from seqattn.errors import SeqattnError
from seqattn.evaluation.alignment import Gold, alignment_error_rate
from seqattn.models import Guide, Seq2Seq, alignment_loss

REPO = Path(__file__).resolve().parent.parent
runner = CliRunner()


def test_piece_target_of_word_links_golden():
    # source words: Das=0 (1 piece), Hausboot=1 (pieces 1, 2), ist=2 (piece 3); EOS is column 4
    # target words: the=0 (piece 0), house=1 (pieces 1, 2), boat=2 (piece 3), is=3 (piece 4); EOS row 5
    src_words, tgt_words = [0, 1, 1, 2], [0, 1, 1, 2, 3]
    links = piece_links({(0, 0), (1, 1), (1, 2), (2, 1)}, src_words, tgt_words)  # "is" (3) has no link
    assert links == [(0, 0), (1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (2, 3), (3, 1), (3, 2)]
    expected = torch.tensor([
        [1, 0, 0, 0, 0],
        [0, 1 / 3, 1 / 3, 1 / 3, 0],  # house -> Hausboot's two pieces and ist
        [0, 1 / 3, 1 / 3, 1 / 3, 0],
        [0, 1 / 2, 1 / 2, 0, 0],  # boat -> Hausboot's pieces
        [0, 0, 0, 0, 0],  # unaligned target piece
        [0, 0, 0, 0, 0],  # EOS
    ])
    torch.testing.assert_close(alignment_target(links, 5, 6), expected)
    batch = collate([[7, 8, 9, 10], [7]], [[11, 12, 13, 14, 15], [11]], [0, 1], 0, 2, 3, [links, [(0, 0)]])
    assert batch.alignment.shape == (2, 6, 5)  # [B, T (targets + EOS), S (sources + EOS)]
    torch.testing.assert_close(batch.alignment[0], expected)
    assert batch.alignment[1].sum() == 1 and batch.alignment[1, 0, 0] == 1  # padding stays zero


def test_alignment_loss_by_hand_and_no_gradient_on_unaligned_rows():
    logits = torch.randn(1, 3, 4, requires_grad=True)
    alpha = logits.softmax(-1)  # [B, T, S]
    target = torch.zeros(1, 3, 4)
    target[0, 0, 1] = 1.0
    target[0, 2, 2:] = 0.5  # row 1 unaligned
    loss = alignment_loss(alpha, target)
    expected = -alpha[0, 0, 1].log() - 0.5 * alpha[0, 2, 2].log() - 0.5 * alpha[0, 2, 3].log()
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert logits.grad[0, 1].abs().max() == 0
    assert logits.grad[0, 0].abs().max() > 0 and logits.grad[0, 2].abs().max() > 0
    zero = alpha.detach().clone()
    zero[0, 0, 1] = 0.0  # an exactly zero weight (outside a local window) stays finite
    assert torch.isfinite(alignment_loss(zero, target))


def test_loss_adds_lambda_times_alignment_loss(tiny_transformer_model: Seq2Seq):
    model = tiny_transformer_model
    batch = collate([[5, 6, 7]], [[8, 9]], [0], model.pad_id, model.bos_id, model.eos_id, [[(0, 0), (2, 1)]])
    out = model(batch.src, batch.src_mask, batch.tgt_in)
    plain = model.loss(out, batch.tgt_out, 0.1)
    guided = model.loss(out, batch.tgt_out, 0.1, Guide(batch.alignment, 0.3))
    torch.testing.assert_close(guided, plain + 0.3 * alignment_loss(out.alpha, batch.alignment))


@pytest.fixture
def tiny_transformer_model() -> Seq2Seq:
    from seqattn.config import ModelConfig
    from seqattn.models import build_model

    torch.manual_seed(0)
    cfg = ModelConfig(arch="transformer", emb_dim=16, hidden_dim=16, heads=2, ffn_dim=32, encoder_layers=1,
                      decoder_layers=2, attention_layer=0, attention_head=1)
    return build_model(cfg, 20, 20, 0, 2, 3)


SRC_WORDS = ["ana", "bor", "cid", "dem", "eru", "fal", "gon", "hix"]
TGT_WORDS = ["zup", "yol", "xam", "wek", "vit", "usk", "sor", "rab"]


def write_reversal_corpus(folder: Path, pairs: int, seed: int = 0) -> list[set[tuple[int, int]]]:
    """A corpus folder (train, val, test of languages xx -> yy) where each target word translates one
    source word and the order is reversed -> the training pairs' true links (i, n - 1 - i)."""
    rng = random.Random(seed)
    sentences = [[rng.randrange(len(SRC_WORDS)) for _ in range(rng.randint(3, 6))] for _ in range(pairs)]
    for split, chosen in (("train", sentences), ("val", sentences[:4]), ("test", sentences[:4])):
        (folder / f"{split}.xx").write_text("".join(" ".join(SRC_WORDS[w] for w in s) + "\n" for s in chosen))
        (folder / f"{split}.yy").write_text("".join(" ".join(TGT_WORDS[w] for w in reversed(s)) + "\n" for s in chosen))
    return [{(i, len(s) - 1 - i) for i in range(len(s))} for s in sentences]


def write_links(path: Path, links: list[set[tuple[int, int]]]) -> Path:
    path.write_text("".join(" ".join(f"{i}-{j}" for i, j in sorted(s)) + "\n" for s in links))
    return path


def data_overrides(corpus: Path) -> list[str]:
    return [f"data.root={corpus}", "data.corpus=.", "data.src=xx", "data.tgt=yy", "data.valid=val", "data.test=test",
            "subword.vocab_size=40"]


def test_filtered_pairs_keep_their_alignment_lines(tmp_path: Path):
    truth = write_reversal_corpus(tmp_path, 12)
    long = "ana " * 30  # line 3 of a longer corpus: dropped by data.max_len, its links with it
    for lang, text in (("xx", long), ("yy", long.replace("ana", "zup"))):
        lines = (tmp_path / f"train.{lang}").read_text().splitlines()
        (tmp_path / f"train.{lang}").write_text("\n".join(lines[:2] + [text.strip()] + lines[2:]) + "\n")
    truth = truth[:2] + [{(k, 29 - k) for k in range(30)}] + truth[2:]
    guide = write_links(tmp_path / "train.align", truth)
    cfg = load_config(None, [*data_overrides(tmp_path), f"out_dir={tmp_path / 'run'}", "data.max_len=25",
                             f"train.guided_alignment={guide}"])
    src_tok, tgt_tok, train, _ = prepare(cfg, log=lambda *_: None)
    assert len(train) == 12 and train.links is not None
    for k in range(len(train)):
        src_words = [len(src_tok.pieces(src_tok.encode([w])[0])) for w in train.src_text[k].split()]
        tgt_words = [len(tgt_tok.pieces(tgt_tok.encode([w])[0])) for w in train.tgt_text[k].split()]
        of_src = [w for w, n in enumerate(src_words) for _ in range(n)]
        of_tgt = [w for w, n in enumerate(tgt_words) for _ in range(n)]
        n = len(src_words)
        assert train.links[k] == piece_links({(i, n - 1 - i) for i in range(n)}, of_src, of_tgt)


@pytest.mark.parametrize("edit, message", [
    (lambda lines: lines[:-1], r"train\.align: 11 lines, but the training split has 12 pairs"),
    (lambda lines: lines[:4] + [lines[4] + " 9-0"] + lines[5:], r"train\.align line 5: link 9-0 is beyond the pair's"),
    (lambda lines: lines[:1] + ["0:1"] + lines[2:], r"train\.align line 2: link '0:1' is not i-j"),
])
def test_bad_alignment_file_is_one_line_naming_file_and_line(tmp_path: Path, edit, message: str):
    truth = write_reversal_corpus(tmp_path, 12)
    guide = tmp_path / "train.align"
    guide.write_text("\n".join(edit(write_links(guide, truth).read_text().splitlines())) + "\n")
    cfg = load_config(None, [*data_overrides(tmp_path), f"out_dir={tmp_path / 'run'}", f"train.guided_alignment={guide}"])
    with pytest.raises(SeqattnError, match=message):
        prepare(cfg, log=lambda *_: None)


@pytest.mark.parametrize("overrides, message", [
    (["model.arch=rnnencdec"], "train.guided_alignment: model.arch rnnencdec has no attention"),
    (["train.alignment_weight=-1"], "train.alignment_weight: -1.0 is negative"),
    (["train.guided_alignment=/no/such.align"], "train.guided_alignment: /no/such.align not found"),
])
def test_guided_alignment_config_errors(tmp_path: Path, overrides: list[str], message: str):
    guide = tmp_path / "train.align"
    guide.write_text("0-0\n")
    with pytest.raises(SeqattnError, match=message):
        load_config(REPO / "recipes" / "bahdanau2015" / "rnnsearch.yaml", [f"train.guided_alignment={guide}", *overrides])


def attention_aer(checkpoint: Path, corpus: Path, truth: list[set[tuple[int, int]]], out: Path) -> float:
    result = runner.invoke(app, ["align", "-c", str(checkpoint), "--src", str(corpus / "train.xx"),
                                 "--tgt", str(corpus / "train.yy"), "-o", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    gold = [Gold(sure=links, possible=links) for links in truth]
    return alignment_error_rate(gold, read_hypothesis(out)).aer


GUIDED_MODELS = {
    "transformer": [str(REPO / "recipes" / "vaswani2017" / "transformer.yaml"), "model.emb_dim=32", "model.hidden_dim=32",
                    "model.heads=2", "model.ffn_dim=64", "model.encoder_layers=1", "model.decoder_layers=2",
                    "model.attention_layer=-2", "model.attention_head=0", "train.precision=fp32", "train.warmup_steps=10",
                    "train.lr=0.003", "train.max_steps=150", "train.valid_every=150"],
    "rnnsearch": [str(REPO / "recipes" / "bahdanau2015" / "rnnsearch.yaml"), "model.emb_dim=16", "model.hidden_dim=16",
                  "model.attention_dim=16", "model.readout_dim=16", "train.lr=0.01", "train.max_steps=60",
                  "train.valid_every=60"],
}


@pytest.mark.parametrize("arch", GUIDED_MODELS)
def test_guided_attention_aligns_better_than_unguided(tmp_path: Path, arch: str):
    """Guidance (lambda = 1) moves the attention of the Transformer's supervised head (Garg et al. 2019) and of
    RNNsearch's one attention (Chen et al. 2016) to the reversed links the unguided model only partly finds."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    truth = write_reversal_corpus(corpus, 24)
    guide = write_links(tmp_path / "train.align", truth)
    common = [*GUIDED_MODELS[arch], *data_overrides(corpus), "model.dropout=0.0", "train.batch_tokens=500",
              "train.threads=1", "train.progress=false", "train.max_minutes=0", "search.beam_size=1"]
    aer = {}
    for name, extra in (("unguided", []), ("guided", [f"train.guided_alignment={guide}", "train.alignment_weight=1.0"])):
        result = runner.invoke(app, ["train", *common, f"out_dir={tmp_path / name}", *extra], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        aer[name] = attention_aer(tmp_path / name / "last.pt", corpus, truth, tmp_path / f"{name}.align")
    # measured: Transformer 5-8% guided, 54-69% unguided (train.seed 1234, 1, 2); RNNsearch 0-25% guided,
    # 53-70% unguided (train.seed 1234, 1-5)
    assert aer["guided"] + 20.0 < aer["unguided"], aer
