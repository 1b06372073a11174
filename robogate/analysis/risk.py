"""The risk model: P(failure) over the parameter space, with a closed-form boundary.

:class:`RiskModel` is a logistic regression on named terms of the parameters:

* **encoding** -- log-scaled dimensions enter as ``log(value)``, numeric
  features are standardised (``z = (t - mean) / scale`` on the training rows),
  categoricals are one-hot (a 0/1 column per level, named ``"shape=box"``);
* **terms** -- every main effect, plus the squares (``"friction^2"``) and
  pairwise products (``"friction:mass"``, ``"friction:shape=box"``) that
  improve the cross-validated log-loss.  Forward selection: at each step the
  candidates are ranked by their score statistic at the current fit, the best
  few are refitted fold by fold, and the one with the lowest held-out
  log-loss is added while it gains at least ``tol`` nats per row.  A few
  hundred rows then fit a handful of the right terms instead of hundreds of
  noisy ones;
* **regularisation** -- :class:`~sklearn.linear_model.LogisticRegressionCV`
  picks the L2 strength on the selected terms by the same folds' log-loss.

Predictions are ``expit(intercept + terms @ coef)`` in the term basis, so the
model saves to JSON (:meth:`RiskModel.to_json`, :meth:`RiskModel.save`) and
loads back predicting bit for bit the same, without pickle; and the boundary
``logit = 0`` solves in closed form (:meth:`RiskModel.boundary_equation`,
:meth:`RiskModel.boundary_curve`).

:class:`FlexibleRiskModel` fits histogram gradient boosting on the same
encoded features, for comparison; it has no closed form.

Both are scikit-learn classifiers of a binary target (``y = 1`` / ``True``
means failure; ``predict_proba(X)[:, 1]`` is P(failure)).  With a ``space``
they read parameter tables (a column per parameter, category names as
strings); without one they take any numeric matrix.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

from robogate._utils.checks import check_int
from robogate.scenarios.space import Categorical, ParameterSpace

__all__ = ["INTERCEPT", "MIN_PER_OUTCOME", "FlexibleRiskModel", "RiskModel", "term_parameters"]

#: Version of the JSON written by :meth:`RiskModel.to_json`.
FORMAT_VERSION = 1

#: The names of the model's terms (:attr:`RiskModel.coefficients_`): ``"intercept"``; a numeric
#: parameter ``"friction"``; a category level ``"shape=box"``; a square ``"friction^2"``; a
#: product of two ``"friction:mass"`` or ``"friction:shape=box"``.
INTERCEPT = "intercept"
MIN_PER_OUTCOME = 10
"""Fewest experiments of each outcome (success, failure) robogate fits a risk map on (the report, the envelope
suggestion)."""
_LEVEL, _SQUARE, _PRODUCT = "=", "^2", ":"


def term_parameters(term: str) -> list[str]:
    """The parameter of each factor of a term: ``"friction:shape=box"`` -> ``["friction", "shape"]``.

    A square has one factor (``"friction^2"`` -> ``["friction"]``); the intercept has none.
    """
    if term == INTERCEPT:
        return []
    return [factor.split(_LEVEL)[0].removesuffix(_SQUARE) for factor in term.split(_PRODUCT)]


# ----------------------------------------------------------------------------------- encoding


def _check_space(space: Any) -> ParameterSpace | None:
    if space is None or isinstance(space, ParameterSpace):
        return space
    raise ValueError(f"space must be a robogate ParameterSpace or None, got {type(space).__name__}")


def _space_columns(space: ParameterSpace, X: Any) -> list[np.ndarray]:
    """Validated columns of a parameter table: floats for numeric dimensions, level codes for categoricals."""
    if isinstance(X, pd.DataFrame):
        missing = [n for n in space.names if n not in X.columns]
        if missing:
            raise ValueError(f"X is missing parameter column(s) {missing}; the space has {space.names}")
        raw = [X[n].astype(object).to_numpy() for n in space.names]
    else:
        arr = np.asarray(X, dtype=object)
        if arr.ndim != 2 or arr.shape[1] != len(space):
            raise ValueError(
                f"X must be a DataFrame with the columns {space.names} or an array of shape "
                f"(n, {len(space)}) in that order, got shape {arr.shape}"
            )
        raw = list(arr.T)
    cols = []
    for dim, values in zip(space, raw):
        if isinstance(dim, Categorical):
            cols.append(dim.index(values))
        else:
            cols.append(dim.validate_many(values).astype(float))
    return cols


class _Encoded(ClassifierMixin, BaseEstimator):
    """Input checks and the base encoding shared by the risk models.

    Base features (``features_``), one JSON-able dict each: ``{"name", "column",
    "kind": "numeric", "log", "mean", "scale"}`` for a standardised numeric
    feature ``z = (t - mean) / scale`` with ``t = log(x)`` if ``log`` else
    ``x`` (``low`` and ``high``: the training range of ``x``);
    ``{"name", "column", "kind": "level", "code"}`` for the 0/1 indicator
    of a category.
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        if self.space is not None:
            tags.input_tags.categorical = True
            tags.input_tags.string = True
        return tags

    # -- fit-time helpers ------------------------------------------------------------------------

    def _fit_input(self, X: Any, y: Any) -> tuple[list[np.ndarray], np.ndarray]:
        """Validate ``X`` and ``y``; set ``classes_``, ``n_features_in_`` (and names); return columns and 0/1 y."""
        space = _check_space(self.space)
        if space is None:
            X, y = validate_data(self, X, y, dtype=float)
            cols = list(X.T)
        else:
            if y is None:
                raise ValueError("requires y to be passed, but the target y is None")
            cols = _space_columns(space, X)
            y = np.asarray(y)
            if y.ndim == 2 and y.shape[1] == 1:
                y = y.ravel()
            if y.ndim != 1 or y.shape[0] != cols[0].shape[0]:
                raise ValueError(f"y must have shape ({cols[0].shape[0]},), got {y.shape}")
            self.n_features_in_ = len(space)
            self.feature_names_in_ = np.asarray(space.names, dtype=object)
        check_classification_targets(y)
        y_type = type_of_target(y, input_name="y")
        if y_type != "binary":
            raise ValueError(f"Only binary classification is supported (failure / success); y is {y_type}")
        self.classes_, y01 = np.unique(y, return_inverse=True)
        if len(self.classes_) != 2:
            raise ValueError(
                f"{type(self).__name__} needs both failures and successes; y has only 1 class: "
                f"{self.classes_.tolist()}"
            )
        self.features_ = self._make_features(cols, space)
        return cols, y01.astype(float)

    def _names(self, space: ParameterSpace | None) -> list[str]:
        if space is not None:
            return space.names
        names = getattr(self, "feature_names_in_", None)
        if names is not None:
            return [str(n) for n in names]
        return [f"x{j}" for j in range(self.n_features_in_)]

    def _make_features(self, cols: list[np.ndarray], space: ParameterSpace | None) -> list[dict]:
        names = self._names(space)
        features = []
        for j, values in enumerate(cols):
            dim = space.dims[j] if space is not None else None
            if isinstance(dim, Categorical):
                for code, level in enumerate(dim.choices):
                    features.append({"name": f"{dim.name}{_LEVEL}{level}", "column": j, "kind": "level", "code": code})
                continue
            log = bool(getattr(dim, "log", False))
            t = np.log(values) if log else values
            mean, scale = float(np.mean(t)), float(np.std(t))
            if not (np.isfinite(scale) and scale > 0):
                scale = 1.0
            features.append({"name": names[j], "column": j, "kind": "numeric", "log": log,
                             "mean": mean, "scale": scale, "low": float(np.min(values)),
                             "high": float(np.max(values))})
        return features

    # -- predict-time helpers --------------------------------------------------------------------

    def _columns(self, X: Any) -> list[np.ndarray]:
        check_is_fitted(self, "features_")
        space = _check_space(self.space)
        if space is None:
            X = validate_data(self, X, dtype=float, reset=False)
            return list(X.T)
        return _space_columns(space, X)

    def _base(self, cols: list[np.ndarray]) -> np.ndarray:
        """The base feature matrix, shape ``(n, len(features_))``."""
        n = cols[0].shape[0] if cols else 0
        B = np.empty((n, len(self.features_)))
        for i, f in enumerate(self.features_):
            values = cols[f["column"]]
            if f["kind"] == "level":
                B[:, i] = values == f["code"]
            else:
                t = np.log(values) if f["log"] else values
                B[:, i] = (t - f["mean"]) / f["scale"]
        return B

    def predict(self, X: Any) -> np.ndarray:
        """Predicted class: ``classes_[1]`` (failure) where P(failure) > 0.5.

        Parameters
        ----------
        X : array-like or DataFrame, shape (n_samples, n_features)

        Returns
        -------
        ndarray, shape (n_samples,)
        """
        p1 = self.predict_proba(X)[:, 1]
        return self.classes_[(p1 > 0.5).astype(int)]


def _term_name(features: list[dict], term: tuple[int, ...]) -> str:
    if len(term) == 2 and term[0] == term[1]:
        return f"{features[term[0]]['name']}{_SQUARE}"
    return _PRODUCT.join(features[i]["name"] for i in term)


def _term_matrix(B: np.ndarray, terms: list[tuple[int, ...]]) -> np.ndarray:
    T = np.empty((B.shape[0], len(terms)))
    for k, term in enumerate(terms):
        T[:, k] = B[:, term[0]] if len(term) == 1 else B[:, term[0]] * B[:, term[1]]
    return T


#: Position of the logit coefficient of ``zx^a * zy^b`` in the vector ``1, zx, zy, zx*zy, zx^2, zy^2``.
_SLOTS = {(0, 0): 0, (1, 0): 1, (0, 1): 2, (1, 1): 3, (2, 0): 4, (0, 2): 5}


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _signed(value: float, what: str) -> str:
    """`` + 0.5*z`` / `` - 0.5*z``; nothing for a term the model does not have (a zero coefficient)."""
    if value == 0.0 and what:
        return ""
    return f"{'-' if value < 0 else '+'} {_fmt(abs(value))}{what}"


# ---------------------------------------------------------------------------------- RiskModel


class RiskModel(_Encoded):
    """Logistic model of P(failure) with selected second-order terms and a closed-form boundary.

    Parameters
    ----------
    space : ParameterSpace, optional
        Parameter space of the rows.  With it, ``X`` is a parameter table
        (DataFrame with a column per parameter, or an object array in the
        space's order); log dimensions enter in log space and categoricals
        one-hot.  Without it, ``X`` is any numeric matrix.
    squares : bool, default True
        Offer the square of each numeric feature as a candidate term.
    interactions : bool, default True
        Offer the product of every two features of different parameters as a
        candidate term, except products of two category levels (a cell of a
        category pair rarely holds enough rows to estimate).
    max_terms : int, optional
        At most this many second-order terms are added (default: no cap
        beyond the ``tol`` rule).
    tol : float, default 1e-3
        A candidate term is added only if it lowers the cross-validated
        log-loss by at least this many nats per row ...
    n_se : float, default 2.0
        ... and by at least this many standard errors of the per-row gain
        (a paired comparison of the held-out losses; guards against terms
        that win by chance among many candidates).
    n_screen : int, default 5
        Candidates (best score statistics) refitted fold by fold per step.
    Cs : int or list of float, default 10
        Inverse L2 strengths tried by :class:`~sklearn.linear_model.LogisticRegressionCV`
        (an int gives a log grid over ``[1e-4, 1e4]``).
    cv : int, default 5
        Stratified folds for term selection and regularisation (fewer if a
        class has fewer rows).
    max_iter : int, default 1000
        Iterations of the L-BFGS solver.
    random_state : int or None, default None
        Shuffles the folds; ``None`` uses unshuffled folds (also deterministic).

    Attributes
    ----------
    classes_ : ndarray, shape (2,)
        Class labels; ``predict_proba(X)[:, 1]`` is P(``classes_[1]``).
    features_ : list of dict
        The encoded base features (see the module docstring).
    terms_ : list of tuple of int
        Model terms as indices into ``features_`` (one index: main effect;
        two: square or product).
    coef_ : ndarray, shape (n_terms,)
        Logit coefficient of each term, in the encoded units.
    intercept_ : float
    coefficients_ : pandas.Series
        ``intercept_`` and ``coef_`` by name, e.g. ``"friction"``,
        ``"friction^2"``, ``"friction:mass"``, ``"shape=box"``.
    C_ : float
        Inverse L2 strength chosen by cross-validated log-loss.
    cv_log_loss_ : float
        Held-out log-loss per row of the final terms at ``C_``.
    selection_ : pandas.DataFrame
        Forward-selection steps: ``term`` added and ``cv_log_loss`` after it
        (first row: main effects only).

    Examples
    --------
    >>> import numpy as np
    >>> from robogate.scenarios.space import ParameterSpace, Continuous
    >>> space = ParameterSpace([Continuous("friction", 0.05, 1.2, log=True),
    ...                         Continuous("mass", 0.05, 2.0, log=True)])
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"friction": np.exp(rng.uniform(np.log(0.05), np.log(1.2), 400)),
    ...                   "mass": np.exp(rng.uniform(np.log(0.05), np.log(2.0), 400))})
    >>> fails = rng.random(400) < 1 / (1 + (X["friction"] / X["mass"]) ** 3)
    >>> model = RiskModel(space=space, random_state=0).fit(X, fails)
    >>> model.predict_proba(pd.DataFrame({"friction": [1.0], "mass": [0.1]}))[:, 1] < 0.1
    array([ True])
    """

    def __init__(
        self,
        *,
        space: ParameterSpace | None = None,
        squares: bool = True,
        interactions: bool = True,
        max_terms: int | None = None,
        tol: float = 1e-3,
        n_screen: int = 5,
        Cs: int | list[float] = 10,
        cv: int = 5,
        max_iter: int = 1000,
        random_state: int | None = None,
        n_se: float = 2.0,
    ):
        self.space = space
        self.squares = squares
        self.interactions = interactions
        self.max_terms = max_terms
        self.tol = tol
        self.n_screen = n_screen
        self.Cs = Cs
        self.cv = cv
        self.max_iter = max_iter
        self.random_state = random_state
        self.n_se = n_se

    # -- fit -------------------------------------------------------------------------------------

    def _check_params(self) -> None:
        for name in ("squares", "interactions"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")
        if self.max_terms is not None:
            check_int(self.max_terms, "max_terms", 0)
        for name in ("tol", "n_se"):
            value = getattr(self, name)
            if isinstance(value, bool) or not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        check_int(self.n_screen, "n_screen", 1)
        check_int(self.cv, "cv", 2)
        check_int(self.max_iter, "max_iter", 1)
        if not isinstance(self.Cs, (int, np.integer)):
            Cs = np.asarray(self.Cs, dtype=float)
            if Cs.ndim != 1 or Cs.size == 0 or not np.all(np.isfinite(Cs) & (Cs > 0)):
                raise ValueError(f"Cs must be a positive integer or a list of positive numbers, got {self.Cs!r}")
        else:
            check_int(self.Cs, "Cs", 1)

    def fit(self, X: Any, y: Any) -> RiskModel:
        """Select the terms, choose the regularisation and fit.

        Parameters
        ----------
        X : DataFrame or array-like, shape (n_samples, n_features)
            Parameter table (with a ``space``) or numeric matrix.
        y : array-like, shape (n_samples,)
            Binary target; ``classes_[1]`` (e.g. ``True`` = failure) is the
            class whose probability the model reports in column 1.

        Returns
        -------
        self
        """
        self._check_params()
        cols, y01 = self._fit_input(X, y)
        B = self._base(cols)
        mains = [(i,) for i in range(len(self.features_))]
        candidates = self._candidates(B)
        folds = self._folds(y01)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            if folds is None:  # too few rows of a class to cross-validate
                terms, C, loss, steps = mains, 1.0, math.nan, [("(main effects)", math.nan)]
                lr, m, s = self._fit_fixed(_term_matrix(B, terms), y01, C)
            else:
                terms, steps = self._select(B, y01, mains, candidates, folds)
                lr, m, s, C, loss = self._fit_cv(_term_matrix(B, terms), y01, folds)
        coef_s, b0_s = lr.coef_.ravel(), float(lr.intercept_[0])
        self.terms_ = terms
        self.coef_ = coef_s / s
        self.intercept_ = float(b0_s - np.sum(coef_s * m / s))
        self.C_ = float(C)
        self.n_iter_ = int(np.max(lr.n_iter_))
        self.cv_log_loss_ = float(loss)
        self.selection_ = pd.DataFrame(steps, columns=["term", "cv_log_loss"])
        self._name_coefficients()
        return self

    def _candidates(self, B: np.ndarray) -> list[tuple[int, int]]:
        """Second-order terms on offer: squares of numeric features, products across parameters."""
        F = self.features_
        out = []
        for i, fi in enumerate(F):
            if fi["kind"] == "numeric" and self.squares and len(np.unique(B[:, i])) > 2:
                out.append((i, i))
            if not self.interactions:
                continue
            for j in range(i + 1, len(F)):
                fj = F[j]
                if fj["column"] != fi["column"] and "numeric" in (fi["kind"], fj["kind"]):
                    out.append((i, j))
        if not out:
            return out
        T = _term_matrix(B, out)
        return [t for t, sd in zip(out, T.std(axis=0)) if sd > 1e-12]

    def _folds(self, y01: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]] | None:
        n_minor = int(min(y01.sum(), len(y01) - y01.sum()))
        k = min(self.cv, n_minor)
        if k < 2:
            return None
        shuffle = self.random_state is not None
        splitter = StratifiedKFold(k, shuffle=shuffle, random_state=self.random_state if shuffle else None)
        return list(splitter.split(np.zeros((len(y01), 1)), y01))

    def _logistic(self, C: float):
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=C, solver="newton-cholesky", max_iter=self.max_iter)

    def _fit_fixed(self, T: np.ndarray, y01: np.ndarray, C: float):
        m, s = _standardise(T)
        return self._logistic(C).fit((T - m) / s, y01), m, s

    def _fit_cv(self, T: np.ndarray, y01: np.ndarray, folds):
        """LogisticRegressionCV on standardised term columns: C by held-out log-loss.

        Returns the fitted estimator, the columns' means and scales, the chosen
        C and its held-out log-loss per row.
        """
        from sklearn.linear_model import LogisticRegressionCV

        m, s = _standardise(T)
        lr = LogisticRegressionCV(
            Cs=self.Cs, cv=folds, scoring=_neg_log_loss, l1_ratios=(0.0,), solver="newton-cholesky",
            max_iter=self.max_iter,
            use_legacy_attributes=False,
        ).fit((T - m) / s, y01)
        loss = -float(np.asarray(lr.scores_).reshape(len(folds), -1).mean(axis=0).max())
        return lr, m, s, float(lr.C_), loss

    def _cv_losses(self, Ts: np.ndarray, y01: np.ndarray, folds, C: float) -> np.ndarray:
        """Held-out log-loss of each row under a logistic fit at ``C`` (standardised columns)."""
        out = np.empty(len(y01))
        for train, val in folds:
            eta = self._logistic(C).fit(Ts[train], y01[train]).decision_function(Ts[val])
            out[val] = np.logaddexp(0.0, eta) - y01[val] * eta
        return out

    def _select(self, B, y01, mains, candidates, folds):
        """Forward selection of second-order terms by cross-validated log-loss."""
        T_main = _term_matrix(B, mains)
        *_, C, loss = self._fit_cv(T_main, y01, folds)
        steps = [("(main effects)", loss)]
        terms = list(mains)
        if not candidates:
            return terms, steps
        Z = _term_matrix(B, candidates)
        mz, sz = _standardise(Z)
        Zs = (Z - mz) / sz
        mx, sx = _standardise(T_main)
        Xs = (T_main - mx) / sx
        base = self._cv_losses(Xs, y01, folds, C)
        left = list(range(len(candidates)))
        cap = len(candidates) if self.max_terms is None else self.max_terms
        while left and len(terms) - len(mains) < cap:
            p = self._logistic(C).fit(Xs, y01).predict_proba(Xs)[:, 1]
            stat = _score_statistics(Xs, Zs[:, left], y01, p, C)
            best, best_losses = None, None
            for o in np.argsort(-stat, kind="stable")[: self.n_screen]:
                losses = self._cv_losses(np.column_stack([Xs, Zs[:, left[o]]]), y01, folds, C)
                if best_losses is None or losses.mean() < best_losses.mean():
                    best, best_losses = int(o), losses
            gain = base - best_losses
            if not (gain.mean() >= self.tol and gain.mean() >= self.n_se * gain.std() / math.sqrt(len(gain))):
                break
            k = left.pop(best)
            terms.append(candidates[k])
            Xs = np.column_stack([Xs, Zs[:, k]])
            base = best_losses
            steps.append((_term_name(self.features_, candidates[k]), float(base.mean())))
        return terms, steps

    def _name_coefficients(self) -> None:
        names = [INTERCEPT] + [_term_name(self.features_, t) for t in self.terms_]
        self.coefficients_ = pd.Series(np.r_[self.intercept_, self.coef_], index=names, name="logit")

    # -- predict ---------------------------------------------------------------------------------

    def decision_function(self, X: Any) -> np.ndarray:
        """Logit of P(``classes_[1]``), shape ``(n_samples,)``."""
        B = self._base(self._columns(X))
        return self.intercept_ + _term_matrix(B, self.terms_) @ self.coef_

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape ``(n_samples, 2)``; column 1 is P(failure)."""
        p1 = expit(self.decision_function(X))
        return np.column_stack([1.0 - p1, p1])

    # -- closed-form boundary --------------------------------------------------------------------

    def _numeric_feature(self, name: str) -> int:
        check_is_fitted(self, "terms_")
        for i, f in enumerate(self.features_):
            if f["name"] == name and f["kind"] == "numeric":
                return i
        numeric = [f["name"] for f in self.features_ if f["kind"] == "numeric"]
        raise ValueError(f"{name!r} is not a numeric parameter of this model; expected one of {numeric}")

    def _nominal_base(self) -> np.ndarray:
        """Base features at the nominal point (space nominal values, else the training means)."""
        space = _check_space(self.space)
        if space is None:  # numeric features only: their training means, z = 0
            return np.zeros(len(self.features_))
        return self._base(_space_columns(space, pd.DataFrame([space.nominal()])))[0]

    def _quadratic(self, x: str, y: str) -> tuple[np.ndarray, int, int]:
        """Logit coefficients ``k`` of ``1, zx, zy, zx*zy, zx^2, zy^2`` with the rest at nominal."""
        ix, iy = self._numeric_feature(x), self._numeric_feature(y)
        if ix == iy:
            raise ValueError(f"x and y must be different parameters, got {x!r} twice")
        z0 = self._nominal_base()
        k = np.zeros(6)
        k[0] = self.intercept_
        for term, c in zip(self.terms_, self.coef_):
            powers = (sum(i == ix for i in term), sum(i == iy for i in term))
            rest = float(np.prod([z0[i] for i in term if i not in (ix, iy)]))
            k[_SLOTS[powers]] += c * rest
        return k, ix, iy

    def _z_definition(self, i: int) -> str:
        f = self.features_[i]
        t = f"log({f['name']})" if f["log"] else f["name"]
        return f"z_{f['name']} = ({t} {_signed(-f['mean'], '')}) / {_fmt(f['scale'])}"

    def boundary_equation(self, x: str, y: str) -> str:
        """The boundary P(failure) = 0.5 as ``x`` in terms of ``y``, the rest at nominal values.

        Solves logit = 0 for the encoded ``x``: ROBOGATE's form
        ``z_x* = (a + b*z_y) / (c + d*z_y)`` when the logit is linear in ``x``
        (a ``z_y^2`` term joins the numerator if the model has one), the
        quadratic root when it has an ``x^2`` term.

        Parameters
        ----------
        x, y : str
            Numeric parameters (feature names) of the model.

        Returns
        -------
        str
            The equation in the model's encoded units, followed by their
            definitions (``z = (log(x) - mean) / scale`` for a log dimension)
            and the nominal values the other parameters are held at.
        """
        k, ix, iy = self._quadratic(x, y)
        zx, zy = f"z_{x}", f"z_{y}"
        if k[4] == 0.0:
            num = f"{_fmt(-k[0])} {_signed(-k[2], '*' + zy)}"
            if k[5] != 0.0:
                num += f" {_signed(-k[5], '*' + zy + '^2')}"
            eq = f"{zx}* = ({num}) / ({_fmt(k[1])} {_signed(k[3], '*' + zy)})"
        else:
            B = f"{_fmt(k[1])} {_signed(k[3], '*' + zy)}"
            C = f"{_fmt(k[0])} {_signed(k[2], '*' + zy)} {_signed(k[5], '*' + zy + '^2')}"
            eq = (f"{zx}* = (-B ± sqrt(B^2 - 4*A*C)) / (2*A) with A = {_fmt(k[4])}, "
                  f"B = {B}, C = {C}")
        lines = [" ".join(eq.split()).replace(" )", ")"), "where " + self._z_definition(ix), "and " + self._z_definition(iy)]
        others = self._nominal_description(ix, iy)
        if others:
            lines.append("other parameters at " + others)
        return "\n".join(lines)

    def _nominal_description(self, ix: int, iy: int) -> str:
        skip = {self.features_[ix]["column"], self.features_[iy]["column"]}
        space = _check_space(self.space)
        if space is not None:
            nominal = space.nominal()
            return ", ".join(f"{n}={v:g}" if not isinstance(v, str) else f"{n}={v}"
                             for j, (n, v) in enumerate(nominal.items()) if j not in skip)
        return ", ".join(f"{f['name']}={f['mean']:.4g}" for f in self.features_
                         if f["kind"] == "numeric" and f["column"] not in skip)

    def boundary_curve(self, x: str, y: str, values: Any, *, in_range: bool = True) -> np.ndarray:
        """Numeric boundary: the ``x`` with P(failure) = 0.5 at each ``y`` value, physical units.

        Parameters
        ----------
        x, y : str
            Numeric parameters of the model.
        values : array-like, shape (n,)
            Values of ``y`` in its physical units.
        in_range : bool, default True
            Drop (NaN) roots outside ``x``'s range; False keeps them, to say
            where a boundary that misses the range would lie.

        Returns
        -------
        ndarray, shape (n, r)
            ``r = 1`` when the logit is linear in ``x``; ``r = 2`` (the two
            roots, smaller first) when it has an ``x^2`` term.  NaN where
            there is no real root or (``in_range``) it lies outside ``x``'s
            range (the space's range, else the training range).
        """
        k, ix, iy = self._quadratic(x, y)
        fx, fy = self.features_[ix], self.features_[iy]
        v = np.asarray(values, dtype=float).ravel()
        ty = np.log(v) if fy["log"] else v
        zy = (ty - fy["mean"]) / fy["scale"]
        a2, a1, a0 = k[4], k[1] + k[3] * zy, k[0] + k[2] * zy + k[5] * zy**2
        with np.errstate(divide="ignore", invalid="ignore"):
            if a2 == 0.0:
                roots = (-a0 / a1)[:, None]
            else:
                disc = np.sqrt(a1**2 - 4 * a2 * a0)
                roots = np.sort(np.column_stack([(-a1 - disc) / (2 * a2), (-a1 + disc) / (2 * a2)]), axis=1)
        t = roots * fx["scale"] + fx["mean"]
        with np.errstate(over="ignore"):
            phys = np.exp(t) if fx["log"] else t
        lo, hi = self._range(ix) if in_range else (-np.inf, np.inf)
        phys[~np.isfinite(phys) | (phys < lo) | (phys > hi)] = np.nan
        return phys

    def _range(self, i: int) -> tuple[float, float]:
        space = _check_space(self.space)
        f = self.features_[i]
        if space is not None:
            dim = space.dims[f["column"]]
            return float(dim.low), float(dim.high)
        return f["low"], f["high"]

    # -- JSON ------------------------------------------------------------------------------------

    def to_json(self) -> str:
        """The fitted model as JSON: settings, space, encoding, terms and coefficients."""
        check_is_fitted(self, "terms_")
        params = self.get_params()
        space = params.pop("space")
        params["Cs"] = int(self.Cs) if isinstance(self.Cs, (int, np.integer)) else [float(c) for c in self.Cs]
        names = getattr(self, "feature_names_in_", None)
        doc = {
            "format": "robogate.RiskModel",
            "format_version": FORMAT_VERSION,
            "params": params,
            "space": None if space is None else space.to_dict(),
            "classes": [c.item() if hasattr(c, "item") else c for c in self.classes_],
            "n_features_in": int(self.n_features_in_),
            "feature_names_in": None if names is None else [str(n) for n in names],
            "features": self.features_,
            "terms": [list(t) for t in self.terms_],
            "intercept": self.intercept_,
            "coef": self.coef_.tolist(),
            "C": self.C_,
            "cv_log_loss": None if math.isnan(self.cv_log_loss_) else self.cv_log_loss_,
            "selection": self.selection_.to_dict("records"),
        }
        return json.dumps(doc, indent=1)

    @classmethod
    def from_json(cls, text: str) -> RiskModel:
        """Rebuild a fitted model from :meth:`to_json` output (no pickle involved)."""
        try:
            doc = json.loads(text)
        except (TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a RiskModel JSON document: {exc}") from None
        if not isinstance(doc, dict) or doc.get("format") != "robogate.RiskModel":
            raise ValueError("not a RiskModel JSON document (missing format 'robogate.RiskModel')")
        if doc.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"unsupported RiskModel format_version {doc.get('format_version')!r}; expected {FORMAT_VERSION}"
            )
        space = None if doc["space"] is None else ParameterSpace.from_dict(doc["space"])
        model = cls(space=space, **doc["params"])
        model.classes_ = np.asarray(doc["classes"])
        model.n_features_in_ = int(doc["n_features_in"])
        if doc["feature_names_in"] is not None:
            model.feature_names_in_ = np.asarray(doc["feature_names_in"], dtype=object)
        model.features_ = [dict(f) for f in doc["features"]]
        model.terms_ = [tuple(int(i) for i in t) for t in doc["terms"]]
        model.intercept_ = float(doc["intercept"])
        model.coef_ = np.asarray(doc["coef"], dtype=float)
        model.C_ = float(doc["C"])
        model.cv_log_loss_ = math.nan if doc["cv_log_loss"] is None else float(doc["cv_log_loss"])
        model.selection_ = pd.DataFrame(doc["selection"], columns=["term", "cv_log_loss"])
        model._name_coefficients()
        return model

    def save(self, path: str | os.PathLike) -> None:
        """Write :meth:`to_json` to ``path``."""
        Path(path).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path: str | os.PathLike) -> RiskModel:
        """Read a model written by :meth:`save`."""
        return cls.from_json(Path(path).read_text(encoding="utf-8"))


def _neg_log_loss(estimator: Any, X: np.ndarray, y: np.ndarray) -> float:
    """Mean held-out log-likelihood per row of a binary logistic fit (0/1 ``y``); a lean scorer."""
    eta = estimator.decision_function(X)
    return -float(np.mean(np.logaddexp(0.0, eta) - y * eta))


def _standardise(T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    m = T.mean(axis=0)
    s = T.std(axis=0)
    s[~(s > 1e-12)] = 1.0
    return m, s


def _score_statistics(Xs: np.ndarray, Zs: np.ndarray, y: np.ndarray, p: np.ndarray, C: float) -> np.ndarray:
    """Score statistic of adding each column of ``Zs`` to a penalised logistic fit on ``Xs``.

    ``U^2 / V`` with the score ``U = z'(y - p)`` and its variance ``V`` the
    information of ``z`` left after projecting out the current columns (and
    the intercept) under the fit's weights ``p(1 - p)``, plus the L2 term ``1/C``.
    """
    w = p * (1.0 - p)
    X1 = np.column_stack([np.ones(len(y)), Xs])
    A = (X1 * w[:, None]).T @ X1
    A[1:, 1:] += np.eye(Xs.shape[1]) / C
    Bm = (X1 * w[:, None]).T @ Zs
    V = np.einsum("ij,ij->j", Zs * w[:, None], Zs) - np.einsum("ij,ij->j", Bm, np.linalg.solve(A, Bm)) + 1.0 / C
    U = Zs.T @ (y - p)
    return U**2 / np.maximum(V, 1e-12)


# ---------------------------------------------------------------------------- FlexibleRiskModel


class FlexibleRiskModel(_Encoded):
    """Histogram gradient boosting on the risk model's encoding, for comparison.

    No closed form and no JSON: use it to check what a flexible model gains
    over :class:`RiskModel`'s selected logistic terms.

    Parameters
    ----------
    space : ParameterSpace, optional
        As for :class:`RiskModel`.
    learning_rate : float, default 0.1
    max_iter : int, default 100
        Boosting iterations.
    max_leaf_nodes : int, default 15
    min_samples_leaf : int, default 20
    l2_regularization : float, default 0.0
    random_state : int or None, default None

    Attributes
    ----------
    classes_ : ndarray, shape (2,)
    features_ : list of dict
    estimator_ : sklearn.ensemble.HistGradientBoostingClassifier
    n_iter_ : int
        Boosting iterations run.
    """

    def __init__(
        self,
        *,
        space: ParameterSpace | None = None,
        learning_rate: float = 0.1,
        max_iter: int = 100,
        max_leaf_nodes: int = 15,
        min_samples_leaf: int = 20,
        l2_regularization: float = 0.0,
        random_state: int | None = None,
    ):
        self.space = space
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> FlexibleRiskModel:
        """Fit the boosted trees (arguments as :meth:`RiskModel.fit`)."""
        from sklearn.ensemble import HistGradientBoostingClassifier

        cols, y01 = self._fit_input(X, y)
        # One OpenMP thread: trees on a few thousand rows gain nothing from more, and on a busy machine
        # threads that spin while waiting for each other made a 240-row fit take 25x as long.
        with threadpool_limits(limits=1, user_api="openmp"):
            self.estimator_ = HistGradientBoostingClassifier(
                learning_rate=self.learning_rate, max_iter=self.max_iter, max_leaf_nodes=self.max_leaf_nodes,
                min_samples_leaf=self.min_samples_leaf, l2_regularization=self.l2_regularization,
                early_stopping=False, random_state=self.random_state,
            ).fit(self._base(cols), y01)
        self.n_iter_ = self.estimator_.n_iter_
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape ``(n_samples, 2)``; column 1 is P(failure)."""
        B = self._base(self._columns(X))
        with threadpool_limits(limits=1, user_api="openmp"):
            return self.estimator_.predict_proba(B)
