"""Feature sets as stored in a warehouse: recording a definition, the table of sets and
their stored counts (``sercap features``), one set described (``sercap features show``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sercap._lazy import pl
from sercap.features.featureset import (
    FeatureSet,
    builtin_names,
    get_feature_set,
    output_columns,
    refuse_builtin_name,
)
from sercap.store import Warehouse, catalog


def register(wh: Warehouse, fs: FeatureSet) -> None:
    """Record the definition in the warehouse's feature_sets table (idempotent); a set
    under a built-in set's name must be that set."""
    refuse_builtin_name(fs)
    catalog.register_feature_set(wh, fs.hash, fs.name, fs.kind, fs.params, fs.versions)


def _stored(wh: Warehouse | None) -> dict[str, tuple[int, int]]:
    """hash → (utterances stored, utterances with problems); nothing without a warehouse."""
    return {} if wh is None else catalog.extraction_counts(wh)


def feature_set_table(wh: Warehouse | None) -> pl.DataFrame:
    """One row per built-in set, plus sets stored in the warehouse under an older hash
    (``wh`` None: the built-in sets, nothing stored)."""
    stored = _stored(wh)
    rows = []
    current = set()
    current_names = set(builtin_names())
    for name in builtin_names():
        fs = get_feature_set(name)
        current.add(fs.hash)
        ok, bad = stored.get(fs.hash, (0, 0))
        rows.append((name, fs.kind, fs.hash, ok, bad, fs.description))
    for h, name, kind in catalog.stored_feature_sets(wh) if wh is not None else []:
        if h not in current:
            ok, bad = stored.get(h, (0, 0))
            note = (
                f"an earlier definition of {name!r} (parameters or library versions changed)"
                if name in current_names
                else "defined in code, not built in"
            )
            rows.append((name, kind, h, ok, bad, note))
    names = ["name", "kind", "hash", "stored", "problems", "description"]
    return pl.DataFrame(rows, schema=names, orient="row")


def _param_lines(params: Mapping[str, Any]) -> list[str]:
    """Top-level parameters one per line; descriptor groups one per line, compact."""
    lines = []
    for key, value in sorted(params.items()):
        if key == "groups" and isinstance(value, Mapping):
            lines.append("  groups:")
            lines += [f"    {g}: {json.dumps(v, sort_keys=True)}" for g, v in value.items()]
        else:
            lines.append(f"  {key}: {json.dumps(value, sort_keys=True)}")
    return lines


def _defined(wh: Warehouse | None, name: str) -> FeatureSet:
    """Built-in set ``name``, or the newest definition of that name stored in ``wh``."""
    if name in builtin_names() or wh is None:
        return get_feature_set(name)
    record = catalog.newest_feature_set_record(wh, name)
    if record is None:
        return get_feature_set(name)  # says which sets there are
    return FeatureSet(
        name, record["kind"], record["params"], "defined in code, not built in",
        record["versions"],
    )  # fmt: skip


def describe_feature_set(wh: Warehouse | None, name: str) -> str:
    """A readable account of one set: parameters, versions, columns, storage, views (a set
    defined in code is described from its newest definition stored in ``wh``)."""
    fs = _defined(wh, name)
    counts = _stored(wh)
    ok, bad = counts.get(fs.hash, (0, 0))
    view = {"lld": "utterance_features", "opensmile": f"features_{name}", "image": "images"}
    lines = [
        f"{fs.name} ({fs.kind}), hash {fs.hash}",
        f"  {fs.description}",
        "",
        "parameters:",
        *_param_lines(fs.params),
        "",
        "versions in the hash: " + ", ".join(f"{k} {v}" for k, v in sorted(fs.versions.items())),
    ]
    if fs.kind == "lld":
        from sercap.features.functionals import FUNCTIONALS
        from sercap.features.lld import column_names

        cols = column_names(fs.params)
        lines += [
            f"per-frame descriptors: {len(cols)} (view frames_{name}"
            + (", alias frames)" if name == "default" else ")"),
            "  " + " ".join(cols[:12]) + (" …" if len(cols) > 12 else ""),
            f"functionals per descriptor: {len(FUNCTIONALS)}: " + " ".join(FUNCTIONALS),
        ]
    dims = output_columns(fs)
    lines += [
        f"per-utterance columns: {dims if dims is not None else 'unknown (needs opensmile)'}"
        f" (view {view[fs.kind] if name in ('default', 'mel') else _own_view(fs.kind, name)})",
        f"stored: {ok} utterances, {bad} with problems",
    ]
    older = [  # other versions of the name that hold utterances (what train would read)
        (h, counts[h][0])
        for h in (catalog.feature_set_versions(wh, name) if wh is not None else [])
        if h != fs.hash and counts.get(h, (0, 0))[0]
    ]
    if older:
        from sercap.features.featureset import store_step

        listed = ", ".join(f"{h} ({n} utterances)" for h, n in older)
        lines.append(
            f"other versions stored: {listed}: computed by another sercap, other library "
            "versions or an earlier definition; a run on one is scored as well, but predict "
            f"refuses it ({store_step(name, fs.kind)} stores this version)"
        )
    return "\n".join(lines)


def _own_view(kind: str, name: str) -> str:
    """The view of a set's per-utterance rows by its own name: ``images_NAME`` for an image
    set (``features_NAME`` named a view that does not exist), else ``features_NAME``."""
    return f"images_{name}" if kind == "image" else f"features_{name}"
