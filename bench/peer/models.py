"""PyTorch peers of the models in models/: the same layers, losses, optimizer settings
and step order as each .mig file, written out by hand. bench/peer/peer.py times them.

Each peer is a class with
  nets         {name: nn.Module}, the model file's nets (parameter counts must match
               `migc bench`'s, which the harness checks before timing);
  inputs(b, g) one batch of the train block's inputs, drawn once from generator g;
  step(batch)  one training iteration: every `step` of the train block, in order, each
               computing its objective with the parameters the steps above left, then
               updating its nets with its own torch.optim.Adam (one optimizer per step,
               as migc keeps separate moments per step).

A step differentiates only with respect to the nets it names (torch.autograd.grad on
exactly those parameters), so no gradient is computed that migc does not compute:
in infogan's gen step the gradient flows through body to G, but body's own weight
gradients are never formed. Values assigned in the train block are computed once and
reused until a step changes a parameter they depend on (docs/language.md 7.1): `fake`
is made once per iteration; `f_fake` and the MI terms are recomputed in gen because disc
changed body and Q.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def bce(logits, target):
    """migc's bce: binary cross-entropy of sigmoid(logits), mean over every element."""
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def info_categorical(c, logits):
    """ln K - softmax cross-entropy, in nats (docs/language.md section 9)."""
    return math.log(logits.shape[1]) - F.cross_entropy(logits, c)


def info_gaussian(s, mean, low=-1.0, high=1.0):
    """H(c) - gaussian_nll(c, mean, std=1) for a uniform(low, high) code of D dims."""
    d = s.shape[1]
    nll = (0.5 * (s - mean) ** 2).sum(1) + 0.5 * math.log(2 * math.pi) * d
    return d * math.log(high - low) - nll.mean()


def adam(nets, lr, beta1):
    params = [p for n in nets for p in n.parameters()]
    return params, torch.optim.Adam(params, lr=lr, betas=(beta1, 0.999), eps=1e-8)


def update(loss, params, opt):
    """One step's update: gradients of loss with respect to params only, then Adam."""
    grads = torch.autograd.grad(loss, params)
    for p, g in zip(params, grads):
        p.grad = g
    opt.step()


def normal_init(*layers):
    """DCGAN's init=normal(0, 0.02) on weights; biases keep PyTorch's default."""
    for layer in layers:
        nn.init.normal_(layer.weight, 0.0, 0.02)


class Lrelu(nn.Module):
    def __init__(self, slope):
        super().__init__()
        self.slope = slope

    def forward(self, x):
        return F.leaky_relu(x, self.slope)


class Reshape(nn.Module):
    def __init__(self, *shape):
        super().__init__()
        self.shape = shape

    def forward(self, x):
        return x.reshape(x.shape[0], *self.shape)


class InfoGan:
    """The shape shared by infogan_mnist, infogan_mlp and seed_infogan: G(z, c, s),
    body, D and Q heads, steps disc(body, D, Q) then gen(G, Q)."""

    def __init__(self, G, body, D, Q, nz, image, lam, lr_d, lr_g, data_range):
        self.G, self.body, self.D, self.Q = G, body, D, Q
        self.nets = {"G": G, "body": body, "D": D, "Q": Q}
        self.nz, self.image, self.lam, self.range = nz, image, lam, data_range
        self.disc = adam([body, D, Q], lr_d, 0.5)
        self.gen = adam([G, Q], lr_g, 0.5)

    def inputs(self, b, g):
        lo, hi = self.range
        x = torch.rand((b, *self.image), generator=g) * (hi - lo) + lo
        z = torch.rand((b, self.nz), generator=g) * 2 - 1
        c = torch.randint(0, 10, (b,), generator=g)
        s = torch.rand((b, 2), generator=g) * 2 - 1
        return x, z, c, s

    def generator(self, z, c, s):
        return self.G(torch.cat([z, F.one_hot(c, 10).float(), s], 1))

    def q_heads(self, f):
        h = self.Q[0](f)
        return self.Q[1](h), self.Q[2](h)

    def mi(self, f_fake, c, s):
        c_logits, s_mean = self.q_heads(f_fake)
        return info_categorical(c, c_logits) + info_gaussian(s, s_mean)

    def step(self, batch):
        x, z, c, s = batch
        fake = self.generator(z, c, s)
        # disc(body, D, Q): fake is a constant here (G is not trained by this step)
        f_fake = self.body(fake.detach())
        mi = self.mi(f_fake, c, s)
        loss = bce(self.D(self.body(x)), 1.0) + bce(self.D(f_fake), 0.0) - self.lam * mi
        update(loss, *self.disc)
        # gen(G, Q): f_fake and the MI terms again, with disc's new body and Q
        f_fake = self.body(fake)
        mi = self.mi(f_fake, c, s)
        loss = bce(self.D(f_fake), 1.0) - self.lam * mi
        update(loss, *self.gen)


def infogan_mnist():
    G = nn.Sequential(
        nn.Linear(74, 1024), nn.BatchNorm1d(1024), nn.ReLU(),
        nn.Linear(1024, 128 * 7 * 7), nn.BatchNorm1d(128 * 7 * 7), nn.ReLU(),
        Reshape(128, 7, 7),
        nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.ReLU(),
        nn.ConvTranspose2d(64, 1, 4, 2, 1), nn.Sigmoid())
    body = nn.Sequential(
        nn.Conv2d(1, 64, 4, 2, 1), Lrelu(0.1),
        nn.Conv2d(64, 128, 4, 2, 1), nn.BatchNorm2d(128), Lrelu(0.1),
        nn.Flatten(), nn.Linear(128 * 7 * 7, 1024), nn.BatchNorm1d(1024), Lrelu(0.1))
    D = nn.Linear(1024, 1)
    Q = nn.ModuleList([nn.Sequential(nn.Linear(1024, 128), nn.BatchNorm1d(128), Lrelu(0.1)),
                       nn.Linear(128, 10), nn.Linear(128, 2)])
    return InfoGan(G, body, D, Q, 62, (1, 28, 28), 1.0, 2e-4, 1e-3, (0.0, 1.0))


def infogan_mlp():
    G = nn.Sequential(
        nn.Linear(28, 128), nn.ReLU(), nn.Linear(128, 256), nn.ReLU(),
        nn.Linear(256, 784), nn.Sigmoid(), Reshape(1, 28, 28))
    body = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), Lrelu(0.2),
                         nn.Linear(256, 128), Lrelu(0.2))
    D = nn.Linear(128, 1)
    Q = nn.ModuleList([nn.Sequential(nn.Linear(128, 64), Lrelu(0.2)),
                       nn.Linear(64, 10), nn.Linear(64, 2)])
    return InfoGan(G, body, D, Q, 16, (1, 28, 28), 1.0, 1e-3, 1e-3, (0.0, 1.0))


def seed_infogan():
    G = nn.Sequential(
        nn.Linear(100, 128), Lrelu(0.2), nn.Linear(128, 128), Lrelu(0.2),
        nn.Linear(128, 8 * 8 * 256), Lrelu(0.2), Reshape(256, 8, 8),
        nn.ConvTranspose2d(256, 128, 4, 2, 1), Lrelu(0.2),
        nn.ConvTranspose2d(128, 1, 4, 2, 1), nn.Tanh())
    body = nn.Sequential(
        nn.Conv2d(1, 128, 4, 2, 1), Lrelu(0.2),
        nn.Conv2d(128, 128, 4, 2, 1), Lrelu(0.2), nn.Flatten())
    D = nn.Linear(8192, 1)
    Q = nn.ModuleList([nn.Sequential(nn.Linear(8192, 128), Lrelu(0.2)),
                       nn.Linear(128, 10), nn.Linear(128, 2)])
    return InfoGan(G, body, D, Q, 88, (1, 32, 32), 1.0, 2e-4, 1e-3, (-1.0, 1.0))


class DcganFashion:
    """models/dcgan_fashion.mig: steps disc(D) then gen(G), both Adam(2e-4, beta1 0.5)."""

    def __init__(self):
        d0, d1 = nn.Linear(100, 128 * 7 * 7), nn.ConvTranspose2d(128, 64, 4, 2, 1)
        d2 = nn.ConvTranspose2d(64, 1, 4, 2, 1)
        c0, c1 = nn.Conv2d(1, 64, 4, 2, 1), nn.Conv2d(64, 128, 4, 2, 1)
        normal_init(d0, d1, d2, c0, c1)
        self.G = nn.Sequential(d0, nn.BatchNorm1d(128 * 7 * 7), nn.ReLU(), Reshape(128, 7, 7),
                               d1, nn.BatchNorm2d(64), nn.ReLU(), d2, nn.Tanh())
        self.D = nn.Sequential(c0, Lrelu(0.2), c1, nn.BatchNorm2d(128), Lrelu(0.2),
                               nn.Flatten(), nn.Linear(128 * 7 * 7, 1))
        self.nets = {"G": self.G, "D": self.D}
        self.disc = adam([self.D], 2e-4, 0.5)
        self.gen = adam([self.G], 2e-4, 0.5)

    def inputs(self, b, g):
        x = torch.rand((b, 1, 28, 28), generator=g) * 2 - 1
        z = torch.randn((b, 100), generator=g)
        return x, z

    def step(self, batch):
        x, z = batch
        fake = self.G(z)
        loss = bce(self.D(x), 1.0) + bce(self.D(fake.detach()), 0.0)
        update(loss, *self.disc)
        update(bce(self.D(fake), 1.0), *self.gen)


MODELS = {
    "infogan_mnist": infogan_mnist,
    "infogan_mlp": infogan_mlp,
    "dcgan_fashion": DcganFashion,
    "seed_infogan": seed_infogan,
}
