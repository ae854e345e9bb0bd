"""Backward passes written the way courses and books write them (our own code in their
styles), right and with the usual mistakes.  A line marked ``# mistake`` is the first wrong
one.  The tests run these functions for real (they are ours) against finite differences,
and give their source text to ``derive verify``, which only reads it."""

import numpy as np


# --- Andrew Ng, Deep Learning Specialization: examples as columns, dZ = A - Y ----------------
def ng_backward(parameters, cache, X, Y):
    m = X.shape[1]
    W2 = parameters["W2"]
    A1 = cache["A1"]
    A2 = cache["A2"]
    dZ2 = A2 - Y
    dW2 = 1 / m * np.dot(dZ2, A1.T)
    db2 = 1 / m * np.sum(dZ2, axis=1, keepdims=True)
    dZ1 = np.dot(W2.T, dZ2) * (1 - np.power(A1, 2))
    dW1 = 1 / m * np.dot(dZ1, X.T)
    db1 = 1 / m * np.sum(dZ1, axis=1, keepdims=True)
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def ng_backward_no_mean(parameters, cache, X, Y):
    m = X.shape[1]
    W2 = parameters["W2"]
    A1 = cache["A1"]
    A2 = cache["A2"]
    dZ2 = A2 - Y
    dW2 = np.dot(dZ2, A1.T)  # mistake
    db2 = 1 / m * np.sum(dZ2, axis=1, keepdims=True)
    dZ1 = np.dot(W2.T, dZ2) * (1 - np.power(A1, 2))
    dW1 = 1 / m * np.dot(dZ1, X.T)
    db1 = 1 / m * np.sum(dZ1, axis=1, keepdims=True)
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def ng_backward_wrong_point(parameters, cache, X, Y):
    m = X.shape[1]
    W2 = parameters["W2"]
    Z1 = cache["Z1"]
    A1 = cache["A1"]
    A2 = cache["A2"]
    dZ2 = A2 - Y
    dW2 = 1 / m * np.dot(dZ2, A1.T)
    db2 = 1 / m * np.sum(dZ2, axis=1, keepdims=True)
    dZ1 = np.dot(W2.T, dZ2) * (1 - np.power(Z1, 2))  # mistake
    dW1 = 1 / m * np.dot(dZ1, X.T)
    db1 = 1 / m * np.sum(dZ1, axis=1, keepdims=True)
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def ng_backward_axis(parameters, cache, X, Y):
    m = X.shape[1]
    W2 = parameters["W2"]
    A1 = cache["A1"]
    A2 = cache["A2"]
    dZ2 = A2 - Y
    dW2 = 1 / m * np.dot(dZ2, A1.T)
    db2 = 1 / m * np.sum(dZ2, axis=0, keepdims=True)  # mistake
    dZ1 = np.dot(W2.T, dZ2) * (1 - np.power(A1, 2))
    dW1 = 1 / m * np.dot(dZ1, X.T)
    db1 = 1 / m * np.sum(dZ1, axis=1, keepdims=True)
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


# --- cs231n: rows are examples, softmax loss, L2 with reg -------------------------------------
def cs231n_backward(X, T, W1, b1, W2, b2, h1, p, reg):
    N = X.shape[0]
    dscores = (p - T) / N
    dW2 = h1.T.dot(dscores)
    db2 = np.sum(dscores, axis=0)
    dh1 = dscores.dot(W2.T)
    dh1[h1 <= 0] = 0
    dW1 = X.T.dot(dh1)
    db1 = dh1.sum(axis=0)
    dW2 += 2 * reg * W2
    dW1 += 2 * reg * W1
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def cs231n_backward_reg(X, T, W1, b1, W2, b2, h1, p, reg):
    N = X.shape[0]
    dscores = (p - T) / N
    dW2 = h1.T.dot(dscores)
    db2 = np.sum(dscores, axis=0)
    dh1 = dscores.dot(W2.T)
    dh1[h1 <= 0] = 0
    dW1 = X.T.dot(dh1)
    db1 = dh1.sum(axis=0)
    dW2 += reg * W2  # mistake
    dW1 += 2 * reg * W1
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def cs231n_backward_axis(X, T, W1, b1, W2, b2, h1, p, reg):
    N = X.shape[0]
    dscores = (p - T) / N
    dW2 = h1.T.dot(dscores)
    db2 = np.sum(dscores, axis=0)
    dh1 = dscores.dot(W2.T)
    dh1[h1 <= 0] = 0
    dW1 = X.T.dot(dh1)
    db1 = dh1  # mistake
    dW2 += 2 * reg * W2
    dW1 += 2 * reg * W1
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


# --- Karpathy, "becoming a backprop ninja": batch norm, PyTorch spelling ----------------------
def karpathy_backward(
    X, Y, W1, bngain, W2, hprebn, bndiff, bndiff2, bnvar, bnvar_inv, bnraw, hact, probs
):
    n = X.shape[0]
    dlogits = (probs - Y) / n
    dhact = dlogits @ W2.T
    dW2 = hact.T @ dlogits
    db2 = dlogits.sum(0)
    dhpreact = (1.0 - hact**2) * dhact
    dbngain = (bnraw * dhpreact).sum(0, keepdims=True)
    dbnraw = bngain * dhpreact
    dbnbias = dhpreact.sum(0, keepdims=True)
    dbndiff = bnvar_inv * dbnraw
    dbnvar_inv = (bndiff * dbnraw).sum(0, keepdims=True)
    dbnvar = (-0.5 * (bnvar + 1e-5) ** -1.5) * dbnvar_inv
    dbndiff2 = (1.0 / (n - 1)) * np.ones_like(bndiff2) * dbnvar
    dbndiff += (2 * bndiff) * dbndiff2
    dhprebn = dbndiff.copy()
    dbnmeani = (-dbndiff).sum(0)
    dhprebn += 1.0 / n * (np.ones_like(hprebn) * dbnmeani)
    dW1 = X.T @ dhprebn
    return {"W1": dW1, "bngain": dbngain, "bnbias": dbnbias, "W2": dW2, "b2": db2}


def karpathy_backward_bessel(
    X, Y, W1, bngain, W2, hprebn, bndiff, bndiff2, bnvar, bnvar_inv, bnraw, hact, probs
):
    n = X.shape[0]
    dlogits = (probs - Y) / n
    dhact = dlogits @ W2.T
    dW2 = hact.T @ dlogits
    db2 = dlogits.sum(0)
    dhpreact = (1.0 - hact**2) * dhact
    dbngain = (bnraw * dhpreact).sum(0, keepdims=True)
    dbnraw = bngain * dhpreact
    dbnbias = dhpreact.sum(0, keepdims=True)
    dbndiff = bnvar_inv * dbnraw
    dbnvar_inv = (bndiff * dbnraw).sum(0, keepdims=True)
    dbnvar = (-0.5 * (bnvar + 1e-5) ** -1.5) * dbnvar_inv
    dbndiff2 = (1.0 / n) * np.ones_like(bndiff2) * dbnvar  # mistake
    dbndiff += (2 * bndiff) * dbndiff2
    dhprebn = dbndiff.copy()
    dbnmeani = (-dbndiff).sum(0)
    dhprebn += 1.0 / n * (np.ones_like(hprebn) * dbnmeani)
    dW1 = X.T @ dhprebn
    return {"W1": dW1, "bngain": dbngain, "bnbias": dbnbias, "W2": dW2, "b2": db2}


def karpathy_softmax(
    X, Y, W1, bngain, W2, hprebn, bndiff, bndiff2, bnvar, bnvar_inv, bnraw, hact, probs
):
    n = X.shape[0]
    dprobs = -Y / probs / n
    dlogits = probs * (dprobs - (dprobs * probs).sum(1, keepdims=True))
    dW2 = hact.T @ dlogits
    db2 = dlogits.sum(0)
    return {"W2": dW2, "b2": db2}


def karpathy_softmax_keepdims(
    X, Y, W1, bngain, W2, hprebn, bndiff, bndiff2, bnvar, bnvar_inv, bnraw, hact, probs
):
    n = X.shape[0]
    dprobs = -Y / probs / n
    dlogits = probs * (dprobs - (dprobs * probs).sum(1))  # mistake
    dW2 = hact.T @ dlogits
    db2 = dlogits.sum(0)
    return {"W2": dW2, "b2": db2}


# --- Nielsen, network.py: lists of layers, one example as a column ----------------------------
def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_prime(z):
    return sigmoid(z) * (1 - sigmoid(z))


class Network:
    def __init__(self, weights, biases):
        self.weights, self.biases = weights, biases
        self.num_layers = len(weights) + 1

    def cost_derivative(self, output_activations, y):
        return output_activations - y

    def backprop(self, x, y):
        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        activation = x
        activations = [x]
        zs = []
        for b, w in zip(self.biases, self.weights):  # noqa: B905
            z = np.dot(w, activation) + b
            zs.append(z)
            activation = sigmoid(z)
            activations.append(activation)
        delta = self.cost_derivative(activations[-1], y) * sigmoid_prime(zs[-1])
        nabla_b[-1] = delta
        nabla_w[-1] = np.dot(delta, activations[-2].transpose())
        for l in range(2, self.num_layers):
            z = zs[-l]
            sp = sigmoid_prime(z)
            delta = np.dot(self.weights[-l + 1].transpose(), delta) * sp
            nabla_b[-l] = delta
            nabla_w[-l] = np.dot(delta, activations[-l - 1].transpose())
        return (nabla_b, nabla_w)

    def backprop_transposed(self, x, y):
        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        activation = x
        activations = [x]
        zs = []
        for b, w in zip(self.biases, self.weights):  # noqa: B905
            z = np.dot(w, activation) + b
            zs.append(z)
            activation = sigmoid(z)
            activations.append(activation)
        delta = self.cost_derivative(activations[-1], y) * sigmoid_prime(zs[-1])
        nabla_b[-1] = delta
        nabla_w[-1] = np.dot(delta, activations[-2].transpose())
        for l in range(2, self.num_layers):
            z = zs[-l]
            sp = sigmoid_prime(z)
            delta = np.dot(self.weights[-l + 1].transpose(), delta) * sp
            nabla_b[-l] = delta
            nabla_w[-l] = np.dot(delta, activations[-l - 1].transpose()).T  # mistake
        return (nabla_b, nabla_w)


# --- nnfs ("Neural Networks from Scratch"): dvalues, dinputs, dweights, dbiases --------------
def nnfs_backward(X, W1, W2, Z1, A1, y_pred, y_true):
    samples = len(y_pred)
    dvalues = (y_pred - y_true) / samples
    dweights2 = np.dot(A1.T, dvalues)
    dbiases2 = np.sum(dvalues, axis=0, keepdims=True)
    dinputs2 = np.dot(dvalues, W2.T)
    drelu = dinputs2.copy()
    drelu[Z1 <= 0] = 0
    dweights1 = np.dot(X.T, drelu)
    dbiases1 = np.sum(drelu, axis=0, keepdims=True)
    return {"W1": dweights1, "b1": dbiases1, "W2": dweights2, "b2": dbiases2}


def nnfs_backward_sign(X, W1, W2, Z1, A1, y_pred, y_true):
    samples = len(y_pred)
    dvalues = (y_true - y_pred) / samples  # mistake
    dweights2 = np.dot(A1.T, dvalues)
    dbiases2 = np.sum(dvalues, axis=0, keepdims=True)
    dinputs2 = np.dot(dvalues, W2.T)
    drelu = dinputs2.copy()
    drelu[Z1 <= 0] = 0
    dweights1 = np.dot(X.T, drelu)
    dbiases1 = np.sum(drelu, axis=0, keepdims=True)
    return {"W1": dweights1, "b1": dbiases1, "W2": dweights2, "b2": dbiases2}


# --- cs231n layers: affine_backward(dout, cache), returns dx, dw, db --------------------------
def affine_backward(dout, cache):
    x, w, b = cache
    dx = dout.dot(w.T)
    dw = x.T.dot(dout)
    db = np.sum(dout, axis=0)
    return dx, dw, db


def affine_backward_transposed(dout, cache):
    x, w, b = cache
    dx = dout.dot(w.T)
    dw = dout.T.dot(x)  # mistake
    db = np.sum(dout, axis=0)
    return dx, dw, db


# --- cs231n layers: batchnorm_backward(dout, cache), staged and in one line ------------------
def batchnorm_backward(dout, cache):
    x, x_hat, mu, var, gamma, beta, eps = cache
    N = x.shape[0]
    dbeta = np.sum(dout, axis=0)
    dgamma = np.sum(dout * x_hat, axis=0)
    dx_hat = dout * gamma
    dvar = np.sum(dx_hat * (x - mu) * -0.5 * (var + eps) ** -1.5, axis=0)
    dmu = np.sum(-dx_hat / np.sqrt(var + eps), axis=0) + dvar * np.mean(-2 * (x - mu), axis=0)
    dx = dx_hat / np.sqrt(var + eps) + dvar * 2 * (x - mu) / N + dmu / N
    return dx, dgamma, dbeta


def batchnorm_backward_no_var(dout, cache):
    x, x_hat, mu, var, gamma, beta, eps = cache
    N = x.shape[0]
    dbeta = np.sum(dout, axis=0)
    dgamma = np.sum(dout * x_hat, axis=0)
    dx_hat = dout * gamma
    dmu = np.sum(-dx_hat / np.sqrt(var + eps), axis=0)
    dx = dx_hat / np.sqrt(var + eps) + dmu / N  # mistake
    return dx, dgamma, dbeta


def batchnorm_backward_alt(dout, cache):
    x, x_hat, mu, var, gamma, beta, eps = cache
    N = x.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dx = (gamma / N) / np.sqrt(var + eps) * (N * dout - dbeta - x_hat * dgamma)
    return dx, dgamma, dbeta


def batchnorm_backward_alt_n(dout, cache):
    x, x_hat, mu, var, gamma, beta, eps = cache
    N = x.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dx = gamma / np.sqrt(var + eps) * (N * dout - dbeta - x_hat * dgamma)  # mistake
    return dx, dgamma, dbeta
