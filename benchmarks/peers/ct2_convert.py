"""Convert an OpenNMT-py 3.5.1 Transformer checkpoint to a CTranslate2 model folder (fp32).

    python ct2_convert.py model_step_120.pt ct2

OpenNMT-py 3.5.1 trains with self_attn_type "scaled-dot-flash" (the same scaled dot-product
attention, computed by torch's fused kernel) and CTranslate2's converter accepts only the name
"scaled-dot"; the weights are the same, so a copy of the checkpoint is renamed and converted.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
from ctranslate2.converters import OpenNMTPyConverter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("output_dir", type=Path)
    args = parser.parse_args()

    checkpoint = torch.load(args.checkpoint, map_location="cpu", weights_only=False)  # pickles its options
    if checkpoint["opt"].self_attn_type == "scaled-dot-flash":
        checkpoint["opt"].self_attn_type = "scaled-dot"
    renamed = args.checkpoint.with_name(args.checkpoint.stem + ".ct2.pt")
    torch.save(checkpoint, renamed)
    OpenNMTPyConverter(str(renamed), unsafe_deserialization=True).convert(str(args.output_dir), force=True)
    renamed.unlink()
    print(f"converted {args.checkpoint} -> {args.output_dir}")


if __name__ == "__main__":
    main()
