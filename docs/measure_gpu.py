"""How the README's GPU figures were measured: sercap's torch models cross-validated on the
same datasets `sercap train MODEL` loads, on a GPU machine that lacks duckdb and polars.

Our GPU machines cannot install packages from an index, so the warehouse layer (duckdb,
polars) is not there. This script splits `train` in two:

    python docs/measure_gpu.py prepare WAREHOUSE DIR     # here: sercap.data.load_dataset, pickled
    python3 docs/measure_gpu.py run DIR BUDGET_S cnn,resnet18,resnet34,lstm,dnn   # there

A model name ending in ``+sn`` (``resnet34+sn``) reads the dataset loaded with
``speaker_norm=True`` (what ``train --speaker-norm`` reads). Each model's out-of-fold
probabilities come back as ``$OUT/proba_MODEL.npy`` (rows in the dataset's order, which
``prepare`` records in ``utt_ids_KIND.txt``), so ensembles with CPU runs can be scored here.

`run` cross-validates each model with its default parameters, seed 0 and --jobs 2, exactly as
:func:`sercap.evaluate.cross_validate` does for `train`, on ``device="cuda"``, and prints one
JSON line per model (pooled UA, WA, macro-F1, fit seconds, epochs/s). The LSTM's frames
travel as float16 (the transfer limit); everything else is bit-for-bit what `train` reads.
Back here, ensembles of GPU and CPU members are scored on the same utterances:

    python docs/measure_gpu.py score WAREHOUSE RESULTS resnet34,dnn,trees [sn]

Each member is ``RESULTS/proba_MODEL[_sn].npy`` when the GPU run left one, else the newest
stored run of MODEL (``train MODEL [--speaker-norm]``) in WAREHOUSE. The members are
averaged with equal weights (what ``sercap ensemble`` does), and the average is compared
with its best member by the paired bootstrap and McNemar's test of ``sercap compare``.

On a machine where sercap installs normally, `sercap bench --all --device cuda` is the
command to use instead.
"""

import json
import lzma
import os
import pickle
import sys
import time
import types

KINDS = ("image", "tabular", "sequence")


def prepare(warehouse: str, folder: str) -> None:
    import numpy as np

    from sercap.data import load_dataset
    from sercap.store import connect

    os.makedirs(folder, exist_ok=True)
    wh = connect(warehouse, read_only=True)
    kinds = [k for k in os.environ.get("SERCAP_KINDS", ",".join(KINDS)).split(",") if k]
    for kind in kinds:
        for norm in (False, True):
            data = load_dataset(wh, kind, speaker_norm=norm)
            if kind == "sequence":
                data.X = [x.astype(np.float16) for x in data.X]
            name = kind + ("-sn" if norm else "")
            with lzma.open(os.path.join(folder, f"{name}.pkl.xz"), "wb", preset=3) as f:
                pickle.dump(data, f, protocol=5)
            print(name, len(data), flush=True)
        with open(os.path.join(folder, f"utt_ids_{kind}.txt"), "w") as f:
            f.write("\n".join(map(str, data.utt_ids)) + "\n")


class _Absent(types.ModuleType):
    """A stand-in for a library the GPU machine lacks: every attribute is an empty class,
    so ``isinstance(x, polars.DataFrame)`` (scikit-learn asks) answers False."""

    def __getattr__(self, name: str) -> type:
        if name.startswith("__"):
            raise AttributeError(name)
        cls = type(name, (), {})
        setattr(self, name, cls)
        return cls


def run(folder: str, budget_s: float, models: list[str]) -> None:
    for name in ("duckdb", "polars", "optuna"):
        try:
            __import__(name)
        except ImportError:
            sys.modules[name] = _Absent(name)
    sys.path.insert(0, os.getcwd())
    import numpy as np
    import torch

    from sercap.evaluate import cross_validate
    from sercap.models.registry import get_model

    device = os.environ.get("SERCAP_DEVICE", "cuda")  # "cpu" for a smoke test here
    params = json.loads(os.environ.get("SERCAP_PARAMS", "null"))  # e.g. {"epochs": 1}
    card = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
    print("device:", card, "torch", torch.__version__, flush=True)
    start, cache, results = time.time(), {}, []
    out = os.environ.get("OUT", ".")
    for entry in models:
        if time.time() - start > budget_s:
            print(f"skipped {entry}: budget spent", flush=True)
            continue
        name, norm = entry.removesuffix("+sn"), entry.endswith("+sn")
        cls = get_model(name)
        kind = cls.input_kind + ("-sn" if norm else "")
        if kind not in cache:
            with lzma.open(os.path.join(folder, f"{kind}.pkl.xz"), "rb") as f:
                cache[kind] = pickle.load(f)
            if cls.input_kind == "sequence":
                data = cache[kind]
                data.X = [x.astype(np.float32) for x in data.X]
        data = cache[kind]
        epochs = int(cls.default_params().get("epochs", 0))
        res = cross_validate(data, name, params, seed=0, n_jobs=2, device=device, progress=False)
        np.save(os.path.join(out, f"proba_{entry.replace('+', '_')}.npy"), res.proba)
        folds = len(res.fold_names)
        row = {
            "model": entry, "ua": res.pooled.ua, "wa": res.pooled.wa,
            "macro_f1": res.pooled.macro_f1, "fit_s": res.fit_s, "folds": folds,
            "epochs": epochs, "epochs_per_s": folds * epochs / res.fit_s, "device": card,
        }  # fmt: skip
        results.append(row)
        print(json.dumps(row), flush=True)
        with open(os.path.join(out, "gpu_results.json"), "w") as f:
            json.dump(results, f, indent=1)


def score(warehouse: str, results: str, members: list[str], norm: bool) -> None:
    import numpy as np

    from sercap.analysis import mcnemar, paired_bootstrap
    from sercap.data import load_dataset
    from sercap.ensemble import average_probabilities
    from sercap.store import connect
    from sercap.store import runs as store_runs

    wh = connect(warehouse, read_only=True)
    data = load_dataset(wh, "tabular")
    with open(os.path.join(results, "utt_ids_image.txt")) as f:
        order = f.read().split()
    if order != [str(u) for u in data.utt_ids]:
        sys.exit("the GPU datasets list other utterances than this warehouse's")
    probas = {}
    for model in members:
        path = os.path.join(results, f"proba_{model}{'_sn' if norm else ''}.npy")
        if os.path.exists(path):
            probas[model] = np.load(path)
            continue
        run_id = wh.scalar(  # the newest run of the model at its defaults, on this corpus
            "SELECT run_id FROM runs WHERE model = ? AND speaker_norm = ? AND kind = 'model' "
            "AND feature_set IN ('default', 'mel') AND columns IS NULL "  # the declared inputs
            "AND corpus = ? AND label_map = ? AND tuned_from IS NULL AND cross_matrix IS NULL "
            "AND coalesce(params_json, '{}') = '{}' "  # not tuned, hand-set or quick
            "ORDER BY started_at DESC LIMIT 1",
            [model, norm, data.corpus, data.label_map],
        )
        if run_id is None:
            sys.exit(f"no {model} probabilities in {results} and no stored run of it")
        rows = store_runs.predictions(wh, run_id)
        by_utt = dict(zip(rows["utt_id"], rows["proba"].to_list(), strict=True))
        probas[model] = np.array([by_utt[u] for u in order], dtype=np.float64)
    y, k = data.y, data.n_classes
    preds = {m: p.argmax(axis=1) for m, p in probas.items()}
    avg = average_probabilities(list(probas.values())).argmax(axis=1)
    best = max(preds, key=lambda m: paired_bootstrap(y, preds[m], preds[m], n_classes=k).a)
    ci = paired_bootstrap(y, avg, preds[best], n_classes=k, groups=data.speakers)
    one_by_one = paired_bootstrap(y, avg, preds[best], n_classes=k)
    test = mcnemar(y, avg, preds[best])
    name = f"avg({' + '.join(members)})" + (" speaker-norm" if norm else "")
    for m in members:
        print(f"{m}: UA {paired_bootstrap(y, preds[m], preds[m], n_classes=k).a:.3f}")
    print(
        f"{name}: UA {ci.a:.3f}; best member {best} {ci.b:.3f}; difference "
        f"{ci.difference:+.3f}, 95% CI over speakers [{ci.low:+.3f}, {ci.high:+.3f}] "
        f"(over utterances [{one_by_one.low:+.3f}, {one_by_one.high:+.3f}]), McNemar p = "
        f"{test.p_value:.2g}"
    )


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "prepare":
        prepare(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 5 and sys.argv[1] == "run":
        run(sys.argv[2], float(sys.argv[3]), sys.argv[4].split(","))
    elif len(sys.argv) in (5, 6) and sys.argv[1] == "score":
        score(sys.argv[2], sys.argv[3], sys.argv[4].split(","), sys.argv[5:] == ["sn"])
    else:
        sys.exit(__doc__)
