"""`make demo` (``python -m surrogate_xai.demo``) runs the main job end to end on bundled data."""

from __future__ import annotations

import json

from surrogate_xai import demo


def test_demo_module_explains_applicants(tmp_path, capsys):
    result = demo.main(["--out", str(tmp_path / "o"), "--rows", "3", "--quiet"])
    assert result == 0
    out = capsys.readouterr().out
    assert "0 decision flips" in out
    assert "of 3 applicants declined" in out
    assert (tmp_path / "o" / "credit.onnx").stat().st_size > 1000
    lines = (tmp_path / "o" / "results.jsonl").read_text().splitlines()
    assert len(lines) == 3
    assert all(len(json.loads(line)["attributions"]) == 20 for line in lines)
    # a second run into the same folder is refused (its audit store is kept) ...
    assert demo.main(["--out", str(tmp_path / "o"), "--rows", "2", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert "--force" in err
    assert err.count("\n") == 1
    import surrogate_xai as sx

    with sx.AuditStore(f"sqlite:///{tmp_path / 'o' / 'audit.db'}") as store:
        assert len(store) == 3
    # ... unless --force: then it starts a fresh audit store
    assert demo.main(["--out", str(tmp_path / "o"), "--rows", "2", "--quiet", "--force"]) == 0

    with sx.AuditStore(f"sqlite:///{tmp_path / 'o' / 'audit.db'}") as store:
        assert len(store) == 2


def test_catalogue_covers_every_unprotected_column():
    from surrogate_xai.datasets import load_german_credit

    X, _ = load_german_credit()
    mapped = {f for _, _, f in demo.CATALOGUE}
    assert mapped | set(demo.PROTECTED) == set(X.columns)
    assert not mapped & set(demo.PROTECTED)
