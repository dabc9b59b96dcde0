"""sercap._lazy: polars is imported on first use, and ``extract`` never uses it; optuna is
imported on a thread of its own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sercap._lazy import pl
from tests.helpers import make_corpus

ROOT = Path(__file__).resolve().parents[1]


def test_the_stand_in_gives_polars_own_objects() -> None:
    import polars

    assert pl.DataFrame is polars.DataFrame and pl.String is polars.String
    frame = pl.DataFrame({"a": [1, 2]}).with_columns(pl.col("a") * 2)
    assert isinstance(frame, polars.DataFrame) and frame["a"].to_list() == [2, 4]


def test_a_whole_extract_never_imports_polars(tmp_path) -> None:
    """Importing the warehouse layer imported polars (a quarter of a second of every
    ``sercap extract``, which builds no DataFrame): ingest in one process, then extract in
    another, which must leave polars unimported."""
    import sercap

    manifest = make_corpus(tmp_path / "corpus")
    with sercap.connect(tmp_path / "wh") as wh:
        sercap.ingest(wh, "manifest", manifest, name="toy")
    code = f"""
import sys
import sercap
with sercap.connect({str(tmp_path / "wh")!r}) as wh:
    report = sercap.extract(wh, jobs=1, progress=False)
assert report.done > 0, report
assert "polars" not in sys.modules, "polars was imported"
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]


def test_the_extract_command_never_imports_polars(tmp_path) -> None:
    """The command checks the warehouse for damage before it extracts; that check, an API
    verb, imported polars whole (a tenth of a second of every `sercap extract`)."""
    import sercap

    manifest = make_corpus(tmp_path / "corpus")
    with sercap.connect(tmp_path / "wh") as wh:
        sercap.ingest(wh, "manifest", manifest, name="toy")
    code = f"""
import sys
from click.testing import CliRunner
from sercap.cli import main
result = CliRunner().invoke(main, ["-w", {str(tmp_path / "wh")!r}, "extract", "--jobs", "1"])
assert result.exit_code == 0, result.output
assert "polars" not in sys.modules, "polars was imported"
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]


def test_a_warehouse_whose_verb_imported_optuna_first_can_be_collected() -> None:
    """optuna keeps the ModuleNotFoundError of its optional redis import, traceback and all;
    its frames led back to the first train(wh) of a notebook, so that wh was never
    collected: `del wh` released no lock, a `:memory:` warehouse's folder stayed."""
    script = """if True:
        import gc, sys, weakref
        import sercap
        from tests.helpers import add_corpus, add_features
        assert "optuna" not in sys.modules
        wh = sercap.connect(":memory:")
        add_features(wh, add_corpus(wh, n_speakers=3, per_class=2))
        sercap.train(wh, "svm", progress=False)  # the first import of optuna
        assert "optuna" in sys.modules
        root, ref = wh.root, weakref.ref(wh)
        del wh
        gc.collect()
        print(ref() is None, root.exists())
    """
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True", "False"]  # collected, its folder removed


def test_a_feature_sets_hash_imports_no_descriptor_code() -> None:
    """The hash names the descriptor code's version; read from the descriptor module it
    imported scipy.fft and the descriptors into the process that starts `extract --jobs N`'s
    workers (0.3 s before any worker started), which only the workers use."""
    code = """
import sys
from sercap.features.featureset import get_feature_set
assert get_feature_set("default").hash
heavy = {"scipy.fft", "sercap.features.lld", "numba"} & set(sys.modules)
assert not heavy, heavy
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
