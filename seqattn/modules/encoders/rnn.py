"""Recurrent source encoder (Cho et al. 2014; bidirectional as in Bahdanau et al. 2015, sec. 3.2;
stacked LSTM as in Luong et al. 2015, sec. 2, reading the source backwards as in their Table 1)."""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqattn.modules.dropout import Dropout


CELLS = {"gru": nn.GRU, "lstm": nn.LSTM}


def reversal(lengths: Tensor, S: int) -> Tensor:
    """lengths [B] -> index [B, S] that reverses each row's first lengths[b] positions, padding in
    place (its own inverse)."""
    j = torch.arange(S, device=lengths.device)  # [S]
    n = lengths.unsqueeze(1)  # [B, 1]
    return torch.where(j < n, n - 1 - j, j)


class RNNEncoder(nn.Module):
    """Embeds source ids and runs a (bi)GRU or (bi)LSTM over them, padding-invariant through packing.

    Annotations h_j = [→h_j; ←h_j] when bidirectional, else →h_j. `reverse` feeds each sentence
    backwards (Sutskever et al. 2014; Luong et al. 2015's "reverse") and returns the annotations in
    source order, so h_j still belongs to word j (then a summary of words j..T, the final state
    that of word 1).
    """

    def __init__(
        self, vocab_size: int, emb_dim: int, hidden_dim: int, pad_id: int,
        bidirectional: bool, num_layers: int = 1, dropout: float = 0.0, cell: str = "gru", reverse: bool = False,
    ) -> None:
        super().__init__()
        self.reverse = reverse
        self.embed = nn.Embedding(vocab_size, emb_dim, padding_idx=pad_id)
        self.dropout = Dropout(dropout)
        self.rnn = CELLS[cell](
            emb_dim, hidden_dim, num_layers=num_layers, batch_first=True,
            bidirectional=bidirectional, dropout=dropout if num_layers > 1 else 0.0,
        )
        self.output_dim = hidden_dim * (2 if bidirectional else 1)

    def forward(self, src: Tensor, src_mask: Tensor) -> tuple[Tensor, Tensor | tuple[Tensor, Tensor]]:
        """src, src_mask: [B, S] -> annotations h [B, S, output_dim], the final state of every layer
        and direction as the RNN returns it: h_n [layers * dirs, B, hidden_dim] for a GRU,
        (h_n, c_n) for an LSTM. h_n[-1] is the top layer's last direction: →h_{T} for a
        unidirectional encoder, ←h_1 for a bidirectional one.
        """
        lengths = src_mask.sum(dim=1)  # [B]
        order = reversal(lengths, src.size(1)) if self.reverse else None  # [B, S]
        x = self.dropout(self.embed(src if order is None else src.gather(1, order)))  # [B, S, E]
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, final = self.rnn(packed)  # h_n (and c_n): [layers * dirs, B, H]
        h, _ = pad_packed_sequence(out, batch_first=True, total_length=src.size(1))
        if order is not None:
            h = h.gather(1, order.unsqueeze(-1).expand_as(h))  # back to source order
        return h, final
