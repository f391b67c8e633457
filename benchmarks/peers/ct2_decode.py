"""Beam search with CTranslate2 over a file of sentencepiece pieces, timed; prints one JSON line.

    python ct2_decode.py CT2_DIR SRC.sp HYP.sp --threads 2 --beam 5 --batch 64 --max-len 70 [--compute-type int8]

onmt_speed.py runs it as its own process so that its peak RSS is CTranslate2's alone. The clock
covers `translate_batch` over all sentences, after a warm-up on the first two.
"""
from __future__ import annotations

import argparse
import json
import time

import ctranslate2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    parser.add_argument("src")
    parser.add_argument("hyp")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64, help="Sentences per batch.")
    parser.add_argument("--max-len", type=int, default=256, help="Maximum output pieces.")
    parser.add_argument("--length-penalty", type=float, default=0.6, help="Score / length ** this.")
    parser.add_argument("--compute-type", choices=["float32", "int8"], default="float32",
                        help="CTranslate2's CPU compute type (int8: weights quantised when loaded).")
    args = parser.parse_args()

    with open(args.src, encoding="utf-8") as f:
        source = [line.split() for line in f]
    translator = ctranslate2.Translator(args.model_dir, device="cpu", compute_type=args.compute_type,
                                        inter_threads=1, intra_threads=args.threads)
    options = dict(beam_size=args.beam, max_batch_size=args.batch, batch_type="examples",
                   length_penalty=args.length_penalty, max_decoding_length=args.max_len)
    translator.translate_batch(source[:2], **options)  # warm-up
    start = time.perf_counter()
    results = translator.translate_batch(source, **options)
    seconds = time.perf_counter() - start
    best = [r.hypotheses[0] for r in results]
    with open(args.hyp, "w", encoding="utf-8") as f:
        f.writelines(" ".join(h) + "\n" for h in best)
    print(json.dumps({"seconds": seconds, "sentences": len(best)}))


if __name__ == "__main__":
    main()
