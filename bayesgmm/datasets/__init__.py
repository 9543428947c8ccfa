"""Bundled demo data."""

from __future__ import annotations

from importlib import resources

import pandas as pd


def _read(name: str) -> pd.DataFrame:
    with resources.files("bayesgmm.datasets").joinpath(f"data/{name}.csv").open("r") as f:
        return pd.read_csv(f)


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
    data = _read("faithful")
    data.attrs["units"] = {"eruptions": "min", "waiting": "min"}
    return data


def load_iris() -> pd.DataFrame:
    """Anderson's iris flowers: 150 rows, four measurements in cm and the ``species`` column.

    The columns are ``sepal_length``, ``sepal_width``, ``petal_length`` and ``petal_width``
    (cm, in ``attrs["units"]``) and ``species`` (``setosa``, ``versicolor``, ``virginica``;
    50 flowers each), as in R's ``datasets::iris`` (Anderson 1935; Fisher 1936). Drop
    ``species`` before fitting.

    Examples
    --------
    >>> from bayesgmm.datasets import load_iris
    >>> data = load_iris()
    >>> data.shape
    (150, 5)
    >>> data.attrs["units"]["petal_width"]
    'cm'
    >>> data["species"].value_counts().to_dict()
    {'setosa': 50, 'versicolor': 50, 'virginica': 50}
    >>> data.drop(columns="species").shape
    (150, 4)
    """
    data = _read("iris")
    data.attrs["units"] = {
        "sepal_length": "cm",
        "sepal_width": "cm",
        "petal_length": "cm",
        "petal_width": "cm",
    }
    return data


def load_diabetes() -> pd.DataFrame:
    """Reaven and Miller's diabetes data, as in R's ``mclust::diabetes``: 145 rows.

    Three measurements on 145 non-obese adult patients (Reaven and Miller 1979), and their
    clinical ``class`` (``Normal`` 76, ``Chemical`` 36, ``Overt`` 33):

    * ``glucose``: area under the plasma glucose curve after a three-hour oral glucose
      tolerance test (OGTT);
    * ``insulin``: area under the plasma insulin curve after the OGTT;
    * ``sspg``: steady-state plasma glucose.

    mclust's documentation gives no units, so ``attrs["units"]`` is empty; the descriptions
    above are in ``attrs["descriptions"]``. mclust marks this copy as flawed: its ``insulin``
    is 45 for observation 104 (row index 103) where the version in R's rrcov package has 455.
    It is kept unchanged here so that results can be compared with mclust's. Drop ``class``
    before fitting.

    Examples
    --------
    >>> from bayesgmm.datasets import load_diabetes
    >>> data = load_diabetes()
    >>> data.shape
    (145, 4)
    >>> list(data.columns)
    ['class', 'glucose', 'insulin', 'sspg']
    >>> data["class"].value_counts().to_dict()
    {'Normal': 76, 'Chemical': 36, 'Overt': 33}
    """
    data = _read("diabetes")
    data.attrs["units"] = {}
    data.attrs["descriptions"] = {
        "glucose": "area under plasma glucose curve, 3-hour oral glucose tolerance test",
        "insulin": "area under plasma insulin curve, 3-hour oral glucose tolerance test",
        "sspg": "steady-state plasma glucose",
    }
    return data


def load_galaxies() -> pd.DataFrame:
    """Velocities of 82 galaxies in the Corona Borealis region: one column ``velocity`` (km/s).

    Roeder (1990), "Density estimation with confidence sets exemplified by superclusters and voids in
    the galaxies", JASA 85(411); the copy in R's MASS package (``MASS::galaxies``, recorded by
    ``bayesgmm/datasets/record_galaxies.R`` from MASS 7.3-58). The benchmark of mixtures with an unknown
    number of components (Richardson and Green 1997; Fruhwirth-Schnatter, Malsiner-Walli and Grun 2021),
    usually fitted to the velocities in 1000 km/s.

    Examples
    --------
    >>> from bayesgmm.datasets import load_galaxies
    >>> data = load_galaxies()
    >>> data.shape
    (82, 1)
    >>> int(data["velocity"].min()), int(data["velocity"].max())
    (9172, 34279)
    >>> data.attrs["units"]["velocity"]
    'km/s'
    """
    data = _read("galaxies")
    data.attrs["units"] = {"velocity": "km/s"}
    return data
