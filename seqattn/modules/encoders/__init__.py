from seqattn.modules.encoders.rnn import RNNEncoder

__all__ = ["RNNEncoder"]
