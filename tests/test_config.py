import pytest

from training.config import ConfigError, load_config

CI = "configs/ci.yml"


def test_ci_config_loads_with_defaults_filled():
    cfg = load_config(CI)
    assert cfg.name == "ci"
    assert cfg.data.kernel_size == 16
    assert cfg.export.opset >= 13  # not in the file: comes from the schema's defaults


def test_override_changes_value_and_type():
    cfg = load_config(CI, ["train.steps=7", "conditions.depth.max=50"])
    assert cfg.train.steps == 7
    assert cfg.conditions.depth.max == 50.0


def test_unknown_key_is_named_with_the_allowed_keys():
    with pytest.raises(ConfigError) as err:
        load_config(CI, ["train.stepz=5"])
    msg = str(err.value)
    assert "train.stepz: unknown key" in msg
    assert "steps" in msg  # the allowed keys are listed


def test_wrong_type_names_the_key_and_value():
    with pytest.raises(ConfigError) as err:
        load_config(CI, ["data.spp=lots"])
    assert "data.spp" in str(err.value) and "lots" in str(err.value)


def test_bad_range_is_refused():
    with pytest.raises(ConfigError, match="conditions.depth"):
        load_config(CI, ["conditions.depth.min=200"])


def test_missing_required_key(tmp_path):
    path = tmp_path / "c.yml"
    path.write_text("seed: 1\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "name: required key is missing" in str(err.value)
    assert "lens: required key is missing" in str(err.value)


def test_interpolation_is_resolved(tmp_path):
    path = tmp_path / "c.yml"
    path.write_text("name: interp\nlens: {file: lenses/cooke_triplet.json}\nrun_dir: out/${name}\n")
    assert str(load_config(path).run_dir) == "out/interp"


def test_missing_file_and_bad_override_syntax(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yml")
    with pytest.raises(ConfigError, match="key=value"):
        load_config(CI, ["train.steps"])
