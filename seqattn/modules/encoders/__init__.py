from seqattn.modules.encoders.rnn import RNNEncoder
from seqattn.modules.encoders.transformer import TransformerEncoder

__all__ = ["RNNEncoder", "TransformerEncoder"]
