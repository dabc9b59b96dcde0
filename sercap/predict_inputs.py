"""A final model and the input it reads from one file.

:class:`FinalModel` is a run's model trained on all of its data (see
:mod:`sercap.prediction`), with what it needs to turn audio into its inputs: the stored
feature-set definition and its columns. :func:`model_input` is the one hook that turns a
file's waveform and words into that input; :mod:`sercap.predict_batch` computes the
functionals of many files at once and shares them between an ensemble's members.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sercap.errors import SercapError
from sercap.modality import AUDIO, FUSED, TEXT, input_modality


@dataclass
class FinalModel:
    """A trained model plus what it needs to turn audio into its inputs."""

    model: Any
    classes: list[str]
    input_kind: str
    feature_set: dict  # name, kind, params of the stored definition
    columns: list[str]
    target: str | None = None  # a regressor of this rating (no classes) when set
    #: (2, columns) min and max of each training column (NaN where it never had a value),
    #: for a model on functionals: what :func:`outside_training_range` compares a file with
    training_range: np.ndarray | None = None

    @property
    def modality(self) -> str:
        """ "audio", "text" or "fused": what :func:`model_input` needs for each file."""
        return input_modality(self.input_kind)


def model_input(final: FinalModel, y: np.ndarray | None, text: str | None = None) -> Any:
    """Turn one file (its waveform at the feature set's rate, its transcript) into the
    model's input: a batch of one for a text or fused model, one row otherwise.

    An audio model ignores ``text``; a text model ignores ``y`` (it may be None); a fused
    model gets its audio features and the words from :func:`fused_input`.
    """
    modality = final.modality
    if modality != AUDIO and text is None:
        raise SercapError(f"a {final.input_kind} model needs the file's transcript")
    if modality == TEXT:
        return np.array([text], dtype=object)
    x = _audio_input(final, y)
    return fused_input(final, x, text) if modality == FUSED else x


def fused_input(final: FinalModel, features: np.ndarray, text: str) -> Any:
    """A fused model's batch of one: ``[(functionals row, words)]``, the ``(features, text)``
    pairs the fusion models read (:mod:`sercap.models.fusion`), unless its class defines
    ``prediction_input(features, texts)`` to build its own from the (1, d) row."""
    build = getattr(type(final.model), "prediction_input", None)
    if build is not None:
        return build(features, np.array([text], dtype=object))
    return [(np.asarray(features, dtype=np.float32).reshape(-1), text)]


def _audio_input(final: FinalModel, y: np.ndarray) -> Any:
    """One waveform's audio input: a functionals row, a frame sequence or an image."""
    fs = final.feature_set
    params = fs["params"]
    if final.input_kind == "image":
        from sercap.features.images import spectrogram_image

        return spectrogram_image(y, params)
    if fs["kind"] == "opensmile":
        from sercap.features.opensmile import column_names, functionals

        row = dict(
            zip(column_names(params), np.asarray(functionals(y, params)).ravel(), strict=True)
        )
        return np.array([[row[c] for c in final.columns]], dtype=np.float32)
    from sercap.features.framing import frame_seconds
    from sercap.features.functionals import compute_functionals, frames_table
    from sercap.features.lld import compute_frames

    frames = compute_frames(y, params)
    if final.input_kind == "sequence":
        return np.stack([frames[c] for c in final.columns], axis=1).astype(np.float32)
    table = compute_functionals(frames_table(["x"], [frames]), frame_seconds(params)[0])
    return np.array([[table.column(c)[0].as_py() for c in final.columns]], dtype=np.float64).astype(
        np.float32
    )
