"""Brute-force gradients for checking losses against numpy."""
import numpy as np
import torch


def numeric_gradient(f, x, h=1e-6):
    """Central differences of the scalar function f at every element of the float64 array x."""
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        grad[i] = (f(up) - f(down)) / (2 * h)
    return grad


def value_and_grad(fn, x, *args):
    """fn's value and gradient with respect to x, in torch float64."""
    x = torch.tensor(x, requires_grad=True)
    value = fn(x, *args)
    value.backward()
    return value.item(), x.grad.numpy()
