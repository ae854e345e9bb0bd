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
    """``Route(u, v, t, s) = [u = s v + t]``: which window ``v`` and offset ``t`` an input
    position ``u`` is (the 0/1 fold of windows back onto the input)."""

    is_integer = True

    @classmethod
    def eval(cls, u, v, t, s):
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
        n, u, v, s, k = found
        t = new_index(k, "t")
        at = {u: s * v + t}
        out = [Route(u, v, t, s) if m == n else _substitute(g, at) for m, g in enumerate(out)]
        new = (*new, t)


def _candidate(factors: list, summed: tuple):
    """The first ``InRange(u − s v, 0, k)`` to unfold: ``(position, u, v, s, k)``, or None."""
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
        if sp.expand(e - u - e.coeff(v) * v) != 0 or not _read_inside(entries, u, e):
            continue
        return n, u, v, -e.coeff(v), as_expr(f.args[2])
    return None


def _substitute(g, at: dict):
    if isinstance(g, sp.Indexed):
        return g.base[tuple(sp.expand(plain(x).xreplace(at)) for x in g.indices)]
    return g.xreplace(at)


def _read_inside(entries: list, u, e) -> bool:
    """Some entry reads ``u`` in a position that is not ``e`` plus a constant."""
    for g in entries:
        for x in g.indices:
            x = sp.expand(plain(x))
            if u in indices_in(x) and indices_in(sp.expand(x - e)):
                return True
    return False


def route_array(u_size: int, v_size: int, t_size: int, s: int):
    """``R[u, v, t] = [u = s v + t]`` as a 0/1 NumPy array."""
    import numpy as np

    return (
        np.arange(u_size)[:, None, None] == s * np.arange(v_size)[:, None] + np.arange(t_size)
    ).astype(int)


def is_route(e) -> bool:
    return isinstance(e, Route) and all(is_index(a) for a in e.args[:3])


def route_dims(e: Route) -> tuple:
    u, v, t, s = e.args
    return dim_of(u), dim_of(v), dim_of(t), int(s)


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
    routes = [n for n, op in enumerate(ops) if op[0] == "route" and op[3] == op[4]]
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
        inner = ("perm", inner, tuple(sub.index(c) for c in wanted))
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
