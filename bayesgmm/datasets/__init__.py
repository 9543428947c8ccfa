"""Bundled demo data."""

from __future__ import annotations

from importlib import resources

import pandas as pd


def load_faithful() -> pd.DataFrame:
    """Old Faithful geyser eruptions: 272 rows, columns ``eruptions`` (minutes) and ``waiting`` (minutes).

    Public domain (Azzalini and Bowman 1990; R's ``datasets::faithful``). The units are in
    ``attrs["units"]``, which :mod:`bayesgmm.plot` uses for axis labels.

    Examples
    --------
    >>> from bayesgmm.datasets import load_faithful
    >>> load_faithful().shape
    (272, 2)
    >>> load_faithful().attrs["units"]["waiting"]
    'min'
    """
    with resources.files("bayesgmm.datasets").joinpath("data/faithful.csv").open("r") as f:
        data = pd.read_csv(f)
    data.attrs["units"] = {"eruptions": "min", "waiting": "min"}
    return data
