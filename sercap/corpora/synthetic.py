"""A synthetic demo corpus in the exact IEMOCAP layout, with emotion carried by prosody.

``generate(DIR)`` writes ``DIR/Session1..N/`` as the real release has them: annotation files
``dialog/EmoEvaluation/<dialog>.txt`` (header, blank-line blocks out of time order, summary
line, ``C-E1:``/``C-F1:`` vote lines, ``A-E2:`` lines with irregular spacing; per-evaluator
files in ``Categorical/`` and ``Attribute/`` that readers must ignore) and per-utterance
16 kHz mono wavs ``sentences/wav/<dialog>/<utt>.wav``.

The audio is a small source-filter vocoder: a glottal pulse train at a time-varying F0
contour plus aspiration noise, shaped by a syllable-rate envelope and speaker-dependent
formants. EMOTION sets pitch level and range, loudness, speaking rate and voice quality
(breathiness, spectral tilt, jitter); SPEAKER sets base pitch, formant scale (timbre) and
habits. Every utterance blends its emotion toward neutral by a random strength and jitters
every parameter, and evaluators disagree, so classes overlap as in real acted speech.
Deterministic for a seed: each utterance draws from its own seeded generator.

Transcriptions ``dialog/transcriptions/<dialog>.txt`` give each turn words that depend on the
acted emotion only partly (:func:`utterance_words`): mostly neutral filler and a vocabulary
shared by all emotions, plus a few emotion-leaning words that are often a confusable
neighbour's; a few unannotated ``XX`` turns sit between them as in the real files.
"""

from __future__ import annotations

import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import istft, lfilter, stft
from tqdm import tqdm

from sercap.errors import SercapError

SAMPLE_RATE = 16000
MIN_DURATION_S = 0.8
MAX_DURATION_S = 3.0
HEADER = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]"
README_MARK = "Synthetic IEMOCAP-layout demo corpus written by sercap"

#: Names written on C- lines for each code.
VOTE_NAMES = {
    "neu": "Neutral",
    "ang": "Anger",
    "sad": "Sadness",
    "hap": "Happiness",
    "exc": "Excited",
    "fru": "Frustration",
    "sur": "Surprise",
    "fea": "Fear",
    "dis": "Disgust",
    "oth": "Other",
}
#: How often each emotion is acted (roughly IEMOCAP's proportions, rare classes kept).
EMOTION_WEIGHTS = {
    "neu": 0.22,
    "fru": 0.15,
    "ang": 0.16,
    "sad": 0.14,
    "exc": 0.12,
    "hap": 0.11,
    "sur": 0.05,
    "fea": 0.03,
    "dis": 0.01,
    "oth": 0.01,
}
#: What an evaluator who does not pick the acted emotion picks instead.
CONFUSIONS = {
    "neu": ("fru", "sad", "hap"),
    "ang": ("fru", "exc", "dis"),
    "sad": ("neu", "fru", "fea"),
    "hap": ("exc", "neu", "sur"),
    "exc": ("hap", "sur", "ang"),
    "fru": ("ang", "neu", "sad"),
    "sur": ("exc", "hap", "fea"),
    "fea": ("sad", "sur", "fru"),
    "dis": ("fru", "ang", "neu"),
    "oth": ("neu", "fru", "hap"),
}


@dataclass(frozen=True)
class Prosody:
    """Acoustic settings of one emotion, relative to the speaker's own voice."""

    f0: float  # pitch level (multiplier of the speaker's base F0)
    range_st: float  # pitch excursion of accents, semitones
    db: float  # loudness, dB relative to neutral
    rate: float  # speaking rate (multiplier of syllables per second)
    breath: float  # aspiration noise share, 0..1
    tilt: float  # one-pole low-pass coefficient of the source: higher is darker
    jitter: float  # cycle-level F0 perturbation (fraction)
    f1: float  # first-formant multiplier (wider jaw opening with arousal)
    valence: float  # mean rating 1..5, for the annotation files
    activation: float
    dominance: float


PROSODY = {
    "neu": Prosody(1.00, 2.5, 0.0, 1.00, 0.20, 0.55, 0.006, 1.00, 3.0, 2.3, 2.7),
    "ang": Prosody(1.20, 4.0, 9.0, 1.12, 0.04, 0.12, 0.014, 1.15, 1.7, 4.0, 4.0),
    "sad": Prosody(0.92, 1.5, -6.0, 0.78, 0.45, 0.75, 0.010, 0.95, 1.9, 1.9, 2.2),
    "hap": Prosody(1.17, 6.5, 2.5, 1.06, 0.28, 0.48, 0.007, 1.03, 4.0, 3.3, 3.1),
    "exc": Prosody(1.27, 7.5, 3.5, 1.15, 0.22, 0.42, 0.008, 1.05, 4.1, 3.9, 3.5),
    "fru": Prosody(1.06, 3.0, 2.0, 0.95, 0.30, 0.45, 0.010, 1.02, 2.0, 3.1, 3.2),
    "sur": Prosody(1.30, 8.0, 2.0, 1.00, 0.25, 0.45, 0.008, 1.05, 3.4, 3.6, 2.8),
    "fea": Prosody(1.25, 3.0, -1.0, 1.15, 0.45, 0.55, 0.025, 1.00, 1.9, 3.4, 2.0),
    "dis": Prosody(0.95, 3.0, 0.0, 0.85, 0.30, 0.60, 0.012, 0.98, 1.8, 2.9, 3.3),
    "oth": Prosody(1.02, 3.0, 0.5, 1.00, 0.25, 0.50, 0.008, 1.00, 2.8, 2.7, 2.8),
}
#: Vowel formants (Hz) of an adult male; speakers scale them.
VOWELS = np.array(
    [
        [730, 1090, 2440, 3400],  # a
        [530, 1840, 2480, 3500],  # e
        [270, 2290, 3010, 3700],  # i
        [570, 840, 2410, 3300],  # o
        [300, 870, 2240, 3300],  # u
        [660, 1720, 2410, 3400],  # ae
    ],
    dtype=float,
)
BANDWIDTHS = np.array([80.0, 100.0, 140.0, 200.0])


@dataclass(frozen=True)
class Speaker:
    """One actor: session, gender and the voice traits that make them recognisable."""

    session: int
    gender: str
    f0: float
    formant_scale: float
    breath: float
    tilt: float
    rate: float
    db: float


@dataclass
class Utterance:
    """One turn: its id, dialog, acted emotion, time in the dialog and annotation."""

    utt_id: str
    dialog: str
    speaker: Speaker
    emotion: str
    seed: tuple[int, ...]
    duration_s: float = 0.0
    label: str = "xxx"
    vad: tuple[float, float, float] = (3.0, 3.0, 3.0)
    evaluator_lines: list[str] = field(default_factory=list)


@dataclass
class SynthResult:
    """What was written: where, and the majority label of every utterance."""

    root: Path
    labels: dict[str, str] = field(default_factory=dict)
    dialogs: int = 0
    seconds: float = 0.0

    @property
    def per_label(self) -> Counter:
        return Counter(self.labels.values())


def generate(
    out_dir: str | Path,
    sessions: int = 5,
    per_speaker: int = 36,
    seed: int = 0,
    *,
    progress: bool | None = False,
) -> SynthResult:
    """Write a synthetic IEMOCAP-layout corpus to ``out_dir`` (Session1..N inside it)."""
    if not 1 <= sessions <= 9 or per_speaker < 1:
        raise ValueError("sessions must be 1..9 and per_speaker at least 1")
    from sercap._newfiles import NewFiles

    root = Path(out_dir)
    _clear_previous(root)
    made = NewFiles(root)  # Ctrl-C half-way left files that the rerun then refused
    try:
        return _write_corpus(root, sessions, per_speaker, seed, progress)
    except OSError as exc:  # the annotations on a full disk: a write error names no file
        made.remove()
        where = exc.filename or root
        raise SercapError(
            f"{where}: cannot write the corpus ({exc.strerror or exc}); nothing of it is kept"
        ) from exc
    except BaseException:
        made.remove()
        raise


def _write_wav(path: Path, audio: np.ndarray) -> None:
    """16-bit PCM WAV at :data:`SAMPLE_RATE`, encoded in memory and written by Python: on
    a full disk libsndfile says only "System error." (and not as an OSError); Python's
    write names the errno, and this the file."""
    import io

    encoded = io.BytesIO()
    sf.write(encoded, audio, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    try:
        path.write_bytes(encoded.getvalue())
    except OSError as exc:
        raise SercapError(f"{path}: cannot write ({exc.strerror or exc})") from exc


def _write_corpus(
    root: Path, sessions: int, per_speaker: int, seed: int, progress: bool | None
) -> SynthResult:
    utterances = plan_corpus(sessions, per_speaker, seed)
    result = SynthResult(root=root)
    # The mark comes first (a kill -9 half-way leaves a folder the rerun recognises and
    # replaces) and says "incomplete" until the last file is written.
    root.mkdir(parents=True, exist_ok=True)
    (root / "README.txt").write_text(
        f"{README_MARK} (seed {seed}): incomplete, stopped while being written; run "
        "`sercap corpus synth` into this folder again.\n"
    )
    bar = tqdm(
        utterances,
        desc="synthesising",
        unit="utt",
        leave=False,
        disable=None if progress is None else not progress,
    )
    for utt in bar:
        rng = np.random.default_rng(utt.seed)
        audio = synthesize(utt.speaker, utt.emotion, rng)
        utt.duration_s = audio.size / SAMPLE_RATE
        annotate(utt, rng)
        wav = _session_dir(root, utt.speaker.session) / "sentences" / "wav" / utt.dialog
        wav.mkdir(parents=True, exist_ok=True)
        _write_wav(wav / f"{utt.utt_id}.wav", audio)
        result.labels[utt.utt_id] = utt.label
        result.seconds += utt.duration_s
    dialogs = _by_dialog(utterances)
    for number, (dialog, turns) in enumerate(dialogs.items()):
        rng = np.random.default_rng([seed, 1000 + number])
        times = _write_annotation(root, dialog, turns, rng)
        # words draw from their own stream, so audio and annotations stay as they were
        words_rng = np.random.default_rng([seed, 2000 + number])
        _write_transcription(root, dialog, turns, times, words_rng)
    result.dialogs = len(dialogs)
    (root / "README.txt").write_text(
        f"{README_MARK} (seed {seed}): "
        f"{sessions} sessions, {len(utterances)} utterances. Not real speech.\n"
    )
    return result


def _clear_previous(root: Path) -> None:
    """Refuse a folder holding anything else; replace an earlier synthetic corpus whole, so
    no stale dialog of a bigger earlier run is left to be ingested."""
    if not root.is_dir() or not any(root.iterdir()):
        return
    readme = root / "README.txt"
    if not (readme.is_file() and readme.read_text(errors="replace").startswith(README_MARK)):
        raise SercapError(f"{root}: folder is not empty; give a new folder for the corpus")
    for session in root.glob("Session*"):
        shutil.rmtree(session)


# ---------------------------------------------------------------------------- planning
def plan_corpus(sessions: int, per_speaker: int, seed: int) -> list[Utterance]:
    """Who says what in which dialog, with ids like the real ones; no audio yet."""
    plan: list[Utterance] = []
    for session in range(1, sessions + 1):
        rng = np.random.default_rng([seed, session])
        speakers = {g: make_speaker(session, g, rng) for g in "FM"}
        dialogs = session_dialogs(session)
        themes = {d: rng.choice(list(EMOTION_WEIGHTS)[:6]) for d in dialogs}
        counters: Counter = Counter()
        for index in range(per_speaker * 2):
            gender = "FM"[index % 2]
            dialog = dialogs[(index // 2) % len(dialogs)]
            emotion = _pick_emotion(themes[dialog], rng)
            turn = counters[(dialog, gender)]
            counters[(dialog, gender)] += 1
            plan.append(
                Utterance(
                    utt_id=f"{dialog}_{gender}{turn:03d}",
                    dialog=dialog,
                    speaker=speakers[gender],
                    emotion=emotion,
                    seed=(seed, session, index),
                )
            )
    return plan


def session_dialogs(session: int) -> list[str]:
    """Dialog names of a session: improvisations (incl. 05a/05b) and scripts (incl. _1b)."""
    ses = f"Ses{session:02d}"
    return [
        f"{ses}F_impro01",
        f"{ses}M_impro02",
        f"{ses}M_impro05a",
        f"{ses}M_impro05b",
        f"{ses}F_script01_1",
        f"{ses}M_script01_1b",
        f"{ses}F_script02_2",
    ]


def make_speaker(session: int, gender: str, rng: np.random.Generator) -> Speaker:
    """A voice: base pitch and formant scale by gender, plus personal habits."""
    female = gender == "F"
    return Speaker(
        session=session,
        gender=gender,
        f0=float(rng.uniform(180, 235) if female else rng.uniform(95, 130)),
        formant_scale=float(rng.uniform(1.10, 1.22) if female else rng.uniform(0.94, 1.04)),
        breath=float(rng.normal(0.0, 0.06)),
        tilt=float(rng.normal(0.0, 0.06)),
        rate=float(rng.uniform(0.9, 1.1)),
        db=float(rng.normal(0.0, 2.0)),
    )


def _pick_emotion(theme: str, rng: np.random.Generator) -> str:
    """Mostly the corpus-wide mix, tilted toward the dialog's theme."""
    codes = list(EMOTION_WEIGHTS)
    weights = np.array([EMOTION_WEIGHTS[c] for c in codes])
    weights = 0.7 * weights + 0.3 * (np.array(codes) == theme)
    return str(rng.choice(codes, p=weights / weights.sum()))


# ---------------------------------------------------------------------------- audio
def synthesize(speaker: Speaker, emotion: str, rng: np.random.Generator) -> np.ndarray:
    """One utterance as float32 at 16 kHz: source → formants → envelope → loudness."""
    p = _utterance_prosody(speaker, emotion, rng)
    duration = float(rng.uniform(MIN_DURATION_S, MAX_DURATION_S))
    n = int(duration * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    syllables = _syllables(duration, 4.6 * p["rate"], rng)
    index = np.clip(np.searchsorted(syllables["bounds"], t, side="right") - 1, 0, None)
    position = (t - syllables["bounds"][index]) / syllables["lengths"][index]
    f0 = _f0_contour(t, duration, syllables, index, p, emotion, rng)
    voiced_env = _voiced_envelope(position, syllables["stress"][index])
    source = _glottal_source(f0, p, rng)
    voiced = _formant_filter(source, index, syllables["vowel"], speaker, p) * voiced_env
    frication = _frication(position, syllables["fricative"][index], rng)
    audio = voiced + frication * np.sqrt(np.mean(voiced**2) + 1e-12)
    return _set_loudness(audio, voiced_env, p["db"], rng)


def _utterance_prosody(speaker: Speaker, emotion: str, rng: np.random.Generator) -> dict:
    """Emotion blended toward neutral by a random strength, jittered, on this speaker."""
    target, neutral = PROSODY[emotion], PROSODY["neu"]
    strength = rng.uniform(0.6, 1.2)

    def blend(name: str) -> float:
        a, b = getattr(neutral, name), getattr(target, name)
        return a + strength * (b - a)

    return {
        "f0": speaker.f0 * blend("f0") * np.exp(rng.normal(0, 0.05)),
        "range_st": blend("range_st") * np.exp(rng.normal(0, 0.3)),
        "db": blend("db") + speaker.db + rng.normal(0, 1.5),
        "rate": blend("rate") * speaker.rate * np.exp(rng.normal(0, 0.1)),
        "breath": float(np.clip(blend("breath") + speaker.breath + rng.normal(0, 0.08), 0, 0.9)),
        "tilt": float(np.clip(blend("tilt") + speaker.tilt + rng.normal(0, 0.08), 0.05, 0.9)),
        "jitter": blend("jitter") * np.exp(rng.normal(0, 0.3)),
        "f1": blend("f1") * np.exp(rng.normal(0, 0.03)),
        "rising": emotion == "sur" or rng.random() < 0.1,
    }


def _syllables(duration: float, rate: float, rng: np.random.Generator) -> dict:
    """Syllable boundaries (uneven lengths), stress, vowel and a fricative coda or not."""
    count = max(2, int(round(duration * rate)))
    lengths = rng.gamma(8.0, size=count)
    lengths *= duration / lengths.sum()
    bounds = np.concatenate([[0.0], np.cumsum(lengths)[:-1]])
    return {
        "bounds": bounds,
        "lengths": lengths,
        "centres": bounds + lengths / 2,
        "stress": rng.uniform(0.55, 1.0, count) * np.where(rng.random(count) < 0.35, 1.0, 0.75),
        "accent": rng.random(count) < 0.35,
        "vowel": rng.integers(0, len(VOWELS), count),
        "fricative": rng.random(count) < 0.4,
    }


def _f0_contour(
    t: np.ndarray,
    duration: float,
    syllables: dict,
    index: np.ndarray,
    p: dict,
    emotion: str,
    rng: np.random.Generator,
) -> np.ndarray:
    """F0 in Hz: accents on stressed syllables, declination, final rise, jitter and drift."""
    accents = np.where(syllables["accent"], rng.uniform(0.5, 1.0, index.max() + 1), 0.0)
    targets = p["range_st"] * (accents - 0.3)
    semitones = np.interp(t, syllables["centres"], targets)
    semitones -= 0.35 * p["range_st"] * t / duration  # declination
    if p["rising"]:
        semitones += p["range_st"] * 1.2 * (t / duration) ** 3
    drift = np.interp(t, np.linspace(0, duration, 8), rng.normal(0, 0.6, 8))
    grid = np.arange(0.0, duration + 0.01, 0.005)  # cycle-scale perturbation, 200 Hz
    cycles = np.interp(t, grid, rng.normal(0, 1, grid.size))
    f0 = p["f0"] * 2.0 ** ((semitones + drift) / 12.0) * (1.0 + p["jitter"] * cycles)
    return np.clip(f0, 50.0, 600.0)


def _glottal_source(f0: np.ndarray, p: dict, rng: np.random.Generator) -> np.ndarray:
    """Rosenberg pulses (derivative of glottal flow), tilted, plus pulse-synchronous noise."""
    phase = np.cumsum(f0) / SAMPLE_RATE
    frac = phase % 1.0
    open_q = 0.45 + 0.35 * p["breath"]
    rise = 0.6 * open_q
    flow = np.where(
        frac < rise,
        0.5 * (1 - np.cos(np.pi * frac / rise)),
        np.where(frac < open_q, np.cos(0.5 * np.pi * (frac - rise) / (open_q - rise)), 0.0),
    )
    pulses = np.diff(flow, prepend=0.0)
    pulses /= np.sqrt(np.mean(pulses**2)) + 1e-12
    a = p["tilt"]
    tilted = lfilter([1 - a], [1, -a], pulses)
    tilted /= np.sqrt(np.mean(tilted**2)) + 1e-12
    noise = np.diff(rng.normal(0, 1, f0.size + 1)) * (0.4 + flow)
    noise /= np.sqrt(np.mean(noise**2)) + 1e-12
    return (1 - p["breath"]) * tilted + p["breath"] * 1.2 * noise


def _formant_filter(
    source: np.ndarray, index: np.ndarray, vowels: np.ndarray, speaker: Speaker, p: dict
) -> np.ndarray:
    """Time-varying formants applied in the STFT domain (one vowel per syllable, smoothed)."""
    hop, size = 256, 512
    freqs, _, spectrum = stft(source, fs=SAMPLE_RATE, nperseg=size, noverlap=size - hop)
    frames = spectrum.shape[1]
    frame_syllable = index[np.clip(np.arange(frames) * hop, 0, index.size - 1)]
    formants = VOWELS[vowels[frame_syllable]] * speaker.formant_scale
    formants[:, 0] *= p["f1"]
    kernel = np.ones(3) / 3  # coarticulation: glide between vowels over ~50 ms
    padded = np.pad(formants, ((1, 1), (0, 0)), mode="edge")
    formants = np.stack([np.convolve(padded[:, k], kernel, "valid") for k in range(4)])
    fk = formants.astype(np.float32)[:, None, :] ** 2  # (formant, 1, frame)
    bk = (BANDWIDTHS * (1 + p["breath"])).astype(np.float32)[:, None, None]
    f = freqs.astype(np.float32)[None, :, None]
    gain = np.prod(fk / np.sqrt((fk - f**2) ** 2 + (bk * f) ** 2), axis=0)
    _, shaped = istft(spectrum * gain, fs=SAMPLE_RATE, nperseg=size, noverlap=size - hop)
    out = np.zeros(source.size)
    out[: min(source.size, shaped.size)] = shaped[: source.size]
    return out / (np.sqrt(np.mean(out**2)) + 1e-12)


def _voiced_envelope(position: np.ndarray, stress: np.ndarray) -> np.ndarray:
    """Each syllable: a voiced nucleus rising and falling, then a short unvoiced gap."""
    nucleus = np.clip(position / 0.8, 0.0, 1.0)
    return np.where(position < 0.8, np.sin(np.pi * nucleus) ** 0.6, 0.0) * stress


def _frication(position: np.ndarray, fricative: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """High-passed noise bursts in the gaps of syllables that end in a fricative."""
    burst = np.where((position >= 0.8) & fricative, np.sin(np.pi * (position - 0.8) / 0.2), 0.0)
    noise = lfilter([1, -0.95], [1], rng.normal(0, 1, position.size))
    return 0.25 * burst * noise / (np.sqrt(np.mean(noise**2)) + 1e-12)


def _set_loudness(
    audio: np.ndarray, envelope: np.ndarray, db: float, rng: np.random.Generator
) -> np.ndarray:
    """Scale speech to its loudness, add a room-noise floor, soft-limit peaks."""
    active = envelope > 0.3
    rms = np.sqrt(np.mean(audio[active] ** 2)) if active.any() else 1.0
    speech = audio * (0.05 * 10 ** (db / 20) / (rms + 1e-12))
    floor = 10 ** (rng.uniform(-62, -52) / 20)
    mixed = speech + floor * rng.normal(0, 1, audio.size)
    return (0.98 * np.tanh(mixed / 0.98)).astype(np.float32)


# ---------------------------------------------------------------------------- annotation
def annotate(utt: Utterance, rng: np.random.Generator) -> None:
    """Evaluators' votes and ratings: sets the majority label, mean V/A/D and C-/A- lines."""
    evaluators = sorted(rng.choice(6, size=3, replace=False) + 1)
    votes = {e: _votes(utt.emotion, rng) for e in evaluators}
    utt.label = _majority(votes)
    lines = [
        f"C-E{e}:\t{' '.join(VOTE_NAMES[c] + ';' for c in codes)}\t({_comment(rng)})"
        for e, codes in votes.items()
    ]
    if rng.random() < 0.35:  # the actor's own view, often different
        lines.append(f"C-{utt.speaker.gender}1:\t{VOTE_NAMES[_votes(utt.emotion, rng)[0]]};\t()")
    ratings = []
    for e in sorted(rng.choice(6, size=2, replace=False) + 1):
        ratings.append(_ratings(utt.emotion, rng))
        lines.append(f"A-E{e}:\t{_attribute_text(ratings[-1], rng)}\t({_comment(rng)})")
    if rng.random() < 0.35:
        own = _attribute_text(_ratings(utt.emotion, rng), rng)
        lines.append(f"A-{utt.speaker.gender}1:\t{own}\t()")
    mean = np.mean(ratings, axis=0)
    utt.vad = (float(mean[0]), float(mean[1]), float(mean[2]))
    utt.evaluator_lines = lines


def _votes(emotion: str, rng: np.random.Generator) -> list[str]:
    """One evaluator's labels: usually the acted emotion, sometimes a neighbour, maybe two."""
    first = emotion if rng.random() < 0.68 else str(rng.choice(CONFUSIONS[emotion]))
    if rng.random() < 0.15:
        second = str(rng.choice([c for c in CONFUSIONS[emotion] if c != first]))
        return [first, second]
    return [first]


def _majority(votes: dict[int, list[str]]) -> str:
    """The label more than half the evaluators chose (one that wins alone), else xxx."""
    counts = Counter(code for codes in votes.values() for code in codes).most_common()
    best, n = counts[0]
    tied = len(counts) > 1 and counts[1][1] == n
    return best if n * 2 > len(votes) and not tied else "xxx"


def _ratings(emotion: str, rng: np.random.Generator) -> np.ndarray:
    p = PROSODY[emotion]
    centre = np.array([p.valence, p.activation, p.dominance])
    return np.clip(np.round(centre + rng.normal(0, 0.7, 3)), 1, 5)


def _attribute_text(vad: np.ndarray, rng: np.random.Generator) -> str:
    """``val 3; act 2; dom  2;`` with the real files' irregular spacing."""
    gaps = [" " if rng.random() < 0.75 else "  " for _ in range(3)]
    names = ("val", "act", "dom")
    return " ".join(f"{n}{g}{int(v)};" for n, g, v in zip(names, gaps, vad, strict=True))


def _comment(rng: np.random.Generator) -> str:
    if rng.random() < 0.85:
        return ""
    return str(rng.choice(["slightly annoyed", "sarcastic", "tired", "playful, attitude"]))


# ---------------------------------------------------------------------------- files
def _session_dir(root: Path, session: int) -> Path:
    return root / f"Session{session}"


def _by_dialog(utterances: list[Utterance]) -> dict[str, list[Utterance]]:
    dialogs: dict[str, list[Utterance]] = {}
    for utt in utterances:
        dialogs.setdefault(utt.dialog, []).append(utt)
    return dialogs


def _write_annotation(
    root: Path, dialog: str, turns: list[Utterance], rng: np.random.Generator
) -> dict[str, tuple[float, float]]:
    """One EmoEvaluation file, blocks grouped by speaker (so out of time order), and the
    per-evaluator sub-folder files that readers must skip; returns each turn's (start, end)."""
    blocks = {}
    times: dict[str, tuple[float, float]] = {}
    clock = 0.0
    for utt in turns:  # planned order alternates F/M: that is the dialog's time line
        clock += float(rng.uniform(0.3, 1.5))
        start, clock = clock, clock + utt.duration_s
        times[utt.utt_id] = (start, clock)
        v, a, d = utt.vad
        summary = (
            f"[{start:.4f} - {clock:.4f}]\t{utt.utt_id}\t{utt.label}\t[{v:.4f}, {a:.4f}, {d:.4f}]"
        )
        blocks[utt.utt_id] = "\n".join([summary, *utt.evaluator_lines])
    evaluation_dir = _session_dir(root, turns[0].speaker.session) / "dialog" / "EmoEvaluation"
    for sub in ("Categorical", "Attribute", "Self-evaluation"):
        (evaluation_dir / sub).mkdir(parents=True, exist_ok=True)
    ordered = sorted(blocks)
    text = HEADER + "\n\n" + "".join(blocks[u] + "\n\n" for u in ordered)
    (evaluation_dir / f"{dialog}.txt").write_text(text)
    labels = {u.utt_id: u.label for u in turns}
    categorical = "".join(f"{u} :{VOTE_NAMES.get(labels[u], 'Other')};\t()\n" for u in ordered)
    (evaluation_dir / "Categorical" / f"{dialog}_e1_cat.txt").write_text(categorical)
    (evaluation_dir / "Attribute" / f"{dialog}_e2_atr.txt").write_text(
        "".join(f"{u} :val 3; act 3; dom 3; ()\n" for u in ordered)
    )
    return times


# ---------------------------------------------------------------------------- words
def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


#: Words any turn may say, whatever the emotion (a few non-ASCII on purpose).
FILLER = _words(
    "well i you the it that know just so okay yeah mean think we and to was is a of "
    "in what do this there about um uh like right have not be"
)
TOPICS = _words(
    "car money wedding job airport bag friend today letter house phone dinner mother "
    "weekend flight office café résumé naïve señor"
)
#: Words that lean toward an emotion (also said under its confusable neighbours).
LEANING = {
    "neu": _words("fine sure maybe perhaps probably usual normal alright"),
    "ang": _words("hate damn stupid ridiculous shut unbelievable idiot sick"),
    "sad": _words("miss sorry lost gone alone cry hurts died"),
    "hap": _words("love great nice glad wonderful lovely happy fun"),
    "exc": _words("amazing wow awesome incredible yes finally fantastic party"),
    "fru": _words("again ugh why supposed waiting useless forms line"),
    "sur": _words("really seriously believe suddenly whoa what"),
    "fea": _words("scared afraid dangerous careful nervous"),
    "dis": _words("gross disgusting awful yuck"),
    "oth": _words("whatever"),
}
_ENDINGS = {"ang": "!", "exc": "!", "sur": "?", "fru": "?"}


def utterance_words(emotion: str, rng: np.random.Generator) -> str:
    """One turn's words: 3-12 tokens, each filler (55 %), a shared topic word (25 %) or an
    emotion-leaning word (20 %: the emotion's own 60 % of the time, a confusable neighbour's
    otherwise); the final mark leans toward the emotion too."""
    words = []
    for _ in range(int(rng.integers(3, 13))):
        draw = rng.random()
        if draw < 0.55:
            words.append(str(rng.choice(FILLER)))
        elif draw < 0.80:
            words.append(str(rng.choice(TOPICS)))
        else:
            source = emotion if rng.random() < 0.6 else str(rng.choice(CONFUSIONS[emotion]))
            words.append(str(rng.choice(LEANING[source])))
    mark = _ENDINGS.get(emotion, ".") if rng.random() < 0.5 else str(rng.choice([".", "?", "!"]))
    text = " ".join(words)
    return text[0].upper() + text[1:] + mark


def _write_transcription(
    root: Path,
    dialog: str,
    turns: list[Utterance],
    times: dict[str, tuple[float, float]],
    rng: np.random.Generator,
) -> None:
    """``dialog/transcriptions/<dialog>.txt`` in IEMOCAP's format, in time order:
    ``Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.``, with unannotated ``XX`` turns
    (backchannels in the gaps) that readers skip."""
    lines = []
    unannotated = 0
    for index, utt in enumerate(turns):
        start, end = times[utt.utt_id]
        # a backchannel in the pause before this turn (pauses are at least 0.3 s)
        if index > 0 and (index == 1 or rng.random() < 0.15):
            other = "M" if utt.speaker.gender == "F" else "F"
            xx = f"{dialog}_{other}XX{unannotated}"
            unannotated += 1
            lines.append(f"{xx} [{start - 0.3:08.4f}-{start - 0.05:08.4f}]: Mm-hmm.")
        words = utterance_words(utt.emotion, rng)
        lines.append(f"{utt.utt_id} [{start:08.4f}-{end:08.4f}]: {words}")
    folder = _session_dir(root, turns[0].speaker.session) / "dialog" / "transcriptions"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{dialog}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
