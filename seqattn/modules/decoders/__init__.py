from seqattn.modules.decoders.luong import LuongDecoder
from seqattn.modules.decoders.recurrent import RecurrentDecoder, Step
from seqattn.modules.decoders.rnn import RNNDecoder
from seqattn.modules.decoders.transformer import TransformerDecoder

__all__ = ["LuongDecoder", "RNNDecoder", "RecurrentDecoder", "Step", "TransformerDecoder"]
