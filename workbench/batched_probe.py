"""Several probes trained together as one batched model (stacked weights, batched matmuls).

:func:`train_probes` trains a list of :class:`ProbeJob` (seeds of a probe, tasks sharing
embeddings, ...) and returns one :class:`workbench.probe.Probe` per job, each the one
:func:`workbench.probe.train_probe` returns for the same job and seed:

* same start: each member is built by the sequential code (``torch.manual_seed(seed)``, then
  the weights and the training set's standardisation), then its weights are stacked;
* same data order: one ``torch.Generator`` per member seeded with its seed draws the epoch's
  permutation, as the sequential probe's own generator does;
* same dropout masks: a second generator per member starts from the global RNG state that
  the sequential probe has after building its weights (where its ``nn.Dropout`` draws come
  from) and draws each step's mask with the same call (``bernoulli_(1 - p)`` on a tensor
  of the layer's shape, then ``/ (1 - p)``): the CPU dropout kernel's own recipe;
* same arithmetic: each member's GEMMs are the ``addmm``/``mm`` calls of ``nn.Linear`` and
  its backward (:class:`_BatchedLinear`); the loss is each member's own :meth:`Probe.loss`
  on its slice (gradients of a sum of independent losses are each member's own); Adam is
  torch's single-tensor update written out on the stacked tensors (elementwise, so
  identical per member);
* per-member early stopping: each member keeps its best validation epoch's state and leaves
  the stack when its patience runs out (the others go on); its best state is restored.

Members are trained in *cohorts*: jobs that take the same optimisation steps (same number of
training chunks, input dimension, hidden width and weight decay) share one stack; kinds and
output widths may differ (output layers are stacked per width). On CPU the result
is bit-identical to the sequential probe for a fixed number of epochs (``tests/test_probe.py``);
with early stopping the two stop at the same epoch unless two validation losses tie to
the last bit. On CUDA the masks come from per-member CUDA generators, which the fused CUDA
dropout kernel of the sequential probe does not use: same distribution, other masks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .embed import Embeddings
from .probe import (DEFAULT_BATCH_SIZE, DEFAULT_LR, DEFAULT_MAX_EPOCHS, DEFAULT_PATIENCE, EVAL_BATCH_SIZE, Probe,
                    _setup_probe, _torch_threads, check_budget, never_finite)

__all__ = ["ProbeJob", "train_probes"]

#: torch.optim.Adam defaults, which the sequential probe uses.
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


@dataclass
class ProbeJob:
    """One probe to train: its data, task and seed (settings None take the task's ProbeSpec)."""

    train: Embeddings
    valid: Embeddings
    task: object
    seed: int
    hidden: int | None = None
    dropout: float | None = None
    weight_decay: float | None = None


class _Member:
    """A job's probe, tensors, generators and early-stopping state."""

    def __init__(self, job: ProbeJob, device: torch.device):
        self.job = job
        self.probe, (self.Xtr, self.ytr, self.Xva, self.yva), self.weight_decay = _setup_probe(
            job.train, job.valid, job.task, job.seed, job.hidden, job.dropout, job.weight_decay, device)
        self.mask_gen = torch.Generator(device=device)
        if device.type == "cpu":
            self.mask_gen.set_state(torch.get_rng_state())  # where the sequential probe's dropout starts
        else:
            self.mask_gen.manual_seed(job.seed)
        self.order_gen = torch.Generator().manual_seed(job.seed)
        self.dropout = self.probe.config["dropout"]
        self.n_out = self.probe.config["n_out"]
        self.best_loss, self.best_state, self.best_epoch, self.bad = math.inf, None, 0, 0
        self.valid_loss = math.nan

    def cohort_key(self) -> tuple:
        return (len(self.Xtr), self.probe.config["in_dim"], self.probe.config["hidden"], float(self.weight_decay))


def _dropout_noise(h: torch.Tensor, members: list[_Member]) -> torch.Tensor:
    """Per member, the factor ``F.dropout(h[i], p, training=True)`` multiplies ``h[i]`` by,
    drawn from the member's generator with the CPU kernel's recipe (``bernoulli_(1 - p)`` on a
    tensor of ``h[i]``'s shape, then ``/ (1 - p)``); 1 for p = 0 (no draw), 0 for p = 1."""
    noise = torch.empty_like(h)
    for i, m in enumerate(members):
        p = m.dropout
        if p == 0:
            noise[i].fill_(1.0)
        elif p == 1:
            noise[i].zero_()
        else:
            noise[i].bernoulli_(1 - p, generator=m.mask_gen)
            noise[i].div_(1 - p)
    return noise


class _BatchedLinear(torch.autograd.Function):
    """``x @ w.T + b`` per member (``[M, B, in]`` → ``[M, B, out]``) whose forward and backward
    are, member by member, the kernels autograd runs for ``nn.Linear`` (``addmm(b, x, w.t())``;
    backward ``grad.t().mm(x)``, ``grad.sum(0)``, ``grad.mm(w)``). ``torch.baddbmm`` would be
    one call, but it rounds differently: a naive loop for small products and another GEMM
    layout for the weight gradient. The per-member GEMMs cost the same FLOPs; what is
    batched is everything around them (one autograd graph, one optimiser update, one
    data pass)."""

    @staticmethod
    def forward(ctx, x, w, b):
        ctx.save_for_backward(x, w)
        out = x.new_empty(len(w), x.shape[1], w.shape[1])
        for i in range(len(w)):  # written in place: no stacking copy
            torch.addmm(b[i], x[i], w[i].t(), out=out[i])
        return out

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = grad.new_empty(x.shape)
            for i in range(len(w)):
                torch.mm(grad[i], w[i], out=grad_x[i])
        if ctx.needs_input_grad[1]:
            grad_w = grad.new_empty(w.shape)
            for i in range(len(w)):
                torch.mm(grad[i].t(), x[i], out=grad_w[i])
        if ctx.needs_input_grad[2]:
            grad_b = grad.new_empty(len(w), grad.shape[2])
            for i in range(len(w)):
                torch.sum(grad[i], 0, out=grad_b[i])
        return grad_x, grad_w, grad_b


class _Stack:
    """The cohort's weights stacked per member, ``[M, out, in]`` / ``[M, out]``, plus Adam's state.

    The hidden layer (MLP) holds every member; output layers are stacked per output width
    (members of tasks with other widths get their own stack), so that no GEMM ever sees a
    padded operand: a GEMM's rounding can depend on its shape.
    """

    def __init__(self, members: list[_Member]):
        self.hidden = members[0].probe.config["hidden"]
        widths: dict[int, list[int]] = {}
        for i, m in enumerate(members):
            widths.setdefault(m.n_out, []).append(i)
        self.groups = list(widths.values())  # member rows of each output stack
        self.out_layer = 3 if self.hidden else 1  # index of the output Linear in Probe.head
        params = []
        if self.hidden:
            params += [torch.stack([m.probe.head[0].weight.detach() for m in members]),
                       torch.stack([m.probe.head[0].bias.detach() for m in members])]
        for rows in self.groups:
            params += [torch.stack([members[i].probe.head[self.out_layer].weight.detach() for i in rows]),
                       torch.stack([members[i].probe.head[self.out_layer].bias.detach() for i in rows])]
        self.params = [t.clone().requires_grad_(True) for t in params]
        self.exp_avg = [torch.zeros_like(t) for t in self.params]
        self.exp_avg_sq = [torch.zeros_like(t) for t in self.params]
        self.step = 0
        self.mean = torch.stack([m.probe.mean for m in members])[:, None, :]
        self.std = torch.stack([m.probe.std for m in members])[:, None, :]

    def _out_params(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        flat = self.params[2:] if self.hidden else self.params
        return [(flat[2 * g], flat[2 * g + 1]) for g in range(len(self.groups))]

    def forward(self, x: torch.Tensor, members: list[_Member] | None, standardized: bool = False) -> list[torch.Tensor]:
        """Each member's logits ``[B, n_out]`` of ``x`` ``[M, B, D]`` (``members`` given: training
        mode, with each member's dropout; ``standardized``: ``x`` is already ``(x - mean) / std``)."""
        h = x if standardized else (x - self.mean) / self.std
        if self.hidden:
            h = torch.relu(_BatchedLinear.apply(h, self.params[0], self.params[1]))
        if members is not None and any(m.dropout for m in members):
            h = h * _dropout_noise(h, members)
        out: list[torch.Tensor | None] = [None] * len(x)
        for rows, (w, b) in zip(self.groups, self._out_params()):
            hg = h if len(rows) == len(h) else h[rows]
            logits = _BatchedLinear.apply(hg, w, b)
            for j, i in enumerate(rows):
                out[i] = logits[j]
        return out

    @torch.no_grad()
    def adam_step(self, lr: float, weight_decay: float) -> None:
        """torch.optim.Adam's single-tensor update (amsgrad off), on every member at once."""
        beta1, beta2 = ADAM_BETAS
        self.step += 1
        bias_correction1 = 1 - beta1**self.step
        bias_correction2 = 1 - beta2**self.step
        step_size = lr / bias_correction1
        bias_correction2_sqrt = bias_correction2**0.5
        for p, exp_avg, exp_avg_sq in zip(self.params, self.exp_avg, self.exp_avg_sq):
            grad = p.grad
            if weight_decay != 0:
                grad = grad.add(p, alpha=weight_decay)
            exp_avg.lerp_(grad, 1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(ADAM_EPS)
            p.addcdiv_(exp_avg, denom, value=-step_size)
            p.grad = None

    def member_state(self, i: int, member: _Member) -> dict[str, torch.Tensor]:
        """Member ``i``'s weights as its Probe's state dict."""
        state = {k: v.detach().clone() for k, v in member.probe.state_dict().items()}
        if self.hidden:
            state["head.0.weight"] = self.params[0][i].detach().clone()
            state["head.0.bias"] = self.params[1][i].detach().clone()
        for rows, (w, b) in zip(self.groups, self._out_params()):
            if i in rows:
                j = rows.index(i)
                state[f"head.{self.out_layer}.weight"] = w[j].detach().clone()
                state[f"head.{self.out_layer}.bias"] = b[j].detach().clone()
        return state

    def _sliced(self, rows: list[int]) -> tuple[list[list[int]], list[list[int]]]:
        """For members ``rows`` (in order): the new groups and, per parameter, the rows kept."""
        new_index = {old: new for new, old in enumerate(rows)}
        groups, keep = [], []
        if self.hidden:
            keep += [rows, rows]
        for g in self.groups:
            kept = [j for j, i in enumerate(g) if i in new_index]
            keep += [kept, kept]
            if kept:
                groups.append([new_index[g[j]] for j in kept])
        return groups, keep

    def _select(self, rows: list[int], with_state: bool) -> tuple:
        groups, keep = self._sliced(rows)
        def pick(ts):
            return [t[k] for t, k in zip(ts, keep) if k]
        return groups, pick(self.params), (pick(self.exp_avg), pick(self.exp_avg_sq)) if with_state else None

    def view(self, rows: list[int]) -> "_Stack":
        """The same weights restricted to members ``rows`` (for evaluation)."""
        sub = _Stack.__new__(_Stack)
        sub.hidden, sub.out_layer, sub.step = self.hidden, self.out_layer, self.step
        sub.groups, sub.params, _ = self._select(rows, False)
        sub.mean, sub.std = self.mean[rows], self.std[rows]
        return sub

    def keep(self, rows: list[int]) -> None:
        """Go on with members ``rows`` only (their optimiser state too)."""
        self.groups, params, (self.exp_avg, self.exp_avg_sq) = self._select(rows, True)
        self.params = [p.detach().clone().requires_grad_(True) for p in params]
        self.mean, self.std = self.mean[rows], self.std[rows]


def _batch(members: list[_Member], orders: list[torch.Tensor], s: int, e: int) -> tuple[torch.Tensor, list]:
    """Standardised inputs ``[M, B, D]`` and per-member targets of rows ``s:e`` of each
    member's order (one gather when the members share their standardised training set)."""
    rows = [o[s:e] for o in orders]
    ys = [m.ytr[i] for m, i in zip(members, rows)]
    if all(m.Xstd is members[0].Xstd for m in members):
        return members[0].Xstd[torch.stack(rows)], ys
    return torch.stack([m.Xstd[i] for m, i in zip(members, rows)]), ys


def _share_inputs(members: list[_Member]) -> None:
    """Standardise each training set once: members on the same array with the same
    statistics (seeds, tasks on the same audio) share one ``Xstd`` (and one ``Xva``).
    Elementwise, so each row is what the sequential probe computes for its batch."""
    seen: dict[tuple, tuple] = {}
    valid: dict[tuple, torch.Tensor] = {}
    for m in members:
        key = (m.Xtr.data_ptr(), tuple(m.Xtr.shape), m.Xtr.device)
        for prev_mean, prev_std, Xstd in seen.get(key, ()):
            if torch.equal(prev_mean, m.probe.mean) and torch.equal(prev_std, m.probe.std):
                m.Xstd = Xstd
                break
        else:
            m.Xstd = (m.Xtr - m.probe.mean) / m.probe.std
            seen[key] = (*seen.get(key, ()), (m.probe.mean, m.probe.std, m.Xstd))
        vkey = (m.Xva.data_ptr(), tuple(m.Xva.shape), m.Xva.device)
        m.Xva = valid.setdefault(vkey, m.Xva)


@torch.no_grad()
def _valid_losses(stack: _Stack, members: list[_Member]) -> list[float]:
    """Each member's validation loss, as :func:`workbench.probe._eval_loss` computes it; members
    sharing one validation array are evaluated together."""
    out = [math.nan] * len(members)
    groups: dict[int, list[int]] = {}
    for i, m in enumerate(members):
        groups.setdefault(id(m.Xva), []).append(i)
    for rows in groups.values():
        view = stack.view(rows) if len(rows) < len(members) else stack
        X = members[rows[0]].Xva
        totals = [0.0] * len(rows)
        for s in range(0, len(X), EVAL_BATCH_SIZE):
            xb = X[s:s + EVAL_BATCH_SIZE]
            logits = view.forward(xb.expand(len(rows), *xb.shape), None)
            for j, i in enumerate(rows):
                m = members[i]
                totals[j] += float(m.probe.loss(logits[j], m.yva[s:s + EVAL_BATCH_SIZE])) * len(xb)
        for j, i in enumerate(rows):
            out[i] = totals[j] / len(X)
    return out


def _train_cohort(members: list[_Member], lr: float, batch_size: int, max_epochs: int, patience: int,
                  min_delta: float) -> None:
    stack = _Stack(members)
    weight_decay = members[0].weight_decay
    active = list(members)
    n = len(active[0].Xtr)
    device = active[0].Xtr.device
    for epoch in range(1, max_epochs + 1):
        orders = [torch.randperm(n, generator=m.order_gen).to(device) for m in active]
        totals = [0.0] * len(active)
        for s in range(0, n, batch_size):
            x, ys = _batch(active, orders, s, s + batch_size)
            logits = stack.forward(x, active, standardized=True)
            losses = [m.probe.loss(logits[i], y) for i, (m, y) in enumerate(zip(active, ys))]
            torch.stack(losses).sum().backward()
            stack.adam_step(lr, weight_decay)
            for i, loss in enumerate(losses):
                totals[i] += float(loss.detach()) * len(ys[i])
        valid = _valid_losses(stack, active)
        keep = []
        for i, m in enumerate(active):
            m.probe.history.append((epoch, totals[i] / n, valid[i]))
            m.valid_loss = valid[i]
            if valid[i] < m.best_loss - min_delta:
                m.best_loss, m.best_epoch, m.bad = valid[i], epoch, 0
                m.best_state = stack.member_state(i, m)
                keep.append(i)
            else:
                m.bad += 1
                if m.bad < patience:
                    keep.append(i)
        if not keep:
            break
        if len(keep) < len(active):
            stack.keep(keep)
            active = [active[i] for i in keep]


def train_probes(
    jobs: Sequence[ProbeJob],
    *,
    lr: float = DEFAULT_LR,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_epochs: int = DEFAULT_MAX_EPOCHS,
    patience: int = DEFAULT_PATIENCE,
    min_delta: float = 0.0,
    device: str | torch.device = "cpu",
    threads: int | None = None,
) -> list[Probe]:
    """Train every job's probe (batched, see the module docstring); one Probe per job, in order.

    Arguments are those of :func:`workbench.probe.train_probe` (which this equals member by
    member); the global RNG is left untouched.
    """
    check_budget(batch_size, max_epochs, patience)
    device = torch.device(device)
    fork_devices = [device] if device.type == "cuda" else []
    members: list[_Member] = []
    with _torch_threads(threads):
        for job in jobs:
            with torch.random.fork_rng(devices=fork_devices):
                members.append(_Member(job, device))
        _share_inputs(members)
        cohorts: dict[tuple, list[_Member]] = {}
        for m in members:
            cohorts.setdefault(m.cohort_key(), []).append(m)
        for cohort in cohorts.values():
            _train_cohort(cohort, lr, batch_size, max_epochs, patience, min_delta)
    out = []
    for m in members:
        if m.best_state is None:
            raise never_finite(m.job.task.name, m.valid_loss, m.job.seed)
        m.probe.load_state_dict(m.best_state)
        m.probe.best_epoch = m.best_epoch
        out.append(m.probe.eval())
    return out
