"""Feature sets as data: a name, a kind, parameters, and a hash that names their storage.

The hash covers the canonical JSON of (name, kind, params) plus the versions of everything
that changes the numbers (librosa, numpy and scipy major.minor, sercap's descriptor code and
functionals template, openSMILE). Changing any of them gives a new hash, hence a new folder
and new rows; the old ones stay queryable until deleted.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sercap.errors import BadParameterError, step
from sercap.features.framing import frame_geometry

KINDS = ("lld", "opensmile", "image")

_DEFAULT_GROUPS: dict[str, Any] = {
    "logmel": {"n_mels": 26, "fmin": 0.0, "fmax": 8000.0},
    "mfcc": {"n_mfcc": 14, "c0": False},
    "energy": {},
    "spectral": {"rolloffs": [0.25, 0.5, 0.75, 0.9]},
    "bands": {"edges_hz": [0, 250, 650, 1000, 2000, 4000, 8000]},
    "contrast": {"n_bands": 6, "fmin": 200.0, "fmax": 7200.0},
    "pitch": {
        "method": "acf",
        "fmin": 70.0,
        "fmax": 450.0,
        "threshold": 0.45,
        "octave_cost": 0.02,
        "silence_db": -45.0,
    },
}
#: Viterbi F0 path (the ``tracked`` and ``voice`` sets): Praat's silence threshold and costs.
_TRACKED_PITCH: dict[str, Any] = {
    "silence_db": -30.0,
    "tracking": "viterbi",
    "octave_jump_cost": 0.35,
    "voiced_unvoiced_cost": 0.14,
}
_VOICE_GROUP: dict[str, Any] = {"max_formant": 5500.0, "lpc_order": 10, "formant_window_ms": 25.0}

_LLD_BASE: dict[str, Any] = {
    "sample_rate": 16000,
    "window_ms": 25.0,
    "hop_ms": 10.0,
    "n_fft": 512,
    "groups": _DEFAULT_GROUPS,
    "deltas": {"width": 2},
}


@dataclass(frozen=True)
class FeatureSet:
    """One feature-set definition. ``params`` is plain JSON data."""

    name: str
    kind: str
    params: Mapping[str, Any]
    description: str = ""
    versions: Mapping[str, str] = field(default_factory=dict)

    def canonical_json(self) -> str:
        """What the hash covers: name, kind, params and versions, keys sorted, no spaces."""
        return json.dumps(
            {
                "name": self.name,
                "kind": self.kind,
                "params": self.params,
                "versions": self.versions,
            },
            sort_keys=True,
            separators=(",", ":"),
        )

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]

    @property
    def sample_rate(self) -> int:
        return int(self.params["sample_rate"])

    @property
    def hop_s(self) -> float:
        return float(self.params.get("hop_ms", 10.0)) / 1000.0

    def with_params(self, name: str | None = None, **changes: Any) -> FeatureSet:
        """A copy with some top-level parameters replaced (a new set, a new hash).

        A variant of a built-in set needs a ``name`` of its own: under the built-in's name it
        would stand in for it in every later command. A key the set does not have is refused
        (``hopms=5`` would change the hash and nothing else).

        >>> fs = get_feature_set("default").with_params(name="hop20", hop_ms=20.0)
        >>> fs.name, fs.params["hop_ms"]
        ('hop20', 20.0)
        """
        unknown = sorted(set(changes) - set(self.params))
        if unknown:
            raise BadParameterError(
                f"feature set {self.name!r} has no parameter {', '.join(map(repr, unknown))}; "
                f"its parameters: {', '.join(sorted(self.params))}"
            )
        _refuse_unknown_group_keys(self, changes.get("groups"))
        name = self.name if name is None else name
        params = copy.deepcopy(dict(self.params))
        params.update({key: _like(self.params[key], value) for key, value in changes.items()})
        variant = make_feature_set(name, self.kind, params, self.description)
        refuse_builtin_name(variant)
        return variant


def _like(known: Any, given: Any) -> Any:
    """``given`` as the type of the parameter it replaces where it is the same number:
    ``hop_ms=10`` for the set's ``10.0`` (or ``n_fft=512.0`` for ``512``) made another hash,
    so the same features were computed and stored twice under two versions. Groups are
    matched key by key.

    >>> _like(10.0, 10), _like(512, 512.0), _like(512, 512.5), _like(True, 1)
    (10.0, 512, 512.5, 1)
    >>> _like({"fmin": 70.0, "fmax": 450.0}, {"fmin": 75, "new": 1})
    {'fmin': 75.0, 'new': 1}
    >>> _like([0, 250, 650], [0.0, 250, 650.0, 1000.0])  # list items too (band edges)
    [0, 250, 650, 1000]
    """
    from sercap._arguments import plain

    given = plain(given)  # np.int64(512): json could not write it
    if isinstance(known, bool) or isinstance(given, bool):
        return given
    if isinstance(known, list) and isinstance(given, list) and known:
        return [_like(known[min(i, len(known) - 1)], v) for i, v in enumerate(given)]
    if isinstance(known, float) and isinstance(given, int):
        return float(given)
    if isinstance(known, int) and isinstance(given, float) and given.is_integer():
        return int(given)
    if isinstance(known, Mapping) and isinstance(given, Mapping):
        return {k: _like(known[k], v) if k in known else v for k, v in given.items()}
    return given


def _refuse_unknown_group_keys(fs: FeatureSet, groups: Any) -> None:
    """A group the set has, given again with a key it does not have, is refused: a typo
    there (``{"logmel": {"nmels": 40}}``) changed the hash and nothing else, as a mistyped
    top-level key did. (A group the set lacks is checked where it is computed.)

    >>> fs = get_feature_set("default")
    >>> _refuse_unknown_group_keys(fs, {**fs.params["groups"], "logmel": {"nmels": 40}})
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    sercap.errors.BadParameterError: feature set 'default': group 'logmel' has no parameter ...
    """
    if not isinstance(groups, Mapping):
        return
    have = fs.params.get("groups", {})
    for group, given in groups.items():
        known = have.get(group)
        if not isinstance(known, Mapping) or not isinstance(given, Mapping):
            continue
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise BadParameterError(
                f"feature set {fs.name!r}: group {group!r} has no parameter "
                f"{', '.join(map(repr, unknown))}; its parameters: {', '.join(sorted(known))}"
            )


def library_versions(kind: str, params: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Versions of what changes this kind's numbers (major.minor for numeric libraries).

    Read from the installed packages' metadata, not by importing them: librosa's import
    alone costs seconds, and the default descriptors do not use it (only the ``pyin`` and
    ``chroma`` groups and the images do, and only their hashes name its version).
    """
    mm = _major_minor
    versions: dict[str, str] = {"numpy": mm("numpy")}
    if kind == "lld":  # numba compiles the descriptor kernels, DuckDB computes functionals
        versions |= {"numba": mm("numba"), "duckdb": mm("duckdb")}
    groups = (params or {}).get("groups", {})
    uses_librosa = kind == "image" or (
        kind == "lld"
        and ("chroma" in groups or groups.get("pitch", {}).get("method", "acf") == "pyin")
    )
    if kind in ("lld", "image"):
        if uses_librosa:
            versions["librosa"] = mm("librosa")
        versions["scipy"] = mm("scipy")
    if kind == "lld":
        from sercap.features import versions as code
        from sercap.features.functionals import template_sha

        versions["sercap_lld"] = str(code.LLD_VERSION)
        versions["functionals_sql"] = template_sha()
        if not _whole_samples(params or {}):  # frame times from samples since stop 31: the
            versions["frame_times"] = "samples"  # voicing lengths of such a set changed
    elif kind == "image":
        from sercap.features.images import IMAGES_VERSION

        versions["sercap_images"] = str(IMAGES_VERSION)
    elif kind == "opensmile":
        versions["opensmile"] = opensmile_version() or "missing"
    return versions


@functools.cache
def _major_minor(package: str) -> str:
    """An installed package's major.minor version (``missing``), once per process: every
    feature set a command builds asked the package metadata again (12 look-ups, ~15 ms of
    each ``extract``)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return ".".join(version(package).split(".")[:2])
    except PackageNotFoundError:
        return "missing"


def _whole_samples(params: Mapping[str, Any]) -> bool:
    """Whether the hop and the window are whole samples at the set's rate (they are for
    every built-in set): only where they are not did the frame times change with the
    sample-exact timing, so only those sets get a new hash."""
    try:
        win, hop, _ = frame_geometry(params)
        sr = float(params["sample_rate"])
        return (
            abs(float(params["hop_ms"]) * sr / 1000 - hop) < 1e-9
            and abs(float(params["window_ms"]) * sr / 1000 - win) < 1e-9
        )
    except (KeyError, TypeError, ValueError):
        return True


def opensmile_version() -> str | None:
    """The installed openSMILE Python package's version, or None."""
    try:
        import opensmile
    except Exception:  # ImportError, or a broken native library
        return None
    return str(getattr(opensmile, "__version__", "unknown"))


def make_feature_set(
    name: str, kind: str, params: Mapping[str, Any], description: str = ""
) -> FeatureSet:
    """Validate and build a feature set (versions filled in for its kind)."""
    from sercap.names import check_name

    check_name(name, "feature set name")
    if kind not in KINDS:
        raise BadParameterError(f"feature set {name!r}: kind must be one of {KINDS}, not {kind!r}")
    params = json.loads(json.dumps(params))  # plain JSON types only
    if kind in ("lld", "image"):
        for key in ("sample_rate", "window_ms", "hop_ms"):
            if not isinstance(params.get(key), int | float) or params[key] <= 0:
                raise BadParameterError(f"feature set {name!r}: {key} must be a positive number")
    if kind == "lld" and "pitch" not in params.get("groups", {}):
        raise BadParameterError(
            f"feature set {name!r}: the pitch group is required (voicing stats)"
        )
    if kind == "lld":
        _check_pitch_range(name, params)
    return FeatureSet(name, kind, params, description, library_versions(kind, params))


def _check_pitch_range(name: str, params: Mapping[str, Any]) -> None:
    """Refuse a pitch range the frame's autocorrelation cannot cover: its lags reach
    ``n_fft // 2 - 1`` samples, so a lower ``fmin`` was cut there without a word."""
    try:
        _win, _hop, n_fft = frame_geometry(params)
    except ValueError as exc:
        raise BadParameterError(f"feature set {name!r}: {exc}") from exc
    g = params["groups"]["pitch"]
    fmin, fmax = float(g.get("fmin", 70.0)), float(g.get("fmax", 450.0))
    sr = float(params["sample_rate"])
    lowest = sr / (n_fft // 2 - 1)
    if not lowest <= fmin < fmax <= sr / 4:
        raise BadParameterError(
            f"feature set {name!r}: pitch range {fmin:g}-{fmax:g} Hz; it must lie within "
            f"{lowest:.1f}-{sr / 4:g} Hz for a {n_fft}-point FFT at {sr:g} Hz (for a lower "
            "fmin, raise n_fft and window_ms)"
        )


def builtin_definitions() -> dict[str, tuple[str, dict[str, Any], str]]:
    """name → (kind, params, description) of the feature sets sercap ships."""
    # The default: F0 by a Viterbi path over the autocorrelation candidates (Praat's costs
    # and silence threshold), then eGeMAPS' voice quality (jitter, shimmer, formants).
    # Measured on EmoDB (SVM, leave-one-speaker-out) against ``basic``, the previous default:
    # UA 0.776 vs 0.785, paired bootstrap CI of the difference [-0.029, +0.009]: within noise;
    # they are in the default for what they carry that the spectrum envelope does not (the
    # voice source) on corpora beyond EmoDB, at ~1.5 s more descriptor time on EmoDB.
    default = copy.deepcopy(_LLD_BASE)
    default["groups"]["pitch"].update(_TRACKED_PITCH)
    default["groups"]["voice"] = dict(_VOICE_GROUP)
    # HNR from the waveform's cross-correlation one period apart (Praat's cc method): the
    # frame autocorrelation's HNR correlated 0.54 with Praat's per utterance, this 0.89.
    voice_acf = copy.deepcopy(default)
    default["groups"]["pitch"]["hnr"] = "cc"
    basic = copy.deepcopy(_LLD_BASE)
    tracked = copy.deepcopy(_LLD_BASE)
    tracked["groups"]["pitch"].update(_TRACKED_PITCH)
    pyin = copy.deepcopy(default)
    pyin["groups"]["pitch"]["method"] = "pyin"
    chroma = copy.deepcopy(default)
    chroma["groups"]["chroma"] = {}
    return {
        "default": (
            "lld",
            default,
            "79 descriptors: 70 from one 512-point STFT (log-mel, MFCC, energy, spectral "
            "shape, bands, contrast, Viterbi-tracked pitch, voicing) and 9 from the waveform "
            "(HNR, jitter, shimmer, LPC formants F1-F3 with bandwidths) + deltas; 18 SQL "
            "functionals",
        ),
        "basic": (
            "lld",
            basic,
            "the default before F0 tracking and voice quality (F0 picked frame by frame, "
            "-45 dB silence, no jitter/shimmer/formants)",
        ),
        "tracked": (
            "lld",
            tracked,
            "basic with F0 tracked by a Viterbi path (Praat's costs, -30 dB silence), no "
            "voice quality",
        ),
        "voice_acf": (
            "lld",
            voice_acf,
            "the default before HNR came from the waveform: HNR from the 25 ms frame's "
            "autocorrelation",
        ),
        "pyin": ("lld", pyin, "as default, F0 by probabilistic YIN (about 50x slower)"),
        "chroma": (
            "lld",
            chroma,
            "as default plus 12 chroma bins (+ deltas): 2.2 UA points worse on EmoDB",
        ),
        "compare2016": (
            "opensmile",
            {"feature_set": "ComParE_2016", "level": "Functionals", "sample_rate": 16000},
            "openSMILE ComParE 2016 functionals (6373), needs the opensmile package",
        ),
        "egemaps02": (
            "opensmile",
            {"feature_set": "eGeMAPSv02", "level": "Functionals", "sample_rate": 16000},
            "openSMILE eGeMAPS v02 functionals (88), needs the opensmile package",
        ),
        "mel": (
            "image",
            {
                "sample_rate": 16000,
                "window_ms": 25.0,
                "hop_ms": 10.0,
                "n_fft": 512,
                "n_mels": 64,
                "fmin": 0.0,
                "fmax": 8000.0,
                "db_min": -90.0,
                "db_max": 0.0,
            },
            "log-mel spectrogram images: 64 mels, 10 ms per column, -90..0 dB as 0..255 PNG",
        ),
    }


def refuse_builtin_name(fs: FeatureSet) -> None:
    """Refuse a set that carries a built-in set's name but not its definition: stored, it
    would become what that name means for ``train``, the views and every later command,
    while ``extract`` goes on computing the built-in."""
    if fs.name not in builtin_definitions():
        return
    builtin = get_feature_set(fs.name)
    if fs.hash == builtin.hash:
        return
    changed = sorted(
        k for k in set(fs.params) | set(builtin.params)
        if fs.params.get(k) != builtin.params.get(k)
    )  # fmt: skip
    what = f"its {', '.join(changed)} differ" if changed else "it differs"
    raise BadParameterError(
        f"feature set {fs.name!r} is a built-in set and {what}; give the variant a name of "
        f"its own (.with_params(name='{fs.name}_mine', ...))"
    )


def builtin_names(kind: str | None = None) -> list[str]:
    return [n for n, (k, _, _) in builtin_definitions().items() if kind is None or k == kind]


def get_feature_set(name: str, kind: str | None = None) -> FeatureSet:
    """A built-in feature set by name (``kind`` restricts which are accepted)."""
    defs = builtin_definitions()
    kinds = sorted({k for k, _, _ in defs.values()})
    if kind is not None and kind not in kinds:  # said "choose one of: " and nothing
        raise BadParameterError(f"unknown kind {kind!r}; choose one of: {', '.join(kinds)}")
    if name not in defs or (kind is not None and defs[name][0] != kind):
        names = ", ".join(builtin_names(kind))
        called = {"image": "an image set", "opensmile": "an openSMILE set", "lld": "a feature set"}
        wanted = called.get(kind or "", "a feature set")
        if name in defs and called[defs[name][0]] != wanted:  # `images --image-set default`
            raise BadParameterError(
                f"{name!r} is {called[defs[name][0]]}, not {wanted}; choose one of: {names}"
            )
        what = wanted.split(" ", 1)[1]
        raise BadParameterError(f"unknown {what} {name!r}; choose one of: {names}")
    k, params, description = defs[name]
    return make_feature_set(name, k, params, description)


def store_step(
    name: str, kind: str | None, corpus: str | None = None, *, retry: bool = False
) -> str:
    """The step that stores set ``name`` (of ``corpus``), as both front ends spell it; with
    ``retry``, the one that tries its failed utterances again (there the default sets,
    ``default`` and ``mel``, go unnamed, as a user types them).

    >>> store_step("mel", "image", "emodb")
    "`sercap images --image-set mel --corpus emodb` / `sercap.images(wh, 'mel', corpus='emodb')`"
    >>> store_step("default", "lld", retry=True)
    '`sercap extract --retry-errors` / `sercap.extract(wh, retry_errors=True)`'
    >>> store_step("hop20", "lld", "emodb")  # doctest: +NORMALIZE_WHITESPACE
    "`sercap.extract(wh, fs, corpus='emodb')`, fs the definition of 'hop20'
     (get_feature_set(...).with_params(name='hop20', ...)): no command knows it by name"
    """
    named = not (retry and name in ("default", "mel"))
    verb, option = ("images", "--image-set") if kind == "image" else ("extract", "--feature-set")
    if name not in builtin_definitions():  # defined in code: no command knows it by name
        args = ["wh", "fs"] + [f"corpus={corpus!r}"] * bool(corpus)
        args += ["retry_errors=True"] * retry
        return (
            f"`sercap.{verb}({', '.join(args)})`, fs the definition of {name!r} "
            f"(get_feature_set(...).with_params(name={name!r}, ...)): no command knows it "
            "by name"
        )
    cli = verb + (f" {option} {name}" if named else "")
    python = f"{verb}(wh" + (f", {name!r}" if named else "")
    if corpus:
        cli, python = cli + f" --corpus {corpus}", python + f", corpus={corpus!r}"
    if retry:
        cli, python = cli + " --retry-errors", python + ", retry_errors=True"
    return step(cli, python + ")")


def computed_now(definition: Mapping[str, Any]) -> str | None:
    """The hash this installation computes for a stored set's definition (its ``name``,
    ``kind`` and ``params``), or None where it cannot tell: transcripts, openSMILE without
    its package, a definition this sercap would not make. A stored hash that differs was
    computed by another sercap or other library versions (:func:`library_versions`).
    """
    from sercap.errors import SercapError

    kind = definition.get("kind")
    if kind not in KINDS:  # transcripts: no set computes them
        return None
    if kind == "opensmile":
        from sercap.features.opensmile import available

        if not available():  # said where its features are computed ("needs the opensmile…")
            return None
    try:
        return make_feature_set(definition["name"], kind, definition["params"]).hash
    except SercapError:  # a definition this sercap would not make: its features are
        return None  # computed (or refused) as the stored parameters say, as before


def output_columns(fs: FeatureSet) -> int | None:
    """How many per-utterance columns the set stores (None when it cannot tell here)."""
    if fs.kind == "lld":
        from sercap.features.functionals import FUNCTIONALS, VOICING_COLUMNS
        from sercap.features.lld import column_names

        return len(column_names(fs.params)) * len(FUNCTIONALS) + len(VOICING_COLUMNS)
    if fs.kind == "opensmile":
        from sercap.features.opensmile import available, column_names

        return len(column_names(fs.params)) if available() else None
    return 1
