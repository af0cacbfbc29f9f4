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

The InfoGAN peers take their constants and their step settings from the model file
itself (recipe(): the `const` lines, with `-D NAME=VALUE` overrides applied, and each
step's objective weights and adam settings), and refuse a train block whose objectives
they do not implement, so a peer cannot drift from the .mig file it stands for.
"""
import math
import os
import re

import torch
import torch.nn as nn
import torch.nn.functional as F

MODELS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "models")


class RecipeError(Exception):
    """The model file says something the peer does not implement, or a -D is wrong."""


def _value(expr, consts):
    """A constant expression as docs/language.md 4.4 allows it: numbers, + - * /, unary
    minus, parentheses and constants declared above. (Not Python's parser: `lambda`,
    the models' favourite constant, is a Python keyword.)"""
    tokens = re.findall(r"\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|\w+|\S", expr)
    pos = [0]

    def fail():
        raise RecipeError("not a constant expression: %r" % expr.strip())

    def peek():
        return tokens[pos[0]] if pos[0] < len(tokens) else None

    def take():
        pos[0] += 1
        return tokens[pos[0] - 1]

    def atom():
        t = take() if peek() is not None else fail()
        if t in "+-":
            v = atom()
            return -v if t == "-" else v
        if t == "(":
            v = total()
            return v if peek() == ")" and take() else fail()
        if re.fullmatch(r"[\d.].*", t):
            return float(t) if re.search(r"[.eE]", t) else int(t)
        return consts[t] if t in consts else fail()

    def product():
        v = atom()
        while peek() in ("*", "/"):
            v = v * atom() if take() == "*" else v / atom()
        return v

    def total():
        v = product()
        while peek() in ("+", "-"):
            v = v + product() if take() == "+" else v - product()
        return v

    v = total()
    return v if peek() is None else fail()


def _strip_comments(text):
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())


def constants(path, overrides=None):
    """The model file's `const NAME = EXPR` values in order, each `-D NAME=VALUE` of
    overrides ({name: value}) replacing its constant's value; constants declared after
    it are computed from the new value, as migc does."""
    overrides = dict(overrides or {})
    consts = {}
    for m in re.finditer(r"^\s*const\s+(\w+)\s*=\s*([^;\n]+)",
                         _strip_comments(open(path).read()), re.M):
        name = m.group(1)
        consts[name] = _value(overrides.pop(name), {}) if name in overrides \
            else _value(m.group(2), consts)
    if overrides:
        raise RecipeError("-D %s: %s has no constant named '%s'; its constants are: %s" % (
            next(iter(overrides)), os.path.basename(path), next(iter(overrides)),
            ", ".join(consts)))
    return consts


# The InfoGAN train block the peer implements (whitespace removed): the adversarial
# part of each step's objective, the nets it trains, and the MI terms in one of the
# two forms below, W and W2 a constant or a number.
INFOGAN_STEPS = [("disc", "body,D,Q", "bce(D(body(x)),1)+bce(D(f_fake),0)"),
                 ("gen", "G,Q", "bce(D(f_fake),1)")]
MI_FORMS = [(r"-(?P<w>[\w.]+)\*\(mi_c\+mi_s\)", "w", "w"),            # - W * (mi_c + mi_s)
            (r"-(?P<w>[\w.]+)\*mi_c-(?P<w2>[\w.]+)\*mi_s", "w", "w2")]  # - W * mi_c - W2 * mi_s


def recipe(path, overrides=None):
    """What an InfoGAN peer needs from its model file: the constants (with overrides),
    and for each step (disc, gen) lr, beta1, and the weights w_c of mi_c and w_s of
    mi_s in its objective. Raises RecipeError for a train block of another shape."""
    consts = constants(path, overrides)
    text = _strip_comments(open(path).read())
    found = re.findall(r"\bstep\s+(\w+)\s*\(([^)]*)\)\s*:\s*minimize\s+(.*?)\s+with\s+"
                       r"adam\s*\(([^)]*)\)", text, re.S)
    steps = {}
    if len(found) != len(INFOGAN_STEPS):
        raise RecipeError("%s: %d adam steps; the InfoGAN peer implements disc then gen"
                          % (path, len(found)))
    for (name, nets, objective, args), (want, want_nets, adversarial) in zip(found, INFOGAN_STEPS):
        squeezed = re.sub(r"\s+", "", objective)
        nets = re.sub(r"\s+", "", nets)
        match = None
        if name == want and nets == want_nets and squeezed.startswith(adversarial):
            for form, wc, ws in MI_FORMS:
                m = re.fullmatch(form, squeezed[len(adversarial):])
                if m:
                    match = (_value(m.group(wc), consts), _value(m.group(ws), consts))
                    break
        if not match:
            raise RecipeError("%s: step %s(%s) : minimize %s: the peer (bench/peer/models.py) "
                              "implements step %s(%s) : minimize %s - W * (mi_c + mi_s) or "
                              "... - W * mi_c - W2 * mi_s" % (
                                  path, name, nets, " ".join(objective.split()), want,
                                  want_nets.replace(",", ", "), adversarial))
        settings = {"beta1": 0.9}
        for arg in filter(None, (a.strip() for a in args.split(","))):
            key, _, val = arg.partition("=")
            if key.strip() not in ("lr", "beta1"):
                raise RecipeError("%s: step %s: adam(%s): the peer sets only lr and beta1"
                                  % (path, name, args))
            settings[key.strip()] = _value(val, consts)
        steps[name] = {"lr": settings["lr"], "beta1": settings["beta1"],
                       "w_c": match[0], "w_s": match[1]}
    return {"consts": consts, "steps": steps}


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
    body, D and Q heads, steps disc(body, D, Q) then gen(G, Q), with the learning rates,
    beta1 and MI weights of recipe (the model file's)."""

    def __init__(self, G, body, D, Q, nz, image, recipe, data_range):
        self.G, self.body, self.D, self.Q = G, body, D, Q
        self.nets = {"G": G, "body": body, "D": D, "Q": Q}
        self.nz, self.image, self.range = nz, image, data_range
        self.recipe = recipe
        d, g = recipe["steps"]["disc"], recipe["steps"]["gen"]
        self.disc = adam([body, D, Q], d["lr"], d["beta1"])
        self.gen = adam([G, Q], g["lr"], g["beta1"])
        self.steps = {"disc": self.disc, "gen": self.gen}
        self.data = "mnist"

    input_names = ("x", "z", "c", "s")

    def inputs(self, b, g):
        lo, hi = self.range
        x = torch.rand((b, *self.image), generator=g) * (hi - lo) + lo
        return (x, *self.latents(b, g))

    def latents(self, b, g):
        """z, c, s of one batch, from their priors: U(-1, 1), Cat(10), U(-1, 1)."""
        z = torch.rand((b, self.nz), generator=g) * 2 - 1
        c = torch.randint(0, 10, (b,), generator=g)
        s = torch.rand((b, 2), generator=g) * 2 - 1
        return z, c, s

    def generator(self, z, c, s):
        return self.G(torch.cat([z, F.one_hot(c, 10).float(), s], 1))

    def q_heads(self, f):
        h = self.Q[0](f)
        return self.Q[1](h), self.Q[2](h)

    def encode(self, x):
        """Q's code logits and continuous means of real images (the model's encode)."""
        return self.q_heads(self.body(x))

    def mi(self, f_fake, c, s):
        c_logits, s_mean = self.q_heads(f_fake)
        return info_categorical(c, c_logits), info_gaussian(s, s_mean)

    def real_logit(self, x):
        """D's logit of the real images, and the weighted terms disc adds for them
        ({name: (weight, value)}, reported by name): none here."""
        return self.D(self.body(x)), {}

    def step(self, batch):
        """One iteration; returns migc's train_step outputs (mi_c, mi_s as reported
        before disc's update, disc.loss, gen.loss, and real_logit's terms), as detached
        tensors."""
        x, z, c, s = batch
        d, g = self.recipe["steps"]["disc"], self.recipe["steps"]["gen"]
        fake = self.generator(z, c, s)
        # disc(body, D, Q): fake is a constant here (G is not trained by this step)
        f_fake = self.body(fake.detach())
        mi_c, mi_s = self.mi(f_fake, c, s)
        d_real, extra = self.real_logit(x)
        loss = bce(d_real, 1.0) + bce(self.D(f_fake), 0.0)
        for weight, term in extra.values():
            loss = loss + weight * term
        loss = loss - d["w_c"] * mi_c - d["w_s"] * mi_s
        update(loss, *self.disc)
        out = {"mi_c": mi_c.detach(), "mi_s": mi_s.detach(), "disc.loss": loss.detach()}
        out.update({name: term.detach() for name, (_, term) in extra.items()})
        # gen(G, Q): f_fake and the MI terms again, with disc's new body and Q
        f_fake = self.body(fake)
        mi_c, mi_s = self.mi(f_fake, c, s)
        loss = bce(self.D(f_fake), 1.0) - g["w_c"] * mi_c - g["w_s"] * mi_s
        update(loss, *self.gen)
        out["gen.loss"] = loss.detach()
        return out


def mig(name):
    return os.path.join(MODELS_DIR, name + ".mig")


def infogan_mnist_generator():
    """G of models/infogan_mnist.mig (and of infogan_r1_mnist.mig): [74] to [1, 28, 28]."""
    return nn.Sequential(
        nn.Linear(74, 1024), nn.BatchNorm1d(1024), nn.ReLU(),
        nn.Linear(1024, 128 * 7 * 7), nn.BatchNorm1d(128 * 7 * 7), nn.ReLU(),
        Reshape(128, 7, 7),
        nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.ReLU(),
        nn.ConvTranspose2d(64, 1, 4, 2, 1), nn.Sigmoid())


def infogan_mnist_q():
    """Q's head of models/infogan_mnist.mig: body's [1024] to the logits of c and the
    means of s."""
    return nn.ModuleList([nn.Sequential(nn.Linear(1024, 128), nn.BatchNorm1d(128), Lrelu(0.1)),
                          nn.Linear(128, 10), nn.Linear(128, 2)])


def infogan_mnist(overrides=None, path=None):
    G = infogan_mnist_generator()
    body = nn.Sequential(
        nn.Conv2d(1, 64, 4, 2, 1), Lrelu(0.1),
        nn.Conv2d(64, 128, 4, 2, 1), nn.BatchNorm2d(128), Lrelu(0.1),
        nn.Flatten(), nn.Linear(128 * 7 * 7, 1024), nn.BatchNorm1d(1024), Lrelu(0.1))
    D = nn.Linear(1024, 1)
    Q = infogan_mnist_q()
    return InfoGan(G, body, D, Q, 62, (1, 28, 28),
                   recipe(path or mig("infogan_mnist"), overrides), (0.0, 1.0))


def infogan_mlp(overrides=None, path=None):
    G = nn.Sequential(
        nn.Linear(28, 128), nn.ReLU(), nn.Linear(128, 256), nn.ReLU(),
        nn.Linear(256, 784), nn.Sigmoid(), Reshape(1, 28, 28))
    body = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), Lrelu(0.2),
                         nn.Linear(256, 128), Lrelu(0.2))
    D = nn.Linear(128, 1)
    Q = nn.ModuleList([nn.Sequential(nn.Linear(128, 64), Lrelu(0.2)),
                       nn.Linear(64, 10), nn.Linear(64, 2)])
    return InfoGan(G, body, D, Q, 16, (1, 28, 28),
                   recipe(path or mig("infogan_mlp"), overrides), (0.0, 1.0))


def seed_infogan(overrides=None, path=None):
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
    return InfoGan(G, body, D, Q, 88, (1, 32, 32),
                   recipe(path or mig("seed_infogan"), overrides), (-1.0, 1.0))


def dcgan_generator():
    """G of models/dcgan_fashion.mig and wgan_gp_fashion.mig: z [100] to a [1, 28, 28]
    image in [-1, 1], DCGAN's init=normal(0, 0.02) on its weights."""
    d0, d1 = nn.Linear(100, 128 * 7 * 7), nn.ConvTranspose2d(128, 64, 4, 2, 1)
    d2 = nn.ConvTranspose2d(64, 1, 4, 2, 1)
    normal_init(d0, d1, d2)
    return nn.Sequential(d0, nn.BatchNorm1d(128 * 7 * 7), nn.ReLU(), Reshape(128, 7, 7),
                         d1, nn.BatchNorm2d(64), nn.ReLU(), d2, nn.Tanh())


class DcganFashion:
    """models/dcgan_fashion.mig: steps disc(D) then gen(G), both Adam(2e-4, beta1 0.5)."""

    def __init__(self):
        self.G = dcgan_generator()
        c0, c1 = nn.Conv2d(1, 64, 4, 2, 1), nn.Conv2d(64, 128, 4, 2, 1)
        normal_init(c0, c1)
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


def adam_betas(nets, lr, beta1, beta2):
    params = [p for n in nets for p in n.parameters()]
    return params, torch.optim.Adam(params, lr=lr, betas=(beta1, beta2), eps=1e-8)


def input_gradient(y, x):
    """migc's grad(y, x): dy/dx kept in the graph, so a step differentiates it again."""
    return torch.autograd.grad(y, x, create_graph=True)[0]


class WganGpFashion:
    """models/wgan_gp_fashion.mig: steps critic(D), with the gradient penalty at points
    between real and generated images, then gen(G), which updates on the first
    iteration and every n_critic-th after (migc's every=, as the paper's loop trains G
    once per n_critic critic updates); Adam with betas (0, 0.9); the rate, n_critic
    and the penalty's weight from the model file."""

    input_names = ("x", "z", "t")

    def __init__(self, overrides=None, path=None):
        k = constants(path or mig("wgan_gp_fashion"), overrides)
        self.G = dcgan_generator()
        self.D = nn.Sequential(nn.Conv2d(1, 64, 4, 2, 1), Lrelu(0.2),
                               nn.Conv2d(64, 128, 4, 2, 1), Lrelu(0.2),
                               nn.Flatten(), nn.Linear(128 * 7 * 7, 1))
        self.nets = {"G": self.G, "D": self.D}
        self.gp_weight = k["gp_weight"]
        self.n_critic = int(k["n_critic"])
        self.iteration = 0
        self.recipe = {"steps": {"critic": {"lr": k["lr"], "beta1": 0.0, "beta2": 0.9},
                                 "gen": {"lr": k["lr"], "beta1": 0.0, "beta2": 0.9}}}
        self.steps = {"critic": adam_betas([self.D], k["lr"], 0.0, 0.9),
                      "gen": adam_betas([self.G], k["lr"], 0.0, 0.9)}
        self.data, self.range = "fashion", (-1.0, 1.0)

    def inputs(self, b, g):
        x = torch.rand((b, 1, 28, 28), generator=g) * 2 - 1
        return (x, *self.latents(b, g))

    def latents(self, b, g):
        return torch.randn((b, 100), generator=g), torch.rand((b, 1, 1, 1), generator=g)

    def step(self, batch):
        """One iteration; returns migc's train_step outputs (w_dist and gp as reported
        before the critic's update, critic.loss, gen.loss) as detached tensors. gen.loss
        is reported on every iteration, as migc computes it, and applied on the
        n_critic-th."""
        x, z, t = batch
        fake = self.G(z)
        # critic(D): fake is a constant here, and so is xhat, the penalty's point
        xhat = (t * x + (1 - t) * fake.detach()).requires_grad_(True)
        g = input_gradient(self.D(xhat).sum(), xhat)
        norm = torch.sqrt((g * g).sum((1, 2, 3)) + 1e-12)
        gp = ((norm - 1) * (norm - 1)).mean()
        w_dist = self.D(x).mean() - self.D(fake.detach()).mean()
        loss = -w_dist + self.gp_weight * gp
        update(loss, *self.steps["critic"])
        out = {"w_dist": w_dist.detach(), "gp": gp.detach(), "critic.loss": loss.detach()}
        loss = -self.D(fake).mean()
        if self.iteration % self.n_critic == 0:
            update(loss, *self.steps["gen"])
        self.iteration += 1
        out["gen.loss"] = loss.detach()
        return out


class InfoGanR1(InfoGan):
    """models/infogan_r1_mnist.mig: infogan_mnist's steps, D's body without batchnorm, and
    disc's objective plus gamma/2 times the mean squared length of D's input gradient at
    the real images (R1). Constants from the model file."""

    def __init__(self, overrides=None, path=None):
        k = constants(path or mig("infogan_r1_mnist"), overrides)
        G = infogan_mnist_generator()
        body = nn.Sequential(
            nn.Conv2d(1, 64, 4, 2, 1), Lrelu(0.1), nn.Conv2d(64, 128, 4, 2, 1), Lrelu(0.1),
            nn.Flatten(), nn.Linear(128 * 7 * 7, 1024), Lrelu(0.1))
        D = nn.Linear(1024, 1)
        Q = infogan_mnist_q()
        steps = {"disc": {"lr": k["lr_d"], "beta1": 0.5, "w_c": k["lambda"], "w_s": k["lambda_s"]},
                 "gen": {"lr": k["lr_g"], "beta1": 0.5, "w_c": k["lambda"], "w_s": k["lambda_s"]}}
        super().__init__(G, body, D, Q, 62, (1, 28, 28), {"consts": k, "steps": steps},
                         (0.0, 1.0))
        self.gamma = k["gamma"]

    def real_logit(self, x):
        """R1: gamma/2 times the mean squared length of D's gradient at each real image."""
        x = x.detach().requires_grad_(True)
        d_real = self.D(self.body(x))
        grad = input_gradient(d_real.sum(), x)
        return d_real, {"r1": (self.gamma / 2, (grad * grad).sum((1, 2, 3)).mean())}


class PreactBlock(nn.Module):
    """models/resnet_fashion.mig's res: h + conv1(relu(bn1(conv0(relu(bn0(h))))))."""

    def __init__(self, c):
        super().__init__()
        self.bn0, self.conv0 = nn.BatchNorm2d(c), nn.Conv2d(c, c, 3, 1, 1)
        self.bn1, self.conv1 = nn.BatchNorm2d(c), nn.Conv2d(c, c, 3, 1, 1)
        normal_init(self.conv0, self.conv1)

    def forward(self, h):
        r = self.conv0(F.relu(self.bn0(h)))
        return h + self.conv1(F.relu(self.bn1(r)))


class ResnetFashion:
    """models/resnet_fashion.mig: four residual blocks (repeat's instances block0 ..
    block3), bilinear upsampling (align_corners=False) and a maxpool discriminator;
    steps disc(D) then gen(G), Adam(lr, beta1 0.5). Its layers are named here as migc
    names them (tensors()), since instances are not numbered per net."""

    input_names = ("x", "z")
    # tests/cli/peer_golden.sh's tolerance for the gradients of the first and the second
    # step, as a share of each tensor's largest: maxpool sends each gradient to one value
    # of four, and where two differ by a rounding the two sides may pick differently
    golden_tol = (1e-2, 3e-2)

    def __init__(self, overrides=None, path=None):
        k = constants(path or mig("resnet_fashion"), overrides)
        ch = int(k["ch"])
        self.g = {"dense0": nn.Linear(64, ch * 7 * 7), "bn0": nn.BatchNorm1d(ch * 7 * 7),
                  "bn1": nn.BatchNorm2d(ch), "conv0": nn.Conv2d(ch, 32, 3, 1, 1),
                  "bn2": nn.BatchNorm2d(32), "conv1": nn.Conv2d(32, 1, 3, 1, 1)}
        normal_init(self.g["dense0"], self.g["conv0"], self.g["conv1"])
        self.blocks = [PreactBlock(ch) for _ in range(4)]
        self.d = {"conv0": nn.Conv2d(1, 32, 3, 1, 1), "conv1": nn.Conv2d(32, 64, 3, 1, 1),
                  "bn0": nn.BatchNorm2d(64), "dense0": nn.Linear(64 * 7 * 7, 1)}
        normal_init(self.d["conv0"], self.d["conv1"])
        self.G = nn.ModuleList(list(self.g.values()) + self.blocks)
        self.D = nn.ModuleList(list(self.d.values()))
        self.nets = {"G": self.G, "D": self.D}
        self.recipe = {"steps": {"disc": {"lr": k["lr"]}, "gen": {"lr": k["lr"]}}}
        self.steps = {"disc": adam([self.D], k["lr"], 0.5), "gen": adam([self.G], k["lr"], 0.5)}
        self.disc, self.gen = self.steps["disc"], self.steps["gen"]
        self.ch, self.data, self.range = ch, "fashion", (-1.0, 1.0)

    def tensors(self):
        """{migc's variable name: tensor}: parameters and batchnorm statistics."""
        layers = [("G." + n, m) for n, m in self.g.items()] + \
            [("G.block%d.%s" % (i, n), getattr(b, n)) for i, b in enumerate(self.blocks)
             for n in ("bn0", "conv0", "bn1", "conv1")] + \
            [("D." + n, m) for n, m in self.d.items()]
        return {"%s.%s" % (name, role): getattr(m, role) for name, m in layers
                for role in ("weight", "bias", "running_mean", "running_var")
                if getattr(m, role, None) is not None}

    def inputs(self, b, g):
        x = torch.rand((b, 1, 28, 28), generator=g) * 2 - 1
        return (x, *self.latents(b, g))

    def latents(self, b, g):
        return (torch.randn((b, 64), generator=g),)

    def generator(self, z):
        g = self.g
        h = F.relu(g["bn0"](g["dense0"](z))).reshape(-1, self.ch, 7, 7)
        for block in self.blocks:
            h = block(h)
        h = F.interpolate(F.relu(g["bn1"](h)), scale_factor=2, mode="bilinear",
                          align_corners=False)
        h = F.relu(g["bn2"](g["conv0"](h)))
        h = F.interpolate(h, scale_factor=2, mode="bilinear", align_corners=False)
        return torch.tanh(g["conv1"](h))

    def critic(self, img):
        d = self.d
        h = F.max_pool2d(F.leaky_relu(d["conv0"](img), 0.2), 2)
        h = F.max_pool2d(F.leaky_relu(d["bn0"](d["conv1"](h)), 0.2), 2)
        return d["dense0"](h.flatten(1))

    def step(self, batch):
        x, z = batch
        fake = self.generator(z)
        loss = bce(self.critic(x), 1.0) + bce(self.critic(fake.detach()), 0.0)
        update(loss, *self.disc)
        out = {"disc.loss": loss.detach()}
        loss = bce(self.critic(fake), 1.0)
        update(loss, *self.gen)
        out["gen.loss"] = loss.detach()
        return out


MODELS = {
    "infogan_mnist": infogan_mnist,
    "infogan_mlp": infogan_mlp,
    "dcgan_fashion": DcganFashion,
    "seed_infogan": seed_infogan,
    "wgan_gp_fashion": WganGpFashion,
    "infogan_r1_mnist": InfoGanR1,
    "resnet_fashion": ResnetFashion,
}
