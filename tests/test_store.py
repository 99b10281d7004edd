import json

import pytest

from models_store import IntegrityError, NotFoundError, Store
from models_store.__main__ import main as store_cli
from tests.manifests import manifest_fields


@pytest.fixture
def files(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    out = {}
    for role in ("psf", "prior", "decoder", "encoder"):
        (src / f"{role}.onnx").write_bytes(role.encode() * 10)
        out[f"{role}.onnx"] = src / f"{role}.onnx"
    return out


def test_publish_versions_aliases_and_verify(tmp_path, files):
    store = Store(tmp_path / "store")
    m1 = store.publish("cooke", files, manifest_fields())
    m2 = store.publish("cooke", files, manifest_fields())
    assert (m1.version, m2.version) == (1, 2)
    assert store.versions("cooke") == [1, 2]
    assert store.resolve("cooke") == 2 and store.resolve("cooke", "latest") == 2
    store.set_alias("cooke", "prod", 1)
    assert store.resolve("cooke", "prod") == 1 and store.resolve("cooke", "1") == 1
    assert store.manifest("cooke", "prod").version == 1
    assert set(store.manifest("cooke").files) == set(files)
    assert store.verify() == {"cooke@1": "ok", "cooke@2": "ok"}
    assert not list((tmp_path / "store" / "cooke").glob(".publish-*")), "staging folders must not remain"


def test_tampered_file_is_detected(tmp_path, files):
    store = Store(tmp_path / "store")
    store.publish("cooke", files, manifest_fields())
    (store.version_dir("cooke", 1) / "psf.onnx").write_bytes(b"changed")
    with pytest.raises(IntegrityError, match="psf.onnx has sha256"):
        store.manifest("cooke", 1)
    assert "sha256" in store.verify()["cooke@1"]
    assert store_cli(["--store", str(store.root), "verify"]) == 1


def test_invalid_manifest_publishes_nothing(tmp_path, files):
    store = Store(tmp_path / "store")
    bad = manifest_fields()
    bad["kernel_size"] = 1
    with pytest.raises(IntegrityError, match="kernel_size"):
        store.publish("cooke", files, bad)
    assert store.versions("cooke") == [] and store.models() == []
    assert not list((tmp_path / "store" / "cooke").glob(".publish-*"))


def test_unknown_names_and_escaping_paths(tmp_path, files):
    store = Store(tmp_path / "store")
    store.publish("cooke", files, manifest_fields())
    with pytest.raises(NotFoundError, match="models: cooke"):
        store.resolve("other")
    with pytest.raises(NotFoundError, match="no version 9"):
        store.resolve("cooke", 9)
    with pytest.raises(NotFoundError, match="no alias 'prod'"):
        store.resolve("cooke", "prod")
    for bad in ("../x", "a/b", "..", ""):
        with pytest.raises(ValueError, match="not allowed"):
            store.resolve(bad)
    with pytest.raises(ValueError, match="not allowed"):
        store.publish("cooke", {"../evil.onnx": files["psf.onnx"]}, manifest_fields())


def test_cli_list_and_show(tmp_path, files, capsys):
    store = Store(tmp_path / "store")
    store.publish("cooke", files, manifest_fields())
    assert store_cli(["--store", str(store.root), "list"]) == 0
    assert "cooke: versions [1]" in capsys.readouterr().out
    assert store_cli(["--store", str(store.root), "show", "cooke@1"]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == 1
    assert store_cli(["--store", str(store.root), "show", "nope"]) == 2
    assert "not in the store" in capsys.readouterr().err
