"""mclust's starting partitions: model-based agglomerative hierarchical clustering (host-side NumPy).

``Mclust(X, G)`` in R starts EM, for every number of components ``G`` and every covariance model,
from ``hclass(hc(X, modelName = "VVV", use = "SVD"), G)``: the data are centred, scaled and rotated
(``use = "SVD"``), then agglomerated from singletons by repeatedly merging the two groups whose
merge costs least in classification likelihood (Banfield and Raftery 1993; Fraley 1998), and the
hierarchy is cut at ``G`` groups. This module reproduces that exactly: it follows mclust's Fortran
(``hcvvv``, ``hceii``, ``hc1v``, ``hc1e`` in ``src/mclust.f``) operation by operation, Givens
rotations, summation order and the ``<=`` tie rule included, because with data recorded to a few
decimals many candidate merges tie mathematically and only the rounding of mclust's arithmetic
decides them.

What Mclust does, and what :func:`hierarchical_partitions` does with ``model="auto"``:

* more than one feature and more rows than features: ``hc`` with model ``"VVV"``;
* no more rows than features: ``hc`` with model ``"EII"``;
* one feature: no agglomeration at all but quantile classes (mclust's ``qclass``), see
  :func:`quantile_partitions`;
* more than ``mclust.options("subset")`` = 2000 rows: all of the above on a random subset of 2000
  rows (``max_rows``); the other rows get label -1.

Mclust calls ``hc`` without a ``partition``, so every row starts as its own group, duplicated rows
included (``hc``'s default ``dupPartition(data)`` is never evaluated on that path, because ``hc``
forwards only the arguments of its call). ``merge_duplicates=True`` gives
``hc(X, partition = dupPartition(X))`` instead.

How exact. Against R's mclust 6.0.0 the merge pairs themselves (not only the partitions) are
identical on Old Faithful, mclust's diabetes data, the faithful waiting times (models V, E, VVV)
and a dozen more data sets (banknote, thyroid, cross, chevron, quakes, USArrests, ...); the
partitions into 1 to 9 groups also agree on iris. Known differences:

* the singular value decomposition of ``use="SVD"`` is NumPy's LAPACK, whose last bits differ
  from R's reference LAPACK (one feature is computed exactly as R's dgesdd does); with data
  recorded to a few decimals, mathematically tied merges can then come in another order early
  in the hierarchy (on iris from the 12th merge on, without changing the partitions into at
  most 9 groups);
* this module evaluates the criterion of Fraley (1998) as mclust's Fortran source states it.
  R's compiled ``hcvvv`` (checked by calling it directly) does not always do so: after groups
  of several rows have been merged with one another its costs can differ from a direct
  evaluation of the criterion (the factors it stores for merged groups lose rows). Usually the
  merge order is unaffected; where it is, the results differ (on mclust's ``wreath`` data the
  last three merges, hence the partitions into 2 and 3 groups);
* with ``merge_duplicates=True`` (not what Mclust does) R's ``hc1v`` (model "V") reads the
  terms of groups that start with several rows from the wrong place; the models "EII" and "E"
  agree with R there.

The work is O(n^2) in time and memory (n x n merge costs) and runs once per fit, on at most
``max_rows`` rows: a Python loop over the n - 1 merges, each vectorised over the groups (about
0.2 s for 272 rows, 3-5 s for 2000).

References
----------
Banfield, J. D. and Raftery, A. E. (1993). Model-based Gaussian and non-Gaussian clustering.
Biometrics 49(3), 803-821.

Fraley, C. (1998). Algorithms for model-based Gaussian hierarchical clustering. SIAM Journal on
Scientific Computing 20(1), 270-281.

Scrucca, L., Fraley, C., Murphy, T. B. and Raftery, A. E. (2023). Model-Based Clustering,
Classification, and Density Estimation Using mclust in R. Chapman and Hall/CRC.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral

import numpy as np

__all__ = ["hierarchical_partitions", "quantile_partitions", "labels_to_responsibilities"]

#: Models of mclust's ``hc``: ``"VVV"`` (ellipsoidal, varying), ``"EII"`` (spherical, equal volume:
#: Ward's criterion) and their univariate forms ``"V"`` and ``"E"``; ``"auto"`` is Mclust's choice.
HC_MODELS: tuple[str, ...] = ("auto", "VVV", "EII", "V", "E")
#: Data transforms of mclust's ``hc(use=...)`` supported here.
HC_USES: tuple[str, ...] = ("SVD", "VARS", "STD")

_EPS = 2.0 ** -52                      # .Machine$double.eps = mclust's EPSMAX
_FLMAX = float(np.finfo(np.float64).max)
_RTHALF = 0.7071067811865476           # sqrt(1/2), mclust's rthalf / sqrthf
_SAFMIN = 2.0 ** -1022                 # BLAS drotg's safmin and safmax (LAPACK >= 3.10)
_SAFMAX = 2.0 ** 1022


# ---------------------------------------------------------------------------------------------
# arithmetic exactly as mclust's Fortran and the reference BLAS do it


def _log(a: np.ndarray) -> np.ndarray:
    """Elementwise natural log by the C library, as Fortran's ``log`` (NumPy's own can differ by 1 ulp)."""
    a = np.asarray(a, dtype=np.float64)
    return np.fromiter(map(math.log, a.ravel().tolist()), dtype=np.float64, count=a.size).reshape(a.shape)


def _exp(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return np.fromiter(map(math.exp, a.ravel().tolist()), dtype=np.float64, count=a.size).reshape(a.shape)


def _ddot(v: np.ndarray) -> np.ndarray:
    """Sum of squares over the last axis, in order, as the reference BLAS ``ddot(v, v)``."""
    out = v[..., 0] * v[..., 0]
    for k in range(1, v.shape[-1]):
        out = out + v[..., k] * v[..., k]
    return out


def _drotg(a: np.ndarray, b: np.ndarray):
    """Reference BLAS ``drotg`` (the LAPACK 3.10+ algorithm), elementwise: returns (r, c, s).

    (``drotg``'s fourth output, which overwrites ``b``, is never read by mclust's callers.)
    """
    an = np.abs(a)
    bn = np.abs(b)
    big_a = an > bn
    scl = np.where(big_a, an, bn)
    special = scl.size and (scl.min() < _SAFMIN or scl.max() > _SAFMAX or np.minimum(an, bn).min() == 0.0)
    if special:
        scl = np.minimum(_SAFMAX, np.maximum(_SAFMIN, scl))
    with np.errstate(all="ignore"):
        ta = a / scl
        tb = b / scl
        r = np.copysign(scl * np.sqrt(ta * ta + tb * tb), np.where(big_a, a, b))
        c = a / r
        s = b / r
    if special:
        b0 = bn == 0.0
        a0 = (an == 0.0) & ~b0
        r = np.where(b0, a, np.where(a0, b, r))
        c = np.where(b0, 1.0, np.where(a0, 0.0, c))
        s = np.where(b0, 0.0, np.where(a0, 1.0, s))
    return r, c, s


def _rotate(u: np.ndarray, w: np.ndarray, i: int, idx) -> None:
    """Rotate row ``i`` of the factors ``u[idx]`` with the vectors ``w[idx]`` (drotg + drot)."""
    r, c, s = _drotg(u[idx, i, i], w[idx, i])
    u[idx, i, i] = r
    if i + 1 < u.shape[-1]:
        x = u[idx, i, i + 1:]
        y = w[idx, i + 1:]
        cc = c[:, None]
        ss = s[:, None]
        with np.errstate(all="ignore"):
            u[idx, i, i + 1:] = cc * x + ss * y
            w[idx, i + 1:] = cc * y - ss * x


def _rup(u: np.ndarray, w: np.ndarray, kk: np.ndarray) -> None:
    """mclust's ``mclrup``: add the rows ``w`` to the upper-triangular factors ``u`` in place.

    ``u`` (B, m, m), ``w`` (B, m) (overwritten), ``kk`` (B,) the 1-based index of the new row
    (mclrup's ``l - 1``): when ``kk <= m`` the row is rotated through rows 1..kk-1 and what is
    left becomes row kk; otherwise it is rotated through all m rows.
    """
    m = u.shape[-1]
    lim = np.where(kk > m, m, kk - 1)           # rows rotated: 0..lim-1
    if lim.min() >= m:
        for i in range(m):
            _rotate(u, w, i, slice(None))
        return
    for i in range(m):
        rot = lim > i
        if rot.all():
            _rotate(u, w, i, slice(None))
        else:
            idx = np.flatnonzero(rot)
            if idx.size:
                _rotate(u, w, i, idx)
        place = np.flatnonzero(lim == i)
        if place.size:
            u[place, i, i:] = w[place, i:]


def _combine(base: np.ndarray, base_n: np.ndarray, other: np.ndarray, other_n: np.ndarray,
             v: np.ndarray, nij: np.ndarray) -> np.ndarray:
    """Factor of a merged group: ``base`` plus the rows of ``other``, then the mean-difference row ``v``.

    As mclust's ``hcvvv``: the rows of ``other`` enter trailing blocks of ``base`` (``mclrup(k,
    m, v, u(t, t))`` with ``k = base_n + 1``), then ``v`` enters with ``mclrup(nij, p, v, u)``.
    """
    u = np.array(base, dtype=np.float64, copy=True)
    p = u.shape[-1]
    rows = np.minimum(other_n - 1, p)
    for t in range(int(rows.max()) if rows.size else 0):
        idx = np.flatnonzero(rows > t)
        if idx.size == u.shape[0]:
            sub = u[:, t:, t:]
            _rup(sub, other[:, t, t:].copy(), base_n)
        else:
            sub = u[idx, t:, t:]
            _rup(sub, other[idx, t, t:], base_n[idx])
            u[idx, t:, t:] = sub
    _rup(u, v.copy(), nij - 1)
    return u


def _vvvtij(l: np.ndarray, p: int, u: np.ndarray, s: np.ndarray, trac: np.ndarray,
            alpha: float, beta: float) -> np.ndarray:
    """mclust's ``vvvtij``: the classification-likelihood term of a group of ``l`` rows (vectorised)."""
    lf = l.astype(np.float64)
    base = (beta * (trac + alpha)) / lf
    out = np.empty(l.shape[0])
    small = l <= p
    if small.any():
        out[small] = _log(base[small])
    flat = ~small & (trac == 0.0)
    if flat.any():
        out[flat] = _log((alpha * beta) / lf[flat])
    rest = np.flatnonzero(~small & ~flat)
    if rest.size:
        q = np.diagonal(u[rest], axis1=1, axis2=2) * s[rest, None]
        singular = (q == 0.0).any(axis=1)
        detlog = np.zeros(rest.size)
        ok = ~singular
        if ok.any():
            lq = _log(np.abs(np.where(ok[:, None], q[:], 1.0)))
            acc = lq[:, 0].copy()
            for k in range(1, lq.shape[1]):
                acc = acc + lq[:, k]
            detlog = 2.0 * acc
        br = base[rest]
        res = np.empty(rest.size)
        if singular.any():
            res[singular] = _log(br[singular])
        neg = ok & (detlog <= 0.0)
        if neg.any():
            res[neg] = _log(_exp(detlog[neg]) + br[neg])
        pos = ok & (detlog > 0.0)
        if pos.any():
            res[pos] = _log(1.0 + _exp(-detlog[pos]) * br[pos]) + detlog[pos]
        out[rest] = res
    return lf * out


# ---------------------------------------------------------------------------------------------
# data transform (hc's `use`) and initial partition


def _colsum_ld(X: np.ndarray) -> np.ndarray:
    """Column sums accumulated in order in long double, rounded to double (R's colSums/sum)."""
    return np.cumsum(X.astype(np.longdouble), axis=0)[-1]


def _r_scale(X: np.ndarray) -> np.ndarray:
    """R's ``scale(X, center = TRUE, scale = TRUE)``."""
    n = X.shape[0]
    center = (_colsum_ld(X) / np.longdouble(n)).astype(np.float64)
    Xc = X - center
    ss = _colsum_ld(Xc * Xc).astype(np.float64)
    with np.errstate(all="ignore"):
        return Xc / np.sqrt(ss / max(1, n - 1))


def _matmul_seq(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``A @ B`` with each entry summed in order over the inner index, as the reference ``dgemm``."""
    C = A[:, :1] * B[:1, :]
    for l in range(1, A.shape[1]):
        C = C + A[:, l:l + 1] * B[l:l + 1, :]
    return C


def _transform(X: np.ndarray, use: str) -> np.ndarray:
    """The data mclust's ``hc`` agglomerates for ``use`` in {"VARS", "STD", "SVD"}."""
    if use == "VARS":
        return X.copy()
    Z = _r_scale(X)
    Z = Z[:, np.isfinite(Z).all(axis=0)]        # dropCols: constant columns become NaN
    if Z.shape[1] == 0:
        raise ValueError("X: every column is constant, nothing to agglomerate")
    if use == "STD":
        return Z
    if Z.shape[1] == 1:
        # LAPACK's dgesdd on one column: d = |R| of its Householder QR, dlapy2(z_1, dnrm2(z_2..z_n))
        # (the reference BLAS dnrm2 sums squares in order); the sign of V is immaterial
        x = Z[:, 0]
        xnorm = math.sqrt(float(np.cumsum(x[1:] * x[1:])[-1])) if x.size > 1 else 0.0
        w, v = max(abs(x[0]), xnorm), min(abs(x[0]), xnorm)
        d = np.array([w if v == 0.0 else w * math.sqrt(1.0 + (v / w) * (v / w))])
        vt = np.ones((1, 1))
    else:
        _, d, vt = np.linalg.svd(Z, full_matrices=False)
    with np.errstate(all="ignore"):
        scale = 1.0 / np.sqrt(d)
        out = _matmul_seq(Z, vt.T) * scale[None, :]
    keep = np.isfinite(out).all(axis=0)        # a zero singular value (rank-deficient X): no spread there
    if not keep.any():
        raise ValueError("X has no direction of spread for use='SVD'")
    return out[:, keep]


def _first_appearance(labels: np.ndarray) -> np.ndarray:
    """mclust's ``partconv(x, consec = TRUE)``, 0-based: groups numbered by first appearance."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size)
    return rank[inverse.ravel()]


def _dup_partition(Z: np.ndarray) -> np.ndarray:
    """mclust's ``dupPartition``: equal rows share a group, numbered by first appearance."""
    _, inverse = np.unique(Z, axis=0, return_inverse=True)
    return _first_appearance(inverse.ravel())


def _heads_first(x: np.ndarray, part: np.ndarray):
    """mclust's "group heads should be first among rows of x" reordering.

    Returns the reordered rows (row k < ng is the first row of group k), the number of groups
    ng and, for each group, its other rows in the order mclust adds them (increasing row).
    """
    x = x.copy()
    ic = part.astype(np.int64) + 1
    n = ic.size
    ng = int(ic.max())
    if ng < n:
        j = 2
        swap_from = None
        while True:
            if ic[j - 1] != j:
                swap_from = j
                break
            if j == ng:
                break
            j += 1
        if swap_from is not None:
            k = swap_from - 1
            for jj in range(swap_from + 1, n + 1):
                icj = ic[jj - 1]
                if icj > k:
                    k += 1
                    x[[k - 1, jj - 1]] = x[[jj - 1, k - 1]]
                    ic[jj - 1] = ic[k - 1]
                    ic[k - 1] = icj
    members: list[list[int]] = [[] for _ in range(ng)]
    for jj in range(ng, n):
        members[ic[jj] - 1].append(jj)
    return x, ng, members


# ---------------------------------------------------------------------------------------------
# the agglomeration: slots 0..L-1 as mclust's (merged group to the lower slot, last slot moves
# into the vacated one), costs in a symmetric matrix, ties to the largest packed index (j, i)


class _Costs:
    """Merge costs between slots with a per-row cache of the minimum over lower slots."""

    def __init__(self, D: np.ndarray):
        self.D = D
        L = D.shape[0]
        np.fill_diagonal(self.D, np.inf)
        self.rowmin = np.full(L, np.inf)
        self.rowarg = np.full(L, -1, dtype=np.int64)
        self.L = L
        self._refresh(np.arange(1, L))

    def _refresh(self, rows: np.ndarray) -> None:
        rows = rows[(rows >= 1) & (rows < self.L)]
        if rows.size == 0:
            return
        width = int(rows.max())
        for start in range(0, rows.size, 256):
            rr = rows[start:start + 256]
            block = self.D[rr, :width].copy()
            block[np.arange(width)[None, :] >= rr[:, None]] = np.inf
            rev = width - 1 - np.argmin(block[:, ::-1], axis=1)   # last minimum
            self.rowmin[rr] = block[np.arange(rr.size), rev]
            self.rowarg[rr] = rev

    def best(self) -> tuple[int, int, float]:
        rm = self.rowmin[:self.L]
        j = int(self.L - 1 - np.argmin(rm[::-1]))
        return int(self.rowarg[j]), j, float(rm[j])

    def merge(self, a: int, b: int, new_costs: np.ndarray | None) -> None:
        """Slot ``a`` holds the merged group, the last slot moves into ``b``; costs of ``a`` to
        slots 0..L-2 are ``new_costs`` (or set later by :meth:`set_row`)."""
        D = self.D
        last = self.L - 1
        if b != last:
            D[b, :] = D[last, :]
            D[:, b] = D[:, last]
            D[b, b] = np.inf
        D[last, :] = np.inf
        D[:, last] = np.inf
        self.rowmin[last] = np.inf
        self.L = last
        if new_costs is not None:
            self.set_row(a, new_costs, b)

    def set_row(self, a: int, costs: np.ndarray, b: int) -> None:
        L = self.L
        D = self.D
        D[a, :L] = costs
        D[:L, a] = costs
        D[a, a] = np.inf
        changed = [a] + ([b] if b < L else [])
        arg = self.rowarg[:L]
        stale = arg == a
        if b < L:
            stale |= arg == b
        stale[changed] = True
        rows = np.arange(L)
        # rows whose cached minimum is untouched: see whether a changed column now wins
        for c in changed:
            sel = (rows > c) & ~stale
            if not sel.any():
                continue
            idx = rows[sel]
            val = D[idx, c]
            cur = self.rowmin[idx]
            win = (val < cur) | ((val == cur) & (c > self.rowarg[idx]))
            idx = idx[win]
            self.rowmin[idx] = val[win]
            self.rowarg[idx] = c
        self._refresh(rows[stale])


def _hc_vvv(Z: np.ndarray, part: np.ndarray, alpha: float, beta: float = 1.0) -> np.ndarray:
    """mclust's ``hcvvv``: merge pairs (0-based group labels, smaller first), in merge order."""
    n, p = Z.shape
    x, ng, members = _heads_first(Z, part)
    if ng == 1:
        return np.zeros((0, 2), dtype=np.int64)
    alpha = max(alpha, _EPS)
    ablog = math.log(beta * alpha)

    cnt = np.ones(ng, dtype=np.int64)
    xs = x[:ng].copy()
    trc = np.zeros(ng)
    term = np.full(ng, ablog)
    R = np.zeros((ng, p, p))
    for k in range(ng):                                     # groups given by the partition
        if not members[k]:
            continue
        r = np.zeros((1, p, p))
        tr = 0.0
        l = 1
        sj = 1.0
        for j in members[k]:
            m = l + 1
            qj = 1.0 / m
            qi = l * qj
            si = math.sqrt(qi)
            sj = math.sqrt(qj)
            v = si * x[j] - sj * xs[k]
            tr = tr + float(_ddot(v))
            xs[k] = si * xs[k] + sj * x[j]
            _rup(r, v[None, :].copy(), np.array([l]))
            l = m
        cnt[k] = l
        R[k] = r[0]
        trc[k] = tr
        term[k] = _vvvtij(np.array([l]), p, r, np.array([sj]), np.array([tr]), alpha, beta)[0]

    def pair_f1(i: np.ndarray, j: int | np.ndarray):
        """Costs and merge statistics for pairs of slots i < j, as hcvvv's first pass (and its
        recomputation of a pair chosen away from the last merge)."""
        i = np.atleast_1d(i)
        j = np.broadcast_to(np.atleast_1d(j), i.shape)
        ni, nj = cnt[i], cnt[j]
        nij = ni + nj
        single = (ni == 1) & (nj == 1)
        qij = 1.0 / nij.astype(np.float64)
        si = np.sqrt(ni * qij)
        sj = np.sqrt(nj * qij)
        si = np.where(single, _RTHALF, si)
        sj = np.where(single, _RTHALF, sj)
        v = sj[:, None] * xs[i] - si[:, None] * xs[j]
        v[single] = (xs[i[single]] - xs[j[single]]) * _RTHALF
        tr = (trc[i] + trc[j]) + _ddot(v)
        tr = np.where(single, _ddot(v), tr)
        j_base = nj > 1                                     # the factor of j is the base when j is not a singleton
        base = np.where(j_base[:, None, None], R[j], R[i])
        base_n = np.where(j_base, nj, ni)
        other = np.where(j_base[:, None, None], R[i], R[j])
        other_n = np.where(j_base, ni, nj)
        u = _combine(base, base_n, other, other_n, v, nij)
        tm = np.empty(i.size)
        if single.any():
            tm[single] = 2.0 * _log((beta * (tr[single] + alpha)) / 2.0)
        if (~single).any():
            ns = ~single
            tm[ns] = _vvvtij(nij[ns], p, u[ns], np.sqrt(qij[ns]), tr[ns], alpha, beta)
        d = tm - (term[i] + term[j])
        return d, tr, tm, u, si, sj, nij

    # first pass over all pairs (j outer, i < j inner)
    D = np.full((ng, ng), np.inf)
    if not any(members):                                   # every group a singleton: the common case
        for j in range(1, ng):
            v = (xs[:j] - xs[j]) * _RTHALF
            D[j, :j] = _ddot(v)
        low = np.tril_indices(ng, -1)
        tr = D[low]
        D[low] = 2.0 * _log((beta * (tr + alpha)) / 2.0) - (ablog + ablog)
        D.T[low] = D[low]
    else:
        for j in range(1, ng):
            d = pair_f1(np.arange(j), j)[0]
            D[j, :j] = d
            D[:j, j] = d
    costs = _Costs(D)

    labels = np.arange(ng)
    merges = np.empty((ng - 1, 2), dtype=np.int64)
    a, b, _ = costs.best()
    d, tr, tm, u, si, sj, nij = pair_f1(np.array([a]), b)
    stats = (tr[0], tm[0], u[0], si[0], sj[0], nij[0])
    for step in range(ng - 1):
        tr_, tm_, u_, si_, sj_, nij_ = stats
        la, lb = labels[a], labels[b]
        merges[step] = (min(la, lb), max(la, lb))
        labels[a] = min(la, lb)
        xs[a] = si_ * xs[a] + sj_ * xs[b]
        last = costs.L - 1
        if b != last:
            xs[b] = xs[last]
            cnt[b], trc[b], term[b], R[b], labels[b] = cnt[last], trc[last], term[last], R[last], labels[last]
        cnt[a], trc[a], term[a], R[a] = nij_, tr_, tm_, u_
        costs.merge(a, b, None)
        L = costs.L
        if L == 1:
            break
        # costs of the merged group (slot a) against every other slot, as hcvvv after a merge
        o = a
        lanes = np.delete(np.arange(L), o)
        no = cnt[o]
        nj = cnt[lanes]
        nl = no + nj
        qij = 1.0 / nl.astype(np.float64)
        wi = np.sqrt(no * qij)                              # weight of the merged group's sum
        wj = np.sqrt(nj * qij)
        v = wi[:, None] * xs[lanes] - wj[:, None] * xs[o]
        trl = (trc[o] + trc[lanes]) + _ddot(v)
        base = np.broadcast_to(R[o], (lanes.size, p, p))
        ul = _combine(base, np.full(lanes.size, no), R[lanes], nj, v, nl)
        tml = _vvvtij(nl, p, ul, np.sqrt(qij), trl, alpha, beta)
        dl = tml - (term[o] + term[lanes])
        row = np.full(L, np.inf)
        row[lanes] = dl
        costs.set_row(o, row, b)
        a_new, b_new, dopt = costs.best()
        if o in (a_new, b_new):
            k = int(np.searchsorted(lanes, b_new if a_new == o else a_new))
            # merged sum = sqrt(n_o/n) * sum_o + sqrt(n_j/n) * sum_j
            w_first = wi[k] if a_new == o else wj[k]
            w_second = wj[k] if a_new == o else wi[k]
            stats = (trl[k], tml[k], ul[k], w_first, w_second, nl[k])
        else:
            d, tr, tm, u, si, sj, nij = pair_f1(np.array([a_new]), b_new)
            tm_opt = dopt + (term[a_new] + term[b_new])
            stats = (tr[0], tm_opt, u[0], si[0], sj[0], nij[0])
        a, b = a_new, b_new
    return merges


def _hc_ward(Z: np.ndarray, part: np.ndarray) -> np.ndarray:
    """mclust's ``hceii`` (and ``hc1e``, its one-feature form): Ward's criterion."""
    x, ng, members = _heads_first(Z, part)
    if ng == 1:
        return np.zeros((0, 2), dtype=np.int64)
    cnt = np.ones(ng, dtype=np.int64)
    xs = x[:ng].copy()
    for k in range(ng):
        for j in members[k]:
            ri = float(cnt[k])
            rij = float(cnt[k] + 1)
            sj = math.sqrt(1.0 / rij)
            si = math.sqrt(ri) * sj
            xs[k] = si * xs[k] + sj * x[j]
            cnt[k] += 1
    D = np.full((ng, ng), np.inf)
    for j in range(1, ng):
        ri = cnt[:j].astype(np.float64)
        rj = float(cnt[j])
        rij = ri + rj
        si = np.sqrt(ri / rij)
        sj = np.sqrt(rj / rij)
        v = sj[:, None] * xs[:j] - si[:, None] * xs[j]
        D[j, :j] = _ddot(v)
        D[:j, j] = D[j, :j]
    costs = _Costs(D)
    labels = np.arange(ng)
    merges = np.empty((ng - 1, 2), dtype=np.int64)
    a, b, dopt = costs.best()
    for step in range(ng - 1):
        la, lb = labels[a], labels[b]
        merges[step] = (min(la, lb), max(la, lb))
        labels[a] = min(la, lb)
        ni, nj = float(cnt[a]), float(cnt[b])
        nij = ni + nj
        last = costs.L - 1
        da = costs.D[a, :last + 1].copy()
        db = costs.D[b, :last + 1].copy()
        if b != last:
            da[b], db[b] = da[last], db[last]
            cnt[b], labels[b] = cnt[last], labels[last]
        cnt[a] = cnt[a] + int(nj)
        L = last
        if L == 1:
            break
        rj = cnt[:L].astype(np.float64)
        dd = (rj + ni) * da[:L] + (rj + nj) * db[:L]
        dd = (dd - rj * dopt) / (rj + nij)
        dd[a] = np.inf
        costs.merge(a, b, dd)
        a, b, dopt = costs.best()
    return merges


def _hc_v(z: np.ndarray, part: np.ndarray) -> np.ndarray:
    """mclust's ``hc1v``: one feature, group variances varying."""
    x, ng, members = _heads_first(z, part)
    x = x[:, 0]
    if ng == 1:
        return np.zeros((0, 2), dtype=np.int64)
    alpha = _EPS                       # hcV passes min(alpha * var, eps); hc1v takes max(ALPHA, EPSMAX)
    alflog = math.log(alpha)
    cnt = np.ones(ng, dtype=np.int64)
    xs = x[:ng].copy()
    trc = np.zeros(ng)
    term = np.full(ng, alflog)
    for k in range(ng):
        for idx, j in enumerate(members[k]):
            if idx == 0:
                temp = _RTHALF * (x[j] - xs[k])
                xs[k] = _RTHALF * (x[j] + xs[k])
                trc[k] = temp * temp
                cnt[k] = 2
            else:
                ri = float(cnt[k])
                qj = 1.0 / (ri + 1.0)
                qi = ri * qj
                si = math.sqrt(qi)
                sj = math.sqrt(qj)
                temp = si * x[j] - sj * xs[k]
                trc[k] = trc[k] + temp * temp
                xs[k] = si * xs[k] + sj * x[j]
                cnt[k] += 1
        if members[k]:
            ri = float(cnt[k])
            term[k] = ri * math.log((trc[k] + alpha) / ri)

    def pair(i: np.ndarray, j: np.ndarray):
        ri = cnt[i].astype(np.float64)
        rj = cnt[j].astype(np.float64)
        rij = (cnt[i] + cnt[j]).astype(np.float64)
        qij = 1.0 / rij
        si = np.sqrt(ri * qij)
        sj = np.sqrt(rj * qij)
        temp = sj * xs[i] - si * xs[j]
        tr = (trc[i] + trc[j]) + temp * temp
        tm = rij * _log((tr + alpha) / rij)
        return tm - (term[i] + term[j]), tr, tm, si, sj

    D = np.full((ng, ng), np.inf)
    for j in range(1, ng):
        d = pair(np.arange(j), np.full(j, j))[0]
        D[j, :j] = d
        D[:j, j] = d
    costs = _Costs(D)
    labels = np.arange(ng)
    merges = np.empty((ng - 1, 2), dtype=np.int64)
    a, b, _ = costs.best()
    for step in range(ng - 1):
        _, tr, tm, si, sj = pair(np.array([a]), np.array([b]))
        la, lb = labels[a], labels[b]
        merges[step] = (min(la, lb), max(la, lb))
        labels[a] = min(la, lb)
        xs[a] = si[0] * xs[a] + sj[0] * xs[b]
        nab = cnt[a] + cnt[b]
        last = costs.L - 1
        if b != last:
            xs[b], cnt[b], trc[b], term[b], labels[b] = xs[last], cnt[last], trc[last], term[last], labels[last]
        cnt[a], trc[a], term[a] = nab, tr[0], tm[0]
        costs.merge(a, b, None)
        L = costs.L
        if L == 1:
            break
        lanes = np.delete(np.arange(L), a)
        row = np.full(L, np.inf)
        row[lanes] = pair(np.full(lanes.size, a), lanes)[0]
        costs.set_row(a, row, b)
        a, b, _ = costs.best()
    return merges


def _vvv_alpha(Z: np.ndarray) -> float:
    """``traceW(Z / sqrt(n p))`` as mclust's ``mcltrw``, the ALPHA of ``hcVVV``."""
    n, p = Z.shape
    Y = Z / math.sqrt(n * p)
    fac = 1.0 / math.sqrt(float(n))
    u = np.cumsum(fac * Y, axis=0)[-1]
    ss = 0.0
    for j in range(p):
        col = Y[:, j] + (-fac) * u[j]
        ss = ss + float(np.cumsum(col * col)[-1])
    return max(ss, _EPS)


def _hc_merges(Z: np.ndarray, model: str, merge_duplicates: bool = False,
               part: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Initial partition (0-based, first appearance) and merge pairs of mclust's ``hc`` on ``Z``.

    Merge pairs are 0-based labels of the initial groups, smaller first, in merge order (R's
    ``t(unclass(hc(...))) - 1``): a merged group is labelled by its smallest label.
    """
    n = Z.shape[0]
    if part is None:
        part = _dup_partition(Z) if merge_duplicates else np.arange(n)
    if model == "VVV":
        merges = _hc_vvv(Z, part, _vvv_alpha(Z))
    elif model in ("EII", "E"):
        merges = _hc_ward(Z, part)
    else:
        merges = _hc_v(Z, part)
    return part, merges


def _hclass(part: np.ndarray, merges: np.ndarray, G: Sequence[int]) -> np.ndarray:
    """mclust's ``hclass``: the partitions into ``G`` groups, groups numbered by first appearance."""
    ng = int(part.max()) + 1
    group = np.arange(ng)
    out = np.empty((part.size, len(G)), dtype=np.int64)
    order = sorted(range(len(G)), key=lambda c: -G[c])
    done = 0
    for c in order:
        while ng - done > G[c]:
            i, j = merges[done]
            group[group == j] = i
            done += 1
        out[:, c] = _first_appearance(group[part])
    return out


# ---------------------------------------------------------------------------------------------
# public API


def _check_components(n_components, name: str = "n_components") -> list[int]:
    if isinstance(n_components, Integral) and not isinstance(n_components, bool):
        values = [int(n_components)]
    else:
        try:
            values = list(n_components)
        except TypeError:
            raise ValueError(f"{name} must be a positive integer or a sequence of them, got {n_components!r}") from None
        if not values or not all(isinstance(g, Integral) and not isinstance(g, bool) for g in values):
            raise ValueError(f"{name} must be a positive integer or a sequence of them, got {n_components!r}")
        values = [int(g) for g in values]
    if min(values) < 1:
        raise ValueError(f"{name} must be >= 1, got {values}")
    return values


def _check_X(X) -> np.ndarray:
    try:
        X = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("X must be a numeric array of shape (n_samples, n_features)") from None
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"X must be a non-empty array of shape (n_samples, n_features), got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError("X contains NaN or infinite values")
    return X


def _subsample(n: int, max_rows, random_state) -> np.ndarray | None:
    if max_rows is None:
        return None
    if not isinstance(max_rows, Integral) or isinstance(max_rows, bool) or max_rows < 1:
        raise ValueError(f"max_rows must be a positive integer or None, got {max_rows!r}")
    if n <= max_rows:
        return None
    if isinstance(random_state, np.random.RandomState):     # scikit-learn style
        return np.sort(random_state.choice(n, size=int(max_rows), replace=False))
    rng = np.random.default_rng(random_state)
    return np.sort(rng.choice(n, size=int(max_rows), replace=False))


def _r_quantile7(xs: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """R's ``quantile(x, probs)`` (type 7) on sorted ``xs``."""
    n = xs.size
    index = 1.0 + max(n - 1, 0) * probs
    lo = np.floor(index).astype(np.int64)
    hi = np.ceil(index).astype(np.int64)
    qs = xs[lo - 1].copy()
    xhi = xs[hi - 1]
    sel = (index > lo) & (xhi != qs)
    h = (index - lo)[sel]
    qs[sel] = (1.0 - h) * qs[sel] + h * xhi[sel]
    return qs


def _r_seq01(length: int) -> np.ndarray:
    """R's ``seq(from = 0, to = 1, length = length)``."""
    if length <= 2:
        return np.array([0.0, 1.0])[:length]
    n1 = length - 1
    return np.concatenate(([0.0], np.arange(1, n1) * (1.0 / n1), [1.0]))


def _qclass(x: np.ndarray, k: int) -> np.ndarray:
    """mclust's ``qclass(x, k)``, 0-based: classes by quantiles, numbered by increasing value."""
    xs = np.sort(x)
    if np.unique(xs).size < k:
        raise ValueError(f"n_components={k} exceeds the {np.unique(xs).size} distinct values of X")
    eps = float(np.std(x, ddof=1)) * math.sqrt(_EPS) if x.size > 1 else 0.0
    m = k
    q = np.array([np.nan])
    while q.size < k + 1:
        m += 1
        q = _r_quantile7(xs, _r_seq01(m))
        q = q[np.sort(np.unique(q, return_index=True)[1])]     # R's unique(): first occurrences, in order
    if q.size > k + 1:
        drop = np.argsort(np.diff(q), kind="stable")[: q.size - k - 1]
        q = np.delete(q, drop)
    q[0] = xs[0] - eps
    q[-1] = xs[-1] + eps
    cl = np.full(x.size, -1, dtype=np.int64)
    for i in range(k):
        cl[(x >= q[i]) & (x < q[i + 1])] = i
    return cl


def quantile_partitions(X, n_components, *, max_rows: int | None = 2000, random_state=None) -> np.ndarray:
    """Quantile classes of one feature: Mclust's starting partitions for univariate data.

    For one feature ``Mclust`` does not agglomerate; it starts EM for ``G`` components from
    ``qclass(x, G)``: ``G`` classes between sample quantiles (R's type 7), the narrowest gaps
    dropped when ties make fewer distinct quantiles.

    Parameters
    ----------
    X : array-like of shape (n_samples,) or (n_samples, 1)
        One feature.
    n_components : int or sequence of int
        The numbers of classes ``G``, each at most the number of distinct values.
    max_rows : int or None, default=2000
        As in :func:`hierarchical_partitions`: above this many rows, classes are formed on a
        random subset of ``max_rows`` rows and the other rows get -1.
    random_state : None, int, numpy.random.Generator or numpy.random.RandomState
        Seed of that subset.

    Returns
    -------
    labels : ndarray of shape (n_samples, len(n_components)), int64
        Column ``c`` is the partition into ``n_components[c]`` classes, numbered 0, 1, ... by
        increasing value (as mclust); -1 for rows outside the subset.

    Examples
    --------
    >>> import numpy as np
    >>> quantile_partitions(np.array([1.0, 5.0, 2.0, 7.0, 3.0, 8.0]), [1, 2]).T
    array([[0, 0, 0, 0, 0, 0],
           [0, 1, 0, 1, 0, 1]])
    """
    X = _check_X(X)
    if X.shape[1] != 1:
        raise ValueError(f"X must have one feature for quantile classes, got {X.shape[1]}")
    G = _check_components(n_components)
    n = X.shape[0]
    rows = _subsample(n, max_rows, random_state)
    x = X[:, 0] if rows is None else X[rows, 0]
    out = np.column_stack([_qclass(x, g) for g in G])
    if rows is None:
        return out
    full = np.full((n, len(G)), -1, dtype=np.int64)
    full[rows] = out
    return full


def hierarchical_partitions(X, n_components, *, model: str = "auto", use: str = "SVD",
                            max_rows: int | None = 2000, random_state=None,
                            merge_duplicates: bool = False) -> np.ndarray:
    """mclust's starting partitions: ``hclass(hc(X, modelName = model, use = use), n_components)``.

    Model-based agglomerative hierarchical clustering (Fraley 1998) of the rows of ``X``, cut at
    each requested number of groups: the same partitions, with the same group numbers, as R's
    mclust 6 ``hclass(hc(...), G)`` (mclust's arithmetic is followed to the last bit, since
    tied merges are common; the module docstring says where R's results can still differ).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features) or (n_samples,)
        Data; finite.
    n_components : int or sequence of int
        The numbers of groups ``G``; each at least 1 and at most the number of starting groups
        (``n_samples``, or the number of distinct rows with ``merge_duplicates``).
    model : {"auto", "VVV", "EII", "V", "E"}, default="auto"
        ``"auto"`` is what ``Mclust`` does: ``"VVV"`` for more than one feature and more rows
        than features, ``"EII"`` for no more rows than features, and for one feature quantile
        classes (:func:`quantile_partitions`) rather than an agglomeration. The others run
        ``hc`` with that criterion: ``"VVV"`` (ellipsoidal groups of varying volume, shape and
        orientation; mclust's ``hcModelName``), ``"EII"`` (spherical, equal volume: Ward's
        sum of squares), and for one feature ``"V"`` (varying variance) or ``"E"`` (equal).
    use : {"SVD", "VARS", "STD"}, default="SVD"
        Data the agglomeration sees (mclust's ``hcUse``): ``"SVD"`` centres and scales each
        column, then rotates and rescales by the singular value decomposition
        (``Z = X V diag(1/sqrt(d))``); ``"STD"`` only centres and scales; ``"VARS"`` uses ``X``.
    max_rows : int or None, default=2000
        mclust's ``subset`` option: with more rows, the agglomeration runs on ``max_rows`` rows
        drawn at random without replacement (the transform too) and the other rows get -1.
        ``None``: always all rows (O(n^2) time and memory).
    random_state : None, int, numpy.random.Generator or numpy.random.RandomState
        Seed of that subset (R's draw cannot be reproduced). Only used above ``max_rows`` rows.
    merge_duplicates : bool, default=False
        Start from mclust's ``dupPartition`` (equal rows merged) instead of one group per row.
        ``Mclust`` does not (see the module docstring).

    Returns
    -------
    labels : ndarray of shape (n_samples, len(n_components)), int64
        Column ``c`` is the partition into ``n_components[c]`` groups, numbered 0, 1, ... in
        order of first appearance down the rows (as mclust's ``hclass``: the first row in the
        subset is always in group 0); -1 for rows outside the subset.

    Raises
    ------
    ValueError
        For non-finite or empty ``X``, an unknown ``model`` or ``use``, a ``model`` that does not
        fit the number of features, or ``n_components`` out of range.

    See Also
    --------
    labels_to_responsibilities : one-hot responsibilities from a column of these labels.

    References
    ----------
    Fraley, C. (1998). Algorithms for model-based Gaussian hierarchical clustering. SIAM J.
    Sci. Comput. 20(1), 270-281.

    Scrucca, L., Fraley, C., Murphy, T. B. and Raftery, A. E. (2023). Model-Based Clustering,
    Classification, and Density Estimation Using mclust in R. Chapman and Hall/CRC.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesgmm.datasets import load_faithful
    >>> X = load_faithful()[["eruptions", "waiting"]].to_numpy()
    >>> labels = hierarchical_partitions(X, [1, 2, 3])
    >>> labels.shape
    (272, 3)
    >>> [np.bincount(labels[:, c]).tolist() for c in range(3)]
    [[272], [175, 97], [40, 97, 135]]
    """
    X = _check_X(X)
    if model not in HC_MODELS:
        raise ValueError(f"model must be one of {HC_MODELS}, got {model!r}")
    if use not in HC_USES:
        raise ValueError(f"use must be one of {HC_USES}, got {use!r}")
    G = _check_components(n_components)
    n, p = X.shape
    if model == "auto":
        if p == 1:
            return quantile_partitions(X, G, max_rows=max_rows, random_state=random_state)
        model = "VVV" if n > p else "EII"
    if model in ("V", "E") and p != 1:
        raise ValueError(f"model={model!r} is for one feature, X has {p}; use 'VVV' or 'EII'")
    rows = _subsample(n, max_rows, random_state)
    Xs = X if rows is None else X[rows]
    part = _dup_partition(Xs) if merge_duplicates else np.arange(Xs.shape[0])
    ng = int(part.max()) + 1
    if max(G) > ng:
        what = "distinct rows" if merge_duplicates else "rows"
        where = " in the subset" if rows is not None else ""
        raise ValueError(f"n_components must be at most the number of {what}{where} ({ng}), got {max(G)}")
    if ng == 1:
        out = np.zeros((Xs.shape[0], len(G)), dtype=np.int64)
    else:
        Z = _transform(Xs, use)
        if model in ("V", "E") and Z.shape[1] != 1:
            raise ValueError(f"model={model!r} needs one feature after the transform")
        part, merges = _hc_merges(Z, model, part=part)
        out = _hclass(part, merges, G)
    if rows is None:
        return out
    full = np.full((n, len(G)), -1, dtype=np.int64)
    full[rows] = out
    return full


def labels_to_responsibilities(labels, n_components: int | None = None, dtype=np.float64) -> np.ndarray:
    """One-hot responsibilities from labels (mclust's ``unmap``).

    Parameters
    ----------
    labels : array-like of int, shape (n_samples,)
        Labels 0..k-1, or -1 for rows that take no part (their row is all zeros).
    n_components : int, optional
        Number of columns; default ``labels.max() + 1``.
    dtype : numpy dtype, default=float64

    Returns
    -------
    resp : ndarray of shape (n_samples, n_components)

    Examples
    --------
    >>> labels_to_responsibilities([0, 2, -1, 1])
    array([[1., 0., 0.],
           [0., 0., 1.],
           [0., 0., 0.],
           [0., 1., 0.]])
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or (labels.size and not np.issubdtype(labels.dtype, np.integer)):
        raise ValueError("labels must be a 1-D array of integers")
    k = int(labels.max()) + 1 if labels.size else 0
    if n_components is None:
        n_components = k
    if not isinstance(n_components, Integral) or n_components < k:
        raise ValueError(f"n_components must be an integer >= labels.max() + 1 = {k}, got {n_components!r}")
    if labels.size and labels.min() < -1:
        raise ValueError("labels must be >= -1")
    resp = np.zeros((labels.size, int(n_components)), dtype=dtype)
    rows = np.flatnonzero(labels >= 0)
    resp[rows, labels[rows]] = 1
    return resp
