from seqattn.modules.decoders.rnn import RNNDecoder

__all__ = ["RNNDecoder"]
