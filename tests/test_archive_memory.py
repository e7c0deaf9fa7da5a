"""Archive members are read in bounded memory: a zip or tar member that inflates past the per-member
cap (`pipeline.data.members.MEMBER_CAP`, made small here so the archives stay small) is one error
naming the archive and the member, whether its size is declared honestly or the zip's directory lies
about it, and reading it never holds much more than the cap."""

from __future__ import annotations

import tarfile
import tracemalloc
from pathlib import Path

import pytest

from pipeline.data import members, zipstream
from pipeline.data.prepare import prepare
from pipeline.errors import TextbenchError
from test_data_reuters import corpus_docs, sgml_members, write_tar
from test_data_reuters import make_config as reuters_config
from test_data_thucnews import make_config as thucnews_config
from test_data_thucnews import make_zip, zip_path

CAP = 1 << 20
BIG = 32 << 20  # what the hostile member inflates to: 32x the cap (reading it holds < BIG // 4)
BIG_DOC = "THUCNews/体育/big.txt"


@pytest.fixture(autouse=True)
def small_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(members, "MEMBER_CAP", CAP)


def big_zip(project: Path, lie: bool) -> Path:
    """THUCNews layout whose 体育 class (20 members = per_class, so all are read) holds one member
    inflating to BIG bytes; with `lie` the central directory claims it is 100 bytes."""
    path = make_zip(
        zip_path(project), cats={"体育": 19, "财经": 20, "科技": 20}, extra={BIG_DOC: "标题\n".encode() + b"x" * BIG}
    )
    if lie:
        data = bytearray(path.read_bytes())
        start = data.rfind(BIG_DOC.encode()) - 46  # the member's central directory header
        assert data[start : start + 4] == b"PK\x01\x02"
        data[start + 24 : start + 28] = (100).to_bytes(4, "little")  # its uncompressed size
        path.write_bytes(bytes(data))
    return path


def peak_bytes(read) -> int:
    """Peak traced allocation while `read()` runs (it is expected to refuse the member)."""
    tracemalloc.start()
    try:
        with pytest.raises(TextbenchError):
            read()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("lie", [False, True], ids=["declared", "lying-size"])
def test_zip_member_past_the_cap_is_one_error_in_bounded_memory(project: Path, lie: bool) -> None:
    path = big_zip(project, lie)
    with pytest.raises(TextbenchError, match=rf"{path.name}: member {BIG_DOC} inflates past {CAP} bytes"):
        prepare(thucnews_config(project), "thucnews")
    assert not (project / "data/prepared/thucnews").exists()
    with open(path, "rb") as f:
        member = next(m for m in zipstream.iter_members(f) if m.name == BIG_DOC)
        assert peak_bytes(lambda: zipstream.read_member(f, member)) < BIG // 4


def test_tar_member_past_the_cap_is_one_error_in_bounded_memory(project: Path) -> None:
    (project / "data/raw/reuters").mkdir(parents=True)
    sgml = sgml_members(corpus_docs())
    name, data = sgml[0]
    sgml[0] = (name, data + b" " * BIG)
    path = write_tar(project / "data/raw/reuters/reuters21578.tar.gz", sgml)
    with pytest.raises(TextbenchError, match=rf"{path.name}: member {name} inflates past {CAP} bytes"):
        prepare(reuters_config(project), "reuters")
    assert not (project / "data/prepared/reuters").exists()
    with tarfile.open(path, "r:*") as tar:
        stream = tar.extractfile(tar.getmember(name))
        assert peak_bytes(lambda: members.read_capped(stream, path.name, name)) < BIG // 4


def test_members_within_the_cap_read_whole(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(members, "MEMBER_CAP", BIG + 100)
    path = big_zip(project, lie=False)
    with open(path, "rb") as f:
        member = next(m for m in zipstream.iter_members(f) if m.name == BIG_DOC)
        assert len(zipstream.read_member(f, member)) == member.size > BIG


@pytest.mark.parametrize("container", [".zip", ".tar.gz"])
def test_a_tree_archive_member_past_the_cap_is_one_error_naming_it(project: Path, container: str) -> None:
    """A local corpus read in place from an archive tree (<split>/<label>/*.txt) caps members alike."""
    from test_data_local import make_config as local_config
    from test_local_layouts import docs, pack

    files = {**docs("train"), **docs("test"), "train/pos/big.txt": "x" * (CAP + 1)}
    cfg = local_config(project, language="en", path=pack(project, container, files))
    with pytest.raises(TextbenchError, match=r"member train/pos/big.txt inflates past") as e:
        prepare(cfg, "mine")
    assert container in str(e.value)
    assert not (project / "data/prepared/mine").exists()
