"""End to end: Embedding -> LSTM -> Linear learns to predict the next character of a repeating string."""

import numpy as np

import tinygrad_rnn as tg
from tinygrad_rnn import nn, optim
from tinygrad_rnn.nn import functional as F


class CharModel(nn.Module):
    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, 8, rng=0)
        self.rnn = nn.LSTM(8, 32, rng=1)
        self.decoder = nn.Linear(32, vocab, rng=2)

    def forward(self, ids, hx=None):
        output, state = self.rnn(self.embedding(ids), hx)
        return self.decoder(output), state


def test_small_lstm_learns_a_repeating_string_with_adam():
    text = "hello world, "
    vocab = sorted(set(text))
    stream = np.array([vocab.index(ch) for ch in text * 20])
    model = CharModel(len(vocab))
    opt = optim.Adam(model.parameters(), lr=0.02)
    steps, seq, batch = 300, 16, 4
    rng = np.random.default_rng(0)
    losses = []
    for _ in range(steps):
        starts = rng.integers(0, len(stream) - seq - 1, batch)
        inputs = np.stack([stream[s : s + seq] for s in starts], axis=1)  # (T, N)
        targets = np.stack([stream[s + 1 : s + seq + 1] for s in starts], axis=1)
        logits, _ = model(inputs)
        loss = F.cross_entropy(logits.reshape(-1, len(vocab)), targets.reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        losses.append(loss.item())
    uniform = np.log(len(vocab))
    assert losses[0] > 0.8 * uniform
    assert np.mean(losses[-20:]) < 0.05, f"final loss {np.mean(losses[-20:]):.4f}"
    with tg.no_grad():
        logits, _ = model(stream[:40, None])
    accuracy = (logits.data.argmax(-1)[4:, 0] == stream[1:41][4:]).mean()
    assert accuracy == 1.0
