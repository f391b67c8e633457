"""Convert a trained pre-norm seqattn Transformer checkpoint to an OpenNMT-py 3.5 checkpoint (fp32).

    python onmt_from_seqattn.py runs/vaswani2017/prenorm/best.pt onmt_seqattn.pt

The same weights in OpenNMT-py's TransformerEncoder/Decoder, so that onmt_translate decodes the
very model seqattn decodes. OpenNMT-py's Transformer is pre-norm only, with a final layer norm per
stack, as seqattn's `model.norm: pre`; the model options come from transformer.yaml (biases on
every linear layer, one embedding for source, target and generator) with the checkpoint's sizes,
our interleaved sinusoidal positions (`position_encoding_type: SinusoidalInterleaved`, the same
formula) and LayerNorm eps 1e-5. The vocabulary is the checkpoint's sentencepiece model with
OpenNMT-py's specials (<unk> <blank> <s> </s>) in place of ours (<pad> <unk> <s> </s>), so the
rows of the embedding and generator for ids 0 and 1 swap. seqattn's sources end with </s> and
OpenNMT-py adds none: give onmt_translate sources with " </s>" appended (onmt_speed.py does).
Runs in the peers' venv (needs OpenNMT-py).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import sentencepiece as spm
import torch
from onmt.bin.train import _get_parser
from onmt.inputters.inputter import dict_to_vocabs
from onmt.model_builder import build_base_model
from onmt.utils.parse import ArgumentParser

HERE = Path(__file__).resolve().parent
SPECIALS = ["<unk>", "<blank>", "<s>", "</s>"]  # OpenNMT-py's ids 0..3 = seqattn's ids 1, 0, 2, 3


def options(model: dict[str, object]) -> argparse.Namespace:
    """OpenNMT-py model options: transformer.yaml with the sizes of seqattn's `model` section."""
    sizes = {"enc_layers": "encoder_layers", "dec_layers": "decoder_layers", "hidden_size": "hidden_dim",
             "word_vec_size": "hidden_dim", "heads": "heads", "transformer_ff": "ffn_dim"}
    argv = ["-config", str(HERE / "transformer.yaml"), "-save_model", "unused",
            "-position_encoding_type", "SinusoidalInterleaved", "-norm_eps", "1e-5"]
    for onmt_name, name in sizes.items():
        argv += [f"-{onmt_name}", str(model[name])]
    opt = _get_parser().parse_args(argv)
    ArgumentParser.update_model_opts(opt)
    ArgumentParser.validate_model_opts(opt)
    return opt


def weights(w: dict[str, torch.Tensor], encoder_layers: int, decoder_layers: int) -> dict[str, torch.Tensor]:
    """seqattn state dict -> OpenNMT-py state dict (positions aside: OpenNMT-py builds its own table)."""
    out: dict[str, torch.Tensor] = {}
    order = torch.tensor([1, 0, 2, 3] + list(range(4, w["decoder.output.weight"].shape[0])))

    def copy(dst: str, src: str) -> None:  # a linear or layer-norm module: weight and bias
        out[f"{dst}.weight"], out[f"{dst}.bias"] = w[f"{src}.weight"], w[f"{src}.bias"]

    def attention(dst: str, src: str) -> None:
        for onmt_name, name in (("linear_query", "W_Q"), ("linear_keys", "W_K"), ("linear_values", "W_V"),
                                ("final_linear", "W_O")):
            copy(f"{dst}.{onmt_name}", f"{src}.{name}")

    def feed_forward(dst: str, src: str) -> None:
        copy(f"{dst}.feed_forward.w_1", f"{src}.ffn.W_1")
        copy(f"{dst}.feed_forward.w_2", f"{src}.ffn.W_2")
        copy(f"{dst}.feed_forward.layer_norm", f"{src}.ffn_res.norm")

    for side in ("encoder", "decoder"):
        out[f"{side}.embeddings.make_embedding.emb_luts.0.weight"] = w[f"{side}.embed.tokens.weight"][order]
        copy(f"{side}.layer_norm", f"{side}.norm")
    for i in range(encoder_layers):
        dst, src = f"encoder.transformer.{i}", f"encoder.layers.{i}"
        attention(f"{dst}.self_attn", f"{src}.self_attn")
        copy(f"{dst}.layer_norm", f"{src}.self_res.norm")
        feed_forward(dst, src)
    for i in range(decoder_layers):
        dst, src = f"decoder.transformer_layers.{i}", f"decoder.layers.{i}"
        attention(f"{dst}.self_attn", f"{src}.self_attn")
        copy(f"{dst}.layer_norm_1", f"{src}.self_res.norm")
        attention(f"{dst}.context_attn", f"{src}.cross_attn")
        copy(f"{dst}.layer_norm_2", f"{src}.cross_res.norm")
        feed_forward(dst, src)
    out["generator.weight"] = w["decoder.output.weight"][order]
    out["generator.bias"] = w["decoder.output.bias"][order]
    return {k: v.float().contiguous() for k, v in out.items()}


def convert(checkpoint: Path, output: Path) -> None:
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
    model = ckpt["config"]["model"]
    if model["arch"] != "transformer" or model["norm"] != "pre":
        raise SystemExit(f"{checkpoint}: model.arch={model['arch']}, model.norm={model.get('norm')}; OpenNMT-py "
                         "loads only pre-norm Transformers (train with model.norm=pre)")
    if not (ckpt["config"]["subword"]["joint"] and model["tie_embeddings"]):
        raise SystemExit(f"{checkpoint}: needs subword.joint=true and model.tie_embeddings=true (OpenNMT-py "
                         "shares one embedding between source, target and generator here)")
    sp = spm.SentencePieceProcessor(model_file=str(checkpoint.parent / "spm.model"))
    tokens = SPECIALS + [sp.id_to_piece(i) for i in range(4, sp.get_piece_size())]
    vocab = {"src": tokens, "tgt": tokens, "data_task": "seq2seq", "decoder_start_token": "<s>"}
    opt = options(model)
    onmt_model = build_base_model(opt, dict_to_vocabs(vocab))
    state = onmt_model.state_dict()
    mapped = weights(ckpt["model"], model["encoder_layers"], model["decoder_layers"])
    left = [k for k in state if k not in mapped and not k.endswith(".pe.pe")]
    if left or set(mapped) - set(state):
        raise SystemExit(f"{checkpoint}: no seqattn weight for {left}, no OpenNMT-py place for {set(mapped) - set(state)}")
    for key, tensor in mapped.items():
        if state[key].shape != tensor.shape:
            raise SystemExit(f"{checkpoint}: {key} is {tuple(tensor.shape)} here, {tuple(state[key].shape)} in OpenNMT-py")
        state[key] = tensor
    torch.save({"model": {k: v for k, v in state.items() if not k.startswith("generator.")},
                "generator": {k.removeprefix("generator."): v for k, v in state.items() if k.startswith("generator.")},
                "vocab": vocab, "opt": opt, "optim": None}, output)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="A pre-norm Transformer best.pt / last.pt with spm.model beside it.")
    parser.add_argument("output", type=Path, help="The OpenNMT-py checkpoint to write.")
    args = parser.parse_args()
    convert(args.checkpoint, args.output)
    print(f"converted {args.checkpoint} -> {args.output}")


if __name__ == "__main__":
    main()
