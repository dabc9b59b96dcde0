"""Ctrl-C handling shared by the CLI and the API (sercap._interrupt)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path


def test_a_ctrl_c_inside_a_model_import_waits_for_the_import_to_finish(tmp_path: Path) -> None:
    """A Ctrl-C inside `import torch` (seconds long: a notebook's likely Stop moment) left
    torch half-initialised, and every torch model failed until the kernel restarted. The
    import now finishes, then the KeyboardInterrupt comes; the module is whole after it."""
    (tmp_path / "slow_model.py").write_text(
        textwrap.dedent(
            """
            import os, signal, time
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C half-way through the import
            time.sleep(0.2)
            READY = True
            """
        )
    )
    script = textwrap.dedent(
        """
        import signal, sys
        # Python's own Ctrl-C handler, whatever the caller left: a shell's background job
        # starts with SIGINT ignored, and an ignored Ctrl-C is rightly not raised
        signal.signal(signal.SIGINT, signal.default_int_handler)
        from sercap._interrupt import import_whole
        try:
            import_whole("slow_model")
        except KeyboardInterrupt:
            print("interrupted")
        print("whole" if getattr(sys.modules.get("slow_model"), "READY", False) else "broken")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": f"{tmp_path}:{Path(__file__).parents[1]}", "PATH": "/usr/bin:/bin"},
    )
    assert done.stdout.split() == ["interrupted", "whole"], done.stdout + done.stderr


def test_every_verb_imports_polars_whole() -> None:
    """A notebook's Stop 0.1 s into the first sercap.train left polars half-initialised
    ("module 'polars' has no attribute 'Series'") for the rest of the session: a verb
    imports it whole first, holding a Ctrl-C until the import is done."""
    script = textwrap.dedent(
        """
        import sys
        import sercap
        import sercap._interrupt as interrupt
        asked = []
        whole = interrupt.import_whole
        interrupt.import_whole = lambda name: asked.append(name) or whole(name)
        wh = sercap.connect(":memory:")
        before = "polars" in sys.modules
        sercap.runs(wh)
        print(before, asked[:1])
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parents[1],
    )
    assert done.stdout.split() == ["False", "['polars']"], done.stdout + done.stderr
