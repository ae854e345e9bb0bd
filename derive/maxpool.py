"""Max-pooling in index form: the window argmax, and the routing of its adjoint.

``maxpool2d(x, k, s)`` is lowered as ``y[b,c,i,j] = Σ_{p,q} onehot(A)[b,c,i,j,k p + q]
x[b,c,s i + p,s j + q]`` where ``A = argmax`` of each window (a hidden integer
equation, :class:`ArgmaxAt` in index form), so the ordinary sweep derives
``δx[b,c,m,n] = Σ_{i,j} [0 ≤ m − s i < k][0 ≤ n − s j < k] onehot(A)[b,c,i,j,
k (m − s i) + n − s j] δy[b,c,i,j]``: each window's delta goes to its argmax.

No view of the one-hot reads the entry ``k (m − s i) + n − s j``.  The planner
(:func:`unfold`) names the window offset ``t = m − s i`` as an index of its own
and keeps ``[m = s i + t]`` as a 0/1 :class:`Route` factor: the offsets become
axes of a ``[B, C, Ho, Wo, k, k]`` array, folded back onto the input by the
routing (a reshape when ``s = k``, as careful NumPy does).
"""

from __future__ import annotations

import sympy as sp

from .indices import as_expr, dim_of, indices_in, is_index, new_index
from .ir import POOL_ARGMAX
from .slide import plain


class ArgmaxAt(sp.Expr):
    """``argmax_{p,q} body``: the flat position ``n_q p + q`` of the first maximum of
    ``body`` over the bound indices ``p, q`` (row-major, as ``np.argmax``)."""

    is_commutative = True
    is_integer = True

    def __new__(cls, body, p, q):
        return sp.Expr.__new__(cls, body, p, q)

    body = property(lambda self: self.args[0])
    bound = property(lambda self: (self.args[1], self.args[2]))

    @property
    def free_symbols(self):
        return self.body.free_symbols - set(self.bound)

    def _eval_derivative(self, s):
        return sp.Integer(0)  # integer positions: never differentiated

    def _sympystr(self, printer):
        p, q = (printer._print(k) for k in self.bound)
        return f"argmax_{p},{q}({printer._print(self.body)})"


class Route(sp.Function):
    """``Route(u, v, t, s, c) = [u = s v + t + c]``: which window ``v`` and offset ``t`` an
    input position ``u`` is (``c``: minus a convolution's padding); the 0/1 fold of
    windows back onto the input."""

    is_integer = True

    @classmethod
    def eval(cls, u, v, t, s, c):
        return None


def unfold(factors: list, summed: tuple) -> tuple[list, tuple]:
    """``[0 ≤ u − s v < k] F(u − s v)`` as ``Route(u, v, t, s) F(t)`` with a new summed
    index ``t`` over ``range(k)``, where an array entry reads ``u − s v`` only inside a
    larger position (a one-hot's flat window offset); other factors as they are."""
    out, new = list(factors), tuple(summed)
    while True:
        found = _candidate(out, new)
        if found is None:
            return out, new
        n, u, v, s, c, k = found
        t = new_index(k, "t")
        at = {u: s * v + t - c}
        out = [Route(u, v, t, s, -c) if m == n else _substitute(g, at) for m, g in enumerate(out)]
        new = (*new, t)


def _candidate(factors: list, summed: tuple):
    """The first ``InRange(u − s v + c, 0, k)`` to unfold: ``(position, u, v, s, c, k)``,
    or None."""
    from .tensorindex import InRange, unwrap

    entries = [f for f in factors if isinstance(f, sp.Indexed)]
    for n, f in enumerate(factors):
        if not isinstance(f, InRange) or not f.args[1].is_zero:
            continue
        e = sp.expand(plain(unwrap(f.args[0])))
        idx = indices_in(e)
        if len(idx) != 2:
            continue
        u = next((k for k in idx if e.coeff(k) == 1 and k not in summed), None)
        v = next((k for k in idx if k is not u and k in summed), None)
        if u is None or v is None or not e.coeff(v).is_Integer or e.coeff(v) >= 0:
            continue
        c = sp.expand(e - u - e.coeff(v) * v)
        if not c.is_Integer:
            continue
        # a one-hot's flat window offset; or a strided window over a kernel (the input
        # gradient of a strided convolution: routed, not slid, so its memory is the
        # im2col size B·C·Ho·Wo·k², not F·C·H·W·Ho·Wo)
        if not (_read_inside(entries, u, e) or (e.coeff(v) < -1 and _read_at(entries, e))):
            continue
        return n, u, v, -e.coeff(v), c, as_expr(f.args[2])
    return None


def _substitute(g, at: dict):
    if isinstance(g, sp.Indexed):
        return g.base[tuple(sp.expand(plain(x).xreplace(at)) for x in g.indices)]
    return g.xreplace(at)


def _read_at(entries: list, e) -> bool:
    """Some entry reads exactly the position ``e``."""
    return any(sp.expand(plain(x) - e) == 0 for g in entries for x in g.indices)


def _read_inside(entries: list, u, e) -> bool:
    """Some entry reads ``u`` in a position that is not ``e`` plus a constant."""
    for g in entries:
        for x in g.indices:
            x = sp.expand(plain(x))
            if u in indices_in(x) and indices_in(sp.expand(x - e)):
                return True
    return False


def route_array(u_size: int, v_size: int, t_size: int, s: int, c: int = 0):
    """``R[u, v, t] = [u = s v + t + c]`` as a 0/1 NumPy array."""
    import numpy as np

    at = s * np.arange(v_size)[:, None] + np.arange(t_size) + c
    return (np.arange(u_size)[:, None, None] == at).astype(int)


def route_dims(e: Route) -> tuple:
    """``(U, V, T, s, c)``: the extents of ``Route(u, v, t, s, c)``'s indices, its stride
    and its shift."""
    u, v, t, s, c = e.args
    return dim_of(u), dim_of(v), dim_of(t), int(s), int(c)


def pool_onehot(e: sp.Indexed, prefix: str):
    """``onehot(A)[b, c, i, j, k p + q]`` of a max-pool's argmax ``A`` (its array named
    ``prefix + A``) as the plan of a ``[B, C, Ho, Wo, k, k]`` 0/1 array and its axes, or
    None for any other entry."""
    name = str(e.base.label)
    if not name.startswith(prefix + POOL_ARGMAX):
        return None
    *rows, flat = e.indices
    flat = sp.expand(plain(flat))
    idx = indices_in(flat)
    if len(idx) != 2 or not all(is_index(r) for r in rows) or len(set(rows)) != len(rows):
        return None
    q = next((k for k in idx if flat.coeff(k) == 1), None)
    p = next((k for k in idx if k is not q), None)
    if q is None or p is None or flat != flat.coeff(p) * p + q or flat.coeff(p) != dim_of(q):
        return None
    k = int(dim_of(q))
    return ("poolhot", name[len(prefix) :], k), (*rows, p, q)


def fold_routes(p: tuple) -> tuple:
    """An einsum of two routings ``[u = s v + t]`` with ``s = k`` (windows that tile the
    input) against one array: that array's ``(v, t)`` axes merged into ``u`` (a reshape,
    as careful NumPy unpools), else ``p`` as it is."""
    if p[0] != "einsum":
        return p
    subs, out, ops, sizes = p[1:5]
    routes = [n for n, op in enumerate(ops) if op[0] == "route" and op[3] == op[4] and not op[5]]
    rest = [n for n in range(len(ops)) if n not in routes]
    if len(routes) != 2 or len(rest) != 1:
        return p
    sub = subs[rest[0]]
    pairs = {subs[n][0]: subs[n][1:] for n in routes}
    if len(set(sub)) != len(sub) or any(
        u not in out or any(c not in sub or c in out for c in vt) for u, vt in pairs.items()
    ):
        return p
    if any(sp.simplify(ops[n][1] - ops[n][2] * ops[n][3]) != 0 for n in routes):
        return p  # windows that leave a margin: not a plain reshape
    wanted = "".join(pairs.get(c, c) for c in out)
    if set(wanted) != set(sub):
        return p
    inner = ops[rest[0]]
    if wanted != sub:
        perm = tuple(sub.index(c) for c in wanted)
        inner = _permuted(inner, perm) or ("perm", inner, perm)
    merged = tuple((sizes[c], 2 if c in pairs else 1) for c in out)
    return ("reshape", inner, merged)


def window_argmax(w):
    """The flat position of the first maximum of each window (the last two axes of ``w``);
    exact values at a point of F_p compare by the real value they stand for."""
    import numpy as np

    w = np.asarray(w)
    flat = w.reshape(*w.shape[:-2], -1)
    if flat.dtype == object:
        reals = np.vectorize(lambda v: getattr(v, "r", v), otypes=[object])(flat)
        flat = reals.astype(float)
    return np.argmax(flat, axis=-1)


def pool_pick(items: list, live: set, want: tuple):
    """``Σ_{p,q} onehot(A)[r…, k p + q] x[b, c, s i + p, s j + q]`` (a max-pool's forward)
    as the entry of ``x`` at each window's argmax, ``x[b, c, s i + A // k, s j + A % k]``:
    ``(plan, axes)``, or None for anything else."""
    if len(items) != 1 or items[0][0][:2] != ("op", "*") or len(items[0][0][2]) != 2:
        return None  # one block over (b, c, i, j, p, q): the window view times the one-hot
    plan, axes = items[0]
    hot = next((x for x in plan[2] if x[0] == "poolhot"), None)
    view = next((x for x in plan[2] if x is not hot), None)
    if hot is None or view is None or len(axes) != 6:
        return None
    rows, (p, q) = axes[:-2], axes[-2:]
    if not ({p, q} <= live) or p in want or q in want or len(rows) != 4:
        return None
    chain = view
    strides = []
    while chain[0] == "slide" and chain[4] == 1:
        strides.append(chain[3])
        chain = chain[1]
    if len(strides) != 2 or len(set(strides)) != 1 or chain[0] != "arr" or chain[2] != 4:
        return None
    live.difference_update({p, q})
    sizes = tuple(dim_of(r) for r in rows)
    return ("poolpick", chain, hot[1], hot[2], strides[0], sizes), tuple(rows)


def _permuted(p: tuple, perm: tuple):
    """An element-wise product computed in the axis order ``perm`` (each factor laid out
    there, so the fold's reshape needs no copy), or None."""
    if p[0] == "op":
        parts = [_permuted(x, perm) for x in p[2]]
        return None if any(x is None for x in parts) else ("op", p[1], parts)
    if p[0] == "num":
        return p
    if p[0] == "poolhot" and len(p) == 3:
        return (*p, perm)
    if p[0] == "expand" and p[1][0] == "arr":
        kept = [perm.index(n) for n in range(len(perm)) if n not in p[2]]
        if kept != sorted(kept):  # the array's own axes would be transposed
            return None
        return ("expand", p[1], tuple(n for n in range(len(perm)) if n not in kept))
    return None
