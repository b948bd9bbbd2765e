"""Character-level recurrent language model (the d2l tutorial's RNN, GRU and LSTM).

Token ids (N, T) -> one-hot vectors (or an embedding) -> recurrent layer(s) -> a Linear to
the vocabulary: logits (N, T, V) that score the next character at every step.

Interface the training loop relies on:
    logits, state = model(x, state)     state None means zeros; x is a LongTensor (N, T)
    state = model.detach_state(state)   carry the state to the next batch, cut from the graph
    ids = model.generate(prefix_ids, num_chars)   greedy continuation of a prefix

The state has torch's layout for every cell, batch-first or not: a tensor (num_layers, N, H)
for rnn and gru, a tuple (h, c) of two such tensors for lstm and lstm_scratch.
`lstm_scratch` writes the LSTM's gates out with matrix products so the maths can be read.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dlrun.config.options.models import Cell, CharRNNConfig
from dlrun.config.registry import MODELS
from dlrun.data.dataset import LANGUAGE_MODEL, DatasetMeta
from dlrun.errors import DlrunError
from dlrun.models.layers import require_task

State = torch.Tensor | tuple[torch.Tensor, ...]


class ScratchLSTM(nn.Module):
    """One LSTM layer with its gates written out, as in the d2l tutorial (batch first).

    I_t = sigmoid(X_t W_xi + H_{t-1} W_hi + b_i)        input gate
    F_t = sigmoid(X_t W_xf + H_{t-1} W_hf + b_f)        forget gate
    O_t = sigmoid(X_t W_xo + H_{t-1} W_ho + b_o)        output gate
    C~_t = tanh(X_t W_xc + H_{t-1} W_hc + b_c)          candidate memory
    C_t = F_t * C_{t-1} + I_t * C~_t                    memory cell
    H_t = O_t * tanh(C_t)                               hidden state

    Weights start N(0, 0.01) and biases at zero, like the tutorial; `init_weights` and
    `init_biases` list them so that an initialiser can reach them. The matrices have the
    tutorial's (inputs, outputs) layout, as they multiply from the right: X @ W_xi.
    """

    # The matrices are (inputs, outputs), as X @ W reads; inits take fan_in from dim 0.
    init_weights_transposed = True

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size

        def weight(rows: int) -> nn.Parameter:
            return nn.Parameter(torch.randn(rows, hidden_size) * 0.01)

        def bias() -> nn.Parameter:
            return nn.Parameter(torch.zeros(hidden_size))

        self.W_xi, self.W_hi, self.b_i = weight(input_size), weight(hidden_size), bias()
        self.W_xf, self.W_hf, self.b_f = weight(input_size), weight(hidden_size), bias()
        self.W_xo, self.W_ho, self.b_o = weight(input_size), weight(hidden_size), bias()
        self.W_xc, self.W_hc, self.b_c = weight(input_size), weight(hidden_size), bias()

    @property
    def init_weights(self) -> list[nn.Parameter]:
        """The weight matrices (not the biases), for initialisers."""
        return [self.W_xi, self.W_hi, self.W_xf, self.W_hf,
                self.W_xo, self.W_ho, self.W_xc, self.W_hc]  # fmt: skip

    @property
    def init_biases(self) -> list[nn.Parameter]:
        """The gate biases, for initialisers (which zero them by default)."""
        return [self.b_i, self.b_f, self.b_o, self.b_c]

    def forward(
        self, inputs: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """inputs (N, T, input_size); state (h, c), each (1, N, H) as nn.LSTM's, or None."""
        batch = inputs.shape[0]
        if state is None:
            H = inputs.new_zeros(batch, self.hidden_size)
            C = inputs.new_zeros(batch, self.hidden_size)
        else:
            H, C = state[0][0], state[1][0]
        outputs = []
        for X in inputs.unbind(dim=1):  # one time step at a time: X is (N, input_size)
            I = torch.sigmoid(X @ self.W_xi + H @ self.W_hi + self.b_i)  # noqa: E741
            F_ = torch.sigmoid(X @ self.W_xf + H @ self.W_hf + self.b_f)
            O = torch.sigmoid(X @ self.W_xo + H @ self.W_ho + self.b_o)  # noqa: E741
            C_tilda = torch.tanh(X @ self.W_xc + H @ self.W_hc + self.b_c)
            C = F_ * C + I * C_tilda
            H = O * torch.tanh(C)
            outputs.append(H)
        return torch.stack(outputs, dim=1), (H.unsqueeze(0), C.unsqueeze(0))

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"


_TORCH_CELLS = {Cell.rnn: nn.RNN, Cell.gru: nn.GRU, Cell.lstm: nn.LSTM}


class CharRNN(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        cell: Cell,
        hidden_size: int,
        num_layers: int = 1,
        embedding: int | None = None,
    ) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.cell = Cell(cell)
        if embedding is None:
            self.embedding = None  # one-hot inputs
            input_size = vocab_size
        else:
            self.embedding = nn.Embedding(vocab_size, embedding)
            input_size = embedding
        if self.cell is Cell.lstm_scratch:
            if num_layers != 1:
                raise ValueError("lstm_scratch has one layer only")
            self.rnn: nn.Module = ScratchLSTM(input_size, hidden_size)
        else:
            self.rnn = _TORCH_CELLS[self.cell](
                input_size, hidden_size, num_layers=num_layers, batch_first=True
            )
        self.output = nn.Linear(hidden_size, vocab_size)
        if self.cell is Cell.lstm_scratch:
            # The tutorial's from-scratch model starts its output layer N(0, 0.01) as well.
            nn.init.normal_(self.output.weight, std=0.01)
            nn.init.zeros_(self.output.bias)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Token ids (N, T) -> input vectors (N, T, one-hot V or embedding size)."""
        if self.embedding is None:
            return F.one_hot(x, self.vocab_size).to(self.output.weight.dtype)
        return self.embedding(x)

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """x: LongTensor (N, T) of token ids -> (logits (N, T, V), state)."""
        outputs, state = self.rnn(self.embed(x), state)
        return self.output(outputs), state

    @staticmethod
    def detach_state(state: State | None) -> State | None:
        """The same state cut from the autograd graph, to carry it across batches."""
        if state is None:
            return None
        if isinstance(state, torch.Tensor):
            return state.detach()
        return tuple(s.detach() for s in state)

    @torch.no_grad()
    def generate(self, prefix_ids: list[int], num_chars: int) -> list[int]:
        """Warm up on the prefix, then greedily predict num_chars more ids; returns those."""
        if len(prefix_ids) == 0:
            raise DlrunError("generate needs a prefix of at least one character.")
        if num_chars < 0:
            raise DlrunError(f"generate: num_chars={num_chars} is out of range: use >= 0.")
        bad = [i for i in prefix_ids if not 0 <= int(i) < self.vocab_size]
        if bad:
            raise DlrunError(
                f"generate: prefix ids {bad} are outside the vocabulary [0, {self.vocab_size})."
            )
        device = self.output.weight.device
        was_training = self.training
        self.eval()
        try:
            x = torch.tensor([list(prefix_ids)], dtype=torch.long, device=device)
            logits, state = self(x)
            new: list[int] = []
            for _ in range(num_chars):
                next_id = int(logits[0, -1].argmax())
                new.append(next_id)
                x = torch.tensor([[next_id]], dtype=torch.long, device=device)
                logits, state = self(x, state)
        finally:
            self.train(was_training)
        return new


@MODELS.register("char_rnn")
def char_rnn(cfg: CharRNNConfig, meta: DatasetMeta) -> CharRNN:
    require_task("char_rnn", meta.task, LANGUAGE_MODEL)
    if len(meta.vocab) < 1:
        raise DlrunError(
            "model=char_rnn needs the data set's vocabulary, but this data set has none."
        )
    if Cell(cfg.cell) is Cell.lstm_scratch and cfg.num_layers != 1:
        raise DlrunError(
            f"model.num_layers={cfg.num_layers} is out of range for model.cell=lstm_scratch, "
            f"which has 1 layer only: use model.cell=lstm for stacked layers."
        )
    return CharRNN(len(meta.vocab), cfg.cell, cfg.hidden_size, cfg.num_layers, cfg.embedding)
