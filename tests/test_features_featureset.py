"""Feature sets as data: hashing, validation, the built-ins, and what the warehouse shows."""

import copy
import json

import pytest

from sercap.errors import SercapError
from sercap.features.featureset import builtin_names, get_feature_set, make_feature_set
from sercap.features.stored import describe_feature_set, feature_set_table, register


def test_builtins_and_their_kinds() -> None:
    assert builtin_names("lld") == ["default", "basic", "tracked", "voice_acf", "pyin", "chroma"]
    assert builtin_names("image") == ["mel"]
    assert set(builtin_names("opensmile")) == {"compare2016", "egemaps02"}
    fs = get_feature_set("default")
    assert fs.sample_rate == 16000 and fs.hop_s == pytest.approx(0.01)
    assert {"numpy", "scipy", "sercap_lld", "functionals_sql"} <= set(fs.versions)
    # the default descriptors do not use librosa, so its version is not in their hash;
    # the sets that call it (pyin, chroma) and the images name it
    assert "librosa" not in fs.versions
    assert "librosa" in get_feature_set("pyin").versions
    assert "librosa" in get_feature_set("chroma").versions
    assert "librosa" in get_feature_set("mel").versions


def test_hash_is_stable_and_covers_every_parameter() -> None:
    a, b = get_feature_set("default"), get_feature_set("default")
    assert a.hash == b.hash and len(a.hash) == 16
    other = a.with_params(name="other")
    assert other.hash != a.hash
    assert other.with_params(hop_ms=5.0).hash != other.hash
    groups = json.loads(json.dumps(a.params["groups"]))
    groups["logmel"]["n_mels"] = 40
    assert other.with_params(groups=groups).hash != other.hash
    assert get_feature_set("pyin").hash != a.hash


def test_the_versions_are_part_of_the_hash(monkeypatch) -> None:
    from sercap.features import versions

    before = get_feature_set("default").hash
    monkeypatch.setattr(versions, "LLD_VERSION", versions.LLD_VERSION + 1)
    assert get_feature_set("default").hash != before


def test_bad_definitions_are_refused_in_one_line() -> None:
    with pytest.raises(SercapError, match="unknown feature set 'nope'; choose one of: default"):
        get_feature_set("nope")
    with pytest.raises(SercapError, match="choose one of: mel"):
        get_feature_set("default", kind="image")
    # an unknown kind listed no choice at all ("choose one of: ")
    with pytest.raises(SercapError, match="^unknown kind 'zz'; choose one of: image, lld, open"):
        get_feature_set("default", kind="zz")
    params = dict(get_feature_set("default").params)
    with pytest.raises(SercapError, match="hop_ms must be a positive number"):
        make_feature_set("x", "lld", {**params, "hop_ms": 0})
    with pytest.raises(SercapError, match="kind must be one of"):
        make_feature_set("x", "mystery", params)
    with pytest.raises(SercapError, match="pitch group is required"):
        make_feature_set("x", "lld", {**params, "groups": {"mfcc": {}}})
    # fmin 50 Hz was taken and hashed as 50, then cut at the 62.7 Hz the 512-point
    # autocorrelation reaches: 55 Hz vowels read unvoiced
    low = {**params, "groups": {**params["groups"]}}
    low["groups"]["pitch"] = {**params["groups"]["pitch"], "fmin": 50.0}
    with pytest.raises(SercapError, match=r"pitch range 50-450 Hz; it must lie within 62\.7-"):
        make_feature_set("x", "lld", low)
    longer = {**low, "window_ms": 50.0, "n_fft": 1024}  # its lags reach 31.3 Hz
    assert make_feature_set("x", "lld", longer).params["groups"]["pitch"]["fmin"] == 50.0


def test_the_hash_names_the_libraries_that_compute_the_numbers() -> None:
    versions = get_feature_set("default").versions
    assert {"numpy", "scipy", "numba", "duckdb", "sercap_lld", "functionals_sql"} <= set(versions)


def test_register_is_idempotent_and_listed(wh) -> None:
    fs = get_feature_set("default")
    register(wh, fs)
    register(wh, fs)
    assert wh.scalar("SELECT count(*) FROM feature_sets WHERE hash = ?", [fs.hash]) == 1
    custom = make_feature_set("mine", "lld", dict(fs.params))
    register(wh, custom)
    table = feature_set_table(wh)
    names = ["default", "basic", "tracked", "voice_acf", "pyin", "chroma"]
    assert table["name"].to_list()[:6] == names
    row = table.filter(name="mine").row(0, named=True)
    assert row["hash"] == custom.hash and row["stored"] == 0
    assert "not built in" in row["description"]


def test_a_variant_needs_a_name_of_its_own_and_parameters_the_set_has(wh) -> None:
    fs = get_feature_set("default")
    # under the built-in's name a variant became what "default" means to train and the
    # views, while extract went on computing the built-in
    with pytest.raises(SercapError, match=r"^feature set 'default' is a built-in set and its "
                       r"hop_ms differ; give the variant a name of its own"):  # fmt: skip
        fs.with_params(hop_ms=20.0)
    assert fs.with_params().hash == fs.hash  # the built-in itself is fine
    impostor = make_feature_set("default", "lld", {**fs.params, "hop_ms": 20.0})
    with pytest.raises(SercapError, match="'default' is a built-in set"):
        register(wh, impostor)
    assert wh.scalar("SELECT count(*) FROM feature_sets") == 0
    # an unknown key changed the hash and nothing else
    with pytest.raises(SercapError, match=r"^feature set 'default' has no parameter 'hopms'; "
                       r"its parameters: deltas, groups, hop_ms, n_fft"):  # fmt: skip
        fs.with_params(name="hop5", hopms=5)


def test_a_set_defined_in_code_is_described_from_its_stored_definition(wh) -> None:
    custom = get_feature_set("default").with_params(name="hop20", hop_ms=20.0)
    with pytest.raises(SercapError, match="unknown feature set 'hop20'"):
        describe_feature_set(wh, "hop20")
    register(wh, custom)
    text = describe_feature_set(wh, "hop20")
    assert text.startswith(f"hop20 (lld), hash {custom.hash}\n  defined in code, not built in")
    assert "  hop_ms: 20.0" in text and "per-utterance columns: 2853" in text


def test_describe_shows_parameters_columns_and_storage(wh) -> None:
    text = describe_feature_set(wh, "default")
    assert get_feature_set("default").hash in text
    assert "per-frame descriptors: 158" in text
    assert "per-utterance columns: 2853" in text
    assert "stored: 0 utterances" in text
    assert "pitch: " in text and '"method": "acf"' in text
    assert "other versions stored" not in text


def test_describe_names_other_stored_versions_of_the_set(wh) -> None:
    """After an upgrade, `features show default` said "stored: 0 utterances" while info
    listed the older version with every utterance, which train went on reading."""
    from tests.helpers import add_corpus, add_features

    add_features(wh, add_corpus(wh, n_speakers=2, per_class=2), digest="0ldversion")
    text = describe_feature_set(wh, "default")
    assert "stored: 0 utterances" in text
    assert text.splitlines()[-1].startswith(
        "other versions stored: 0ldversion (12 utterances): computed by another sercap"
    )


def test_a_set_of_the_other_kind_says_what_it_is() -> None:
    """`images --image-set default` said "unknown feature set 'default'; choose one of: mel"."""
    with pytest.raises(SercapError, match="'default' is a feature set, not an image set; choose"):
        get_feature_set("default", "image")
    with pytest.raises(SercapError, match="'mel' is an image set, not a feature set"):
        get_feature_set("mel", "lld")
    with pytest.raises(SercapError, match="unknown image set 'nope'; choose one of: mel"):
        get_feature_set("nope", "image")


def test_a_review_of_code_defined_sets(wh) -> None:
    """Four things a user met with a set defined in code: the refusal of a built-in's name
    suggested 'default-mine', itself not a valid name; an image set's description named
    a features_NAME view that does not exist; sercap.images extracted descriptors of an
    lld set given as an object; and the hint to finish a partly stored set named commands
    that do not know it."""
    import sercap
    from sercap.errors import BadParameterError
    from sercap.features.featureset import store_step
    from sercap.names import check_name

    with pytest.raises(SercapError, match=r"name='default_mine'") as caught:
        get_feature_set("default").with_params(hop_ms=20.0)
    check_name(str(caught.value).split("name='")[1].split("'")[0])  # (a valid name)
    mel32 = get_feature_set("mel").with_params(name="mel32", n_mels=32)
    register(wh, mel32)
    assert "(view images_mel32)" in describe_feature_set(wh, "mel32")
    lld = get_feature_set("default").with_params(name="bad", hop_ms=20.0)
    with pytest.raises(BadParameterError, match="is of kind 'lld', not 'image'"):
        sercap.images(wh, lld)
    assert "sercap.extract(wh, fs, corpus='emodb')" in store_step("hop20", "lld", "emodb")
    assert "sercap extract" not in store_step("hop20", "lld", "emodb")


def test_extracting_an_earlier_definition_again_makes_it_current(wh) -> None:
    """Going back to an earlier definition of a name did nothing: the newer one stayed
    current, so neither train nor predict could reach the earlier version's features."""
    from sercap.data import feature_set_hash

    v1 = get_feature_set("default").with_params(name="hop20", hop_ms=20.0)
    v2 = v1.with_params(window_ms=40.0, n_fft=1024)
    register(wh, v1)
    register(wh, v2)
    assert feature_set_hash(wh, "hop20") == v2.hash
    register(wh, v1)  # (what extract does first)
    assert feature_set_hash(wh, "hop20") == v1.hash
    before = wh.con.execute("SELECT hash, created_at FROM feature_sets ORDER BY 1").fetchall()
    register(wh, v1)  # already current: nothing written
    assert wh.con.execute("SELECT hash, created_at FROM feature_sets ORDER BY 1").fetchall() == (
        before
    )


def test_a_mistyped_key_inside_a_group_is_refused() -> None:
    """with_params(groups={... "logmel": {"nmels": 40}}) made a new hash whose features were
    the default's (the typo read nothing)."""
    fs = get_feature_set("default")
    groups = json.loads(json.dumps(fs.params["groups"]))
    groups["logmel"] = {**groups["logmel"], "nmels": 40}
    with pytest.raises(SercapError, match="group 'logmel' has no parameter 'nmels'"):
        fs.with_params(name="typo", groups=groups)
    groups["logmel"].pop("nmels")
    groups["logmel"]["n_mels"] = 40
    assert fs.with_params(name="mel40", groups=groups).hash != fs.hash


def test_a_variant_with_a_whole_number_for_a_decimal_parameter_is_the_same_set() -> None:
    """with_params(hop_ms=10) beside the set's 10.0 (or a group's fmin=70 for 70.0) made
    another hash: the same features computed and stored twice, under two versions."""
    base = get_feature_set("default")
    assert (
        base.with_params(name="v", hop_ms=10).hash == base.with_params(name="v", hop_ms=10.0).hash
    )
    groups = copy.deepcopy(dict(base.params["groups"]))
    whole = copy.deepcopy(groups)
    whole["pitch"]["fmin"] = 70
    assert base.with_params(name="v", groups=whole).hash == base.with_params(name="v").hash
    assert base.with_params(name="v", n_fft=512.0).params["n_fft"] == 512
    assert base.with_params(name="v", hop_ms=20).hash != base.with_params(name="v").hash
    edges = copy.deepcopy(groups)  # a list's items too (a review: np.linspace(...).tolist())
    edges["bands"]["edges_hz"] = [float(e) for e in groups["bands"]["edges_hz"]]
    assert base.with_params(name="v", groups=edges).hash == base.with_params(name="v").hash
    import numpy as np

    assert base.with_params(name="v", n_fft=np.int64(512)).hash == base.with_params(name="v").hash
