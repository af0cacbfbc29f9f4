"""Matched accuracy of migc checkpoints of infogan_mnist scored two ways by the PyTorch
peer: with batchnorm's running statistics (as migc eval scores them) and with the
statistics of each batch of 64 real test digits. A large gap would mean that Q's
running statistics, gathered mostly on generated images, cost accuracy on real ones
(bench/quality.md: they do not).

    /usr/bin/python3 bench/peer/batchstats_eval.py RUN/checkpoints/step-N.safetensors...
"""
import os
import sys

import torch

import models
import parity
import train

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    torch.set_num_threads(1)
    test_x, test_y = train.mnist(os.path.join(ROOT, "data"), "t10k")
    for path in sys.argv[1:]:
        state, _ = parity.read_safetensors(path)
        torch.manual_seed(1)
        peer = models.infogan_mnist({}, models.mig("infogan_mnist"))
        parity.load_into_peer(peer, state)
        running, _, _ = train.evaluate(peer, test_x, test_y, 64)
        for net in peer.nets.values():
            net.train()
        with torch.no_grad():
            order = torch.randperm(len(test_x), generator=torch.Generator().manual_seed(0))
            pred = torch.empty(len(test_x), dtype=torch.long)
            for i in range(0, len(test_x), 64):
                idx = order[i:i + 64]  # 10,000 = 156 * 64 + 16: the last batch is 16
                pred[idx] = peer.encode(test_x[idx])[0].argmax(1)
        batch, mapping = train.matched_accuracy(pred.numpy(), test_y.numpy(), 10)
        print("%s: running statistics %.4f, batch statistics %.4f (code value -> label: %s)"
              % (path, running, batch, " ".join("%d->%d" % (i, l) for i, l in enumerate(mapping))))


if __name__ == "__main__":
    main()
