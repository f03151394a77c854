"""`make demo` (``sxai demo``) runs the main job end to end on bundled data."""

from __future__ import annotations

import json

from surrogate_xai.cli import demo


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
    # ... unless --force: then it starts a fresh audit store, and removes the earlier run's
    # reports (a stale report would name a record that is not in the new store) -- but only
    # the demo's own files.
    (tmp_path / "o" / "notes.txt").write_text("mine\n")
    (tmp_path / "o" / "reports" / "mine.html").write_text("mine\n")
    assert demo.main(["--out", str(tmp_path / "o"), "--rows", "2", "--quiet", "--force"]) == 0

    with sx.AuditStore(f"sqlite:///{tmp_path / 'o' / 'audit.db'}") as store:
        assert len(store) == 2
        ids = {r["record_id"] for r in store.records()}
    reports = sorted((tmp_path / "o" / "reports").glob("decision-*.html"))
    assert len(reports) == 2
    assert all(any(rid in p.read_text() for rid in ids) for p in reports)
    assert (tmp_path / "o" / "notes.txt").read_text() == "mine\n"
    assert (tmp_path / "o" / "reports" / "mine.html").read_text() == "mine\n"


def test_catalogue_covers_every_unprotected_column():
    from surrogate_xai.datasets import load_german_credit

    X, _ = load_german_credit()
    mapped = {f for _, _, f in demo.CATALOGUE}
    assert mapped | set(demo.PROTECTED) == set(X.columns)
    assert not mapped & set(demo.PROTECTED)
