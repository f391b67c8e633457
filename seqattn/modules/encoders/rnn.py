"""Recurrent source encoder (Cho et al. 2014; bidirectional as in Bahdanau et al. 2015, sec. 3.2)."""
from __future__ import annotations

from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


class RNNEncoder(nn.Module):
    """Embeds source ids and runs a (bi)GRU over them, padding-invariant through packing.

    Annotations h_j = [→h_j; ←h_j] when bidirectional, else →h_j.
    """

    def __init__(
        self, vocab_size: int, emb_dim: int, hidden_dim: int, pad_id: int,
        bidirectional: bool, num_layers: int = 1, dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, emb_dim, padding_idx=pad_id)
        self.dropout = nn.Dropout(dropout)
        self.rnn = nn.GRU(
            emb_dim, hidden_dim, num_layers=num_layers, batch_first=True,
            bidirectional=bidirectional, dropout=dropout if num_layers > 1 else 0.0,
        )
        self.output_dim = hidden_dim * (2 if bidirectional else 1)

    def forward(self, src: Tensor, src_mask: Tensor) -> tuple[Tensor, Tensor]:
        """src, src_mask: [B, S] -> annotations h [B, S, output_dim], final state [B, hidden_dim].

        The final state is the top layer's last direction: →h_{T} for a unidirectional encoder,
        ←h_1 for a bidirectional one (the input of s_0 = tanh(W_s ←h_1), Bahdanau A.2.2).
        """
        x = self.dropout(self.embed(src))  # [B, S, E]
        lengths = src_mask.sum(dim=1).cpu()
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, h_n = self.rnn(packed)  # h_n: [layers * dirs, B, H]
        h, _ = pad_packed_sequence(out, batch_first=True, total_length=src.size(1))
        return h, h_n[-1]
