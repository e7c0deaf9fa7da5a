"""Property-style: archives whose member names mix valid members with random hostile ones (absolute,
`..`, duplicates, non-UTF-8, unexpected folders) go through `textbench prepare`. Every case either
reads exactly the expected documents or exits 2 with one `error:` line naming a hostile member;
never a traceback, never an extra document, never output from a refused archive."""

from __future__ import annotations

import json
import random
import shutil
import sys
import warnings
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import edit_params
from pipeline.cli import main
from pipeline.data.members import shown
from test_data_reuters import sgml_doc, sgml_file, sgml_members, write_tar
from test_data_thucnews import BAD_UTF8, break_utf8

CASES = 40
CATS = ["体育", "财经"]


def textbench(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    """Run the real console entry point; (exit status, stderr)."""
    monkeypatch.setattr(sys, "argv", ["textbench", *args])
    with pytest.raises(SystemExit) as e:
        main()
    return e.value.code, capsys.readouterr().err


def prepared_ids(project: Path, name: str) -> list[str]:
    return sorted(
        r
        for s in ("train", "dev", "test")
        for r in pq.read_table(project / f"data/prepared/{name}/{s}.parquet").column("id").to_pylist()
    )


def check(monkeypatch, capsys, project: Path, name: str, hostile: list[str], expected: list[str]) -> None:
    shutil.rmtree(project / "data/prepared", ignore_errors=True)
    code, err = textbench(monkeypatch, capsys, "prepare", "-d", name)
    case = f"hostile={[shown(h) for h in hostile]}"
    assert "Traceback" not in err, case
    if not hostile:
        assert code == 0, (case, err)
        assert prepared_ids(project, name) == sorted(expected), case
        return
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and err.rstrip("\n").endswith(errors[0]), (case, err)
    assert any(f"member {shown(h)}" in errors[0] or f"than {shown(h)}" in errors[0] for h in hostile), (case, err)
    assert not (project / f"data/prepared/{name}").exists(), case


def pick_hostile(rng: random.Random, pool: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    return rng.sample(pool, rng.choice([0, 0, 1, 1, 2, 3]))


@pytest.mark.slow
def test_random_reuters_tarballs(project, monkeypatch, capsys):
    rng = random.Random(20261129)
    docs = [sgml_doc(n, ["earn" if n % 2 else "acq"], "TEST" if n % 4 == 0 else "TRAIN") for n in range(1, 89)]
    extra_docs = sgml_file([sgml_doc(500 + i, ["earn"], title="EXTRA {n}") for i in range(3)])
    (project / "data/raw/reuters").mkdir(parents=True)
    for _ in range(CASES):
        prefix = rng.choice(["", "reuters21578/", "./"])
        valid = sgml_members(docs, prefix=prefix)
        benign = [(prefix + "lewis.dtd", b"<!ELEMENT x>"), (prefix + "README.txt", b"readme"), ("docs/notes.txt", b"x")]

        def sgm() -> str:
            return f"reut2-{rng.randrange(22):03d}.sgm"

        pool = [
            (f"../{rng.choice(['', '../', 'x/'])}{sgm()}", extra_docs),
            (f"/abs/{sgm()}", extra_docs),
            (f"/tmp/{rng.choice(['a', 'lewis.dtd'])}", b"x"),
            (f"{prefix}a/../../{rng.choice(['b.txt', sgm()])}", extra_docs),
            (rng.choice(valid)[0], extra_docs),  # a second copy
            (f"{rng.choice(['other/', 'reuters21578/sub/', 'x/y/'])}{sgm()}", extra_docs),
            (("reuters21578/" if prefix != "reuters21578/" else "") + sgm(), extra_docs),  # another root
            (f"{prefix}notes-\udce9\udcff.txt", b"latin-1 name"),  # not UTF-8
            (f"{prefix}reut2-0\n1.sgm", extra_docs),  # odd, but a legal name: ignored
        ]
        hostile = pick_hostile(rng, pool[:-1]) + [pool[-1]] * rng.randrange(2)
        members = valid + benign + hostile
        rng.shuffle(members)
        write_tar(project / "data/raw/reuters/reuters21578.tar.gz", members)
        expected = [str(n) for n in range(1, 89)]
        check(monkeypatch, capsys, project, "reuters", [h for h, _ in hostile if h != pool[-1][0]], expected)


@pytest.mark.slow
def test_random_thucnews_zips(project, monkeypatch, capsys):
    edits = {"categories": CATS, "per_class": 0, "ratios": [0.6, 0.2, 0.2]}
    params = edit_params(project, lambda raw: raw["datasets"]["thucnews"].update(edits))
    path = project / "data/raw/thucnews" / params["datasets"]["thucnews"]["filename"]
    path.parent.mkdir(parents=True)
    rng = random.Random(7)
    for _ in range(CASES):
        root = rng.choice(["THUCNews", "news"])
        valid = [(f"{root}/{c}/{i}.txt", f"{c}标题{i}\n正文{i}".encode()) for c in CATS for i in range(10)]
        benign = [
            (f"{root}/", b""),
            (f"{root}/{CATS[0]}/", b""),
            (f"{root}/汽车/1.txt", "汽车\n".encode()),
            ("readme.md", b"x"),
            (f"{root}/LICENSE", b"x"),
        ]

        def cat() -> str:
            return rng.choice(CATS)

        pool = [
            (f"{root}/../../x.txt", b"x"),
            (f"/abs/{cat()}/evil.txt", b"x"),
            (f"../../{cat()}/y.txt", b"x"),
            (f"C:\\{cat()}\\z.txt", b"x"),
            (f"{root}/{cat()}/..", b""),
            (rng.choice(valid)[0], "重复\n".encode()),  # a second copy
            (f"{root}/{cat()}/sub/4.txt", b"x"),
            (f"{cat()}/5.txt", b"x"),
            (f"Other/{cat()}/6.txt", b"x"),
            (f"__MACOSX/{root}/{cat()}/._7.txt", b"x"),
            ("top.txt", b"x"),
            (f"{root}/{cat()}/{BAD_UTF8[0]}.txt", b"x"),  # not UTF-8 once broken
        ]
        hostile = pick_hostile(rng, pool)
        members = valid + benign + hostile
        rng.shuffle(members)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zipfile warns about the duplicate names we write on purpose
            with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
                for name, data in members:
                    zf.writestr(name, data)
        names = [h for h, _ in hostile]
        if any(BAD_UTF8[0] in h for h in names):
            break_utf8(path)
            names = [h.replace(BAD_UTF8[0], BAD_UTF8[1].decode("utf-8", "surrogateescape")) for h in names]
        expected = [f"{c}/{i}" for c in CATS for i in range(10)]
        check(monkeypatch, capsys, project, "thucnews", names, expected)
        if not names:
            card = json.loads((project / "data/prepared/thucnews/card.json").read_text(encoding="utf-8"))
            assert card["reader"]["available_per_class"] == {c: 10 for c in CATS}
