"""DeBERTa-v2/v3 [CLS] vectors, written for ONNX Runtime's CPU provider.

The same weights and the same arithmetic as transformers' ``DebertaV2Model(...).last_hidden_state[:, :1]``,
rearranged where the exported graph of the original spends time on work the service never uses
or on memory traffic (the profile is in docs/architecture.md, "The CPU graph"):

- the last layer computes its attention and feed-forward for the [CLS] row only (the other rows
  of the last layer are never read): its queries, scores, softmax, output projection and FFN
  shrink from S rows to 1;
- the 1/sqrt(3d) scale is applied once to the queries (and to the projected relative positions
  for p2c) instead of to three S x S score matrices;
- the position->content scores are picked down the columns of (relative queries x keys), so the
  S x S transpose after the gather goes;
- the relative-position projections broadcast over the batch instead of being repeated;
- padding is masked on the key side only (an additive bias), which leaves every real token's
  row unchanged (padded rows are never read);
- the row-wise work (projections, output projection, layer norms, feed-forward) runs on the N real
  tokens of the batch packed into [N, hidden], not on [batch x S] with its padding; only the
  attention itself uses the padded [batch, heads, S, S] layout (an index_select each way);
- the relative-position gather indices are expanded to [batch, heads, S, S] once per call, not once
  per layer (ONNX's GatherElements takes no broadcast index).

Output: ``last_hidden_state`` of shape [batch, 1, hidden]; the engine's CLS pooling reads row 0 as
from the full graph. models/export_deberta.py writes it as ``model.cpu.onnx`` and checks it
against torch (CLS within 1e-4).
"""
from __future__ import annotations

import torch


def _log_bucket(rel: torch.Tensor, bucket_size: int, max_position: int) -> torch.Tensor:
    """transformers' make_log_bucket_position, for an integer [S, S] tensor."""
    sign = torch.sign(rel)
    mid = bucket_size // 2
    abs_pos = torch.where((rel < mid) & (rel > -mid), torch.tensor(mid - 1).type_as(rel), torch.abs(rel))
    log_pos = torch.ceil(torch.log(abs_pos / mid) / torch.log(torch.tensor((max_position - 1) / mid)) * (mid - 1)) + mid
    return torch.where(abs_pos <= mid, rel.type_as(log_pos), log_pos * sign).to(torch.long)


class DebertaClsCpu(torch.nn.Module):
    """[CLS] rows of a DebertaV2Model, as [batch, 1, hidden]."""

    def __init__(self, model):
        super().__init__()
        config = model.config
        enc = model.encoder
        att = enc.layer[0].attention.self
        supported = (att.relative_attention and att.share_att_key and enc.conv is None
                     and set(att.pos_att_type) == {"c2p", "p2c"} and getattr(model, "z_steps", 0) <= 1)
        if not supported:
            raise SystemExit("the CPU graph covers DeBERTa-v3 (shared attention keys, c2p|p2c, no conv layer)")
        self.model = model
        self.heads = att.num_attention_heads
        self.span = att.pos_ebd_size
        self.buckets = enc.position_buckets
        self.max_position = enc.max_relative_positions
        self.scale = float((att.attention_head_size * 3) ** 0.5)
        self.mask_min = torch.finfo(torch.float32).min
        self.hidden = config.hidden_size

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """[B, S, D] -> [B, H, S, d]"""
        b, s, _ = x.shape
        return x.view(b, s, self.heads, -1).permute(0, 2, 1, 3)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        m = self.model
        h = m.embeddings(input_ids=input_ids, token_type_ids=torch.zeros_like(input_ids), mask=attention_mask)
        b, seq = input_ids.shape
        # Tokens only: the row-wise work (projections, feed-forward, layer norms) runs on the N real
        # tokens of the batch ([N, D]); attention runs on the padded [B, S] layout.
        flat = attention_mask.reshape(-1)
        real = torch.nonzero(flat).squeeze(1)  # [N]: rows of [B*S] that hold a token
        # [B*S]: the packed row each padded position reads; padding reads row 0 (its key is masked).
        unpack = torch.where(flat > 0, torch.cumsum(flat, 0) - 1, torch.zeros_like(flat))
        x = h.reshape(b * seq, self.hidden).index_select(0, real)
        span2 = 2 * self.span
        # Relative positions [S, S] and the flat indices into the [S, 2k] products.
        ids = torch.arange(seq, dtype=torch.long)
        rel = ids[:, None] - ids[None, :]
        if self.buckets > 0 and self.max_position > 0:
            rel = _log_bucket(rel, self.buckets, self.max_position)
        c2p = torch.clamp(rel + self.span, 0, span2 - 1)
        p2c = torch.clamp(-rel + self.span, 0, span2 - 1)
        p2c = p2c.transpose(0, 1)  # [i, j] -> p2c[j, i]: read down the columns, no transpose after
        # Additive key mask [B, 1, 1, S].
        bias = (1.0 - attention_mask[:, None, None, :].to(torch.float32)) * self.mask_min
        rel_emb = m.encoder.get_rel_embedding()[0:span2, :]
        # The gather indices expanded to [B, H, Sq, S] once, not once per layer (GatherElements
        # takes no broadcast index).
        full = (c2p.expand(b, self.heads, seq, seq), p2c.expand(b, self.heads, seq, seq))
        cls = (c2p[:1].expand(b, self.heads, 1, seq), p2c[:1].expand(b, self.heads, 1, seq))
        layers = m.encoder.layer
        for layer in layers[:-1]:
            x = self._layer(layer, x, real, unpack, None, rel_emb, bias, *full)
        # The last layer: queries, attention and feed-forward for the [CLS] rows only.
        cls_rows = unpack.view(b, seq)[:, 0]
        return self._layer(layers[-1], x, real, unpack, cls_rows, rel_emb, bias, *cls).unsqueeze(1)

    def _padded(self, rows: torch.Tensor, unpack: torch.Tensor, b: int, s: int) -> torch.Tensor:
        """[N, D] packed rows -> [B, H, S, d]"""
        return self._heads(rows.index_select(0, unpack).view(b, s, self.hidden))

    def _layer(self, layer, x, real, unpack, cls_rows, rel_emb, bias, c2p, p2c):
        """One encoder layer on packed rows [N, D] -> [N, D], or -> [B, D] for the [CLS] rows."""
        att = layer.attention.self
        b, _, sq, s = c2p.shape
        q_in = x if cls_rows is None else x.index_select(0, cls_rows)
        if cls_rows is None:
            q = self._padded(att.query_proj(q_in), unpack, b, s)
        else:
            q = self._heads(att.query_proj(q_in).view(b, 1, self.hidden))
        q = q / self.scale  # [B, H, Sq, d]
        k = self._padded(att.key_proj(x), unpack, b, s)  # [B, H, S, d]
        v = self._padded(att.value_proj(x), unpack, b, s)
        # Relative-position projections, shared keys: [1, H, 2k, d], broadcast over the batch.
        pos_k = self._heads(att.key_proj(rel_emb)[None])
        pos_q = self._heads(att.query_proj(rel_emb)[None]) / self.scale
        scores = torch.matmul(q, k.transpose(-1, -2))  # [B, H, Sq, S]
        # c2p[i, j] = (q_i . pos_k[c2p[i, j]]): from [B, H, Sq, 2k] along the last axis.
        c2p_all = torch.matmul(q, pos_k.transpose(-1, -2))
        scores = scores + torch.gather(c2p_all, -1, c2p)
        # p2c[i, j] = (k_j . pos_q[p2c[j, i]]): from [B, H, 2k, S] along the row axis.
        p2c_all = torch.matmul(pos_q, k.transpose(-1, -2))
        scores = scores + torch.gather(p2c_all, -2, p2c)
        probs = torch.softmax(scores + bias, dim=-1)
        context = torch.matmul(probs, v).permute(0, 2, 1, 3).reshape(b * sq, self.hidden)
        if cls_rows is None:
            context = context.index_select(0, real)  # back to the packed rows
        attended = layer.attention.output(context, q_in)
        return layer.output(layer.intermediate(attended), attended)
