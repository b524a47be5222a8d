#!/usr/bin/env python3
"""Prints a DataLoader epoch order computed independently of Ember's C++: Philox4x32-10
(kernels/math/philox.hpp) written again in Python, and the Fisher-Yates shuffle of
engine/data/data_loader.cpp, whose swap i draws from the block (seed, epoch, i).
tests/engine/data/data_loader_test.cpp pins the order this prints:

    python3 tools/reference/philox_order.py 10 42 0    # n, seed, epoch
"""
import sys

MASK = 0xFFFFFFFF


def philox_round(c, k):
    p0, p1 = 0xD2511F53 * c[0], 0xCD9E8D57 * c[2]
    return [(p1 >> 32) ^ c[1] ^ k[0], p1 & MASK, (p0 >> 32) ^ c[3] ^ k[1], p0 & MASK]


def philox4x32_10(counter, key):
    for _ in range(9):
        counter = philox_round(counter, key)
        key = [(key[0] + 0x9E3779B9) & MASK, (key[1] + 0xBB67AE85) & MASK]
    return philox_round(counter, key)


def philox_block(seed, offset, element):
    counter = [0, offset & MASK, element & MASK, (element >> 32) & MASK]
    key = [seed & MASK, (seed >> 32) ^ (((offset >> 32) * 0x9E3779B9) & MASK)]
    return philox4x32_10(counter, key)


def epoch_order(n, seed, epoch):
    order = list(range(n))
    for i in range(n - 1, 0, -1):
        block = philox_block(seed, epoch, i)
        bits = block[0] | (block[1] << 32)
        j = (bits * (i + 1)) >> 64
        order[i], order[j] = order[j], order[i]
    return order


if __name__ == "__main__":
    n, seed, epoch = (int(a) for a in sys.argv[1:4])
    print(epoch_order(n, seed, epoch))
