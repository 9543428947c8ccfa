"""The uniform noise component of a mixture (mclust's noise; Banfield and Raftery 1993), host side.

``GaussianMixture(noise=True)`` adds to the K Gaussian components one of constant density 1 / V,
whose weight EM estimates with the others: points that no Gaussian explains better than a uniform
background go to it (``predict`` gives -1). V is mclust's ``hypvol``: the smaller of the volume of
the data's bounding box and that of the box aligned with the data's principal components, computed
once on the training data. This module computes that box; the EM core only sees log(1 / V).

References
----------
Banfield, J. D. and Raftery, A. E. (1993). Model-based Gaussian and non-Gaussian clustering.
Biometrics 49(3), 803-821.
Fraley, C. and Raftery, A. E. (1998). How many clusters? Which clustering method? Answers via
model-based cluster analysis. The Computer Journal 41(8), 578-588.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from bayesgmm._boundary import column_moments

#: Rows per block when the box is computed, so that no float64 copy of large data is made.
_BLOCK = 1 << 16


class NoiseBox(NamedTuple):
    """The box the noise component is uniform over: {x : lower <= x @ axes <= upper}.

    Attributes
    ----------
    axes : ndarray of shape (n_features, n_features)
        Orthonormal columns: the identity for the bounding box, the principal axes otherwise.
    bounds : ndarray of shape (2, n_features)
        The smallest and largest coordinate of the data along each axis.
    log_volume : float
        log V = sum(log(upper - lower)).
    """

    axes: np.ndarray
    bounds: np.ndarray
    log_volume: float


def _ranges(X: np.ndarray, keep: np.ndarray, axes: np.ndarray | None) -> np.ndarray:
    """(2, D) smallest and largest coordinates of the kept rows along ``axes`` (None: the features)."""
    lower, upper = np.full(X.shape[1], np.inf), np.full(X.shape[1], -np.inf)
    for start in range(0, X.shape[0], _BLOCK):  # once per fit, over blocks of rows: not a hot loop
        rows = X[start:start + _BLOCK][keep[start:start + _BLOCK]].astype(np.float64)
        if rows.shape[0]:
            coords = rows if axes is None else rows @ axes
            lower, upper = np.minimum(lower, coords.min(axis=0)), np.maximum(upper, coords.max(axis=0))
    return np.stack([lower, upper])


def hypervolume_box(X: np.ndarray, sample_weight: np.ndarray | None = None) -> NoiseBox:
    """mclust's ``hypvol``: of the bounding box and the principal-component box of the rows of X
    (those of positive weight), the one with the smaller volume.

    The principal axes are the eigenvectors of the (weighted) covariance of X, as R's ``princomp``
    finds them; the box is the range of the data's coordinates along them.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    sample_weight : ndarray of shape (n_samples,), optional
        Rows of weight 0 are not data; the weights enter the covariance.

    Returns
    -------
    NoiseBox

    Raises
    ------
    ValueError
        When the data have no spread along some axis (a constant column, or all rows on a
        hyperplane): the volume is 0 and the noise density would be infinite.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesgmm.noise import hypervolume_box
    >>> box = hypervolume_box(np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 1.0], [2.0, 1.0]]))
    >>> float(np.exp(box.log_volume))  # the bounding box, 2 x 1
    2.0
    """
    X = np.asarray(X)
    keep = np.ones(X.shape[0], bool) if sample_weight is None else np.asarray(sample_weight) > 0
    w = None if sample_weight is None else np.asarray(sample_weight, np.float64)
    mean, _ = column_moments(X, w)
    d = X.shape[1]
    covariance = np.zeros((d, d))
    for start in range(0, X.shape[0], _BLOCK):
        centered = X[start:start + _BLOCK].astype(np.float64) - mean
        weights = np.ones(centered.shape[0]) if w is None else w[start:start + _BLOCK]
        covariance += (centered * weights[:, None]).T @ centered
    _, principal = np.linalg.eigh(covariance)
    boxes = [(np.eye(d), _ranges(X, keep, None)), (principal, _ranges(X, keep, principal))]
    with np.errstate(divide="ignore"):
        log_volumes = [float(np.sum(np.log(bounds[1] - bounds[0]))) for _, bounds in boxes]
    best = int(np.argmin(log_volumes))  # the bounding box on ties, as mclust's min() is indifferent
    axes, bounds = boxes[best]
    if not np.isfinite(log_volumes[best]):
        raise ValueError("noise: the data have no spread along some direction (a constant column, or every row "
                         "on a hyperplane), so their hypervolume is 0 and a uniform noise density is infinite; "
                         "drop the constant columns or fit without noise")
    return NoiseBox(axes, bounds, log_volumes[best])


def sample_box(rng: np.random.RandomState, box_axes: np.ndarray, bounds: np.ndarray, n: int) -> np.ndarray:
    """``n`` points drawn uniformly from the box {x : bounds[0] <= x @ box_axes <= bounds[1]}: (n, D)."""
    coords = rng.uniform(bounds[0], bounds[1], size=(n, bounds.shape[1]))
    return coords @ np.asarray(box_axes).T
