"""Fetch machinery against fixture archives served by a local HTTP server (with Range support):
good archives, truncated and corrupted downloads, wrong checksums, path traversal, interrupted
and resumed downloads, licence gates, the CLI's one-line refusals. Only 127.0.0.1 is reachable
in these tests: the catalog's URLs are never contacted."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import random
import re
import socket
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from kdseg.errors import DataFormatError
from kdseg.fetch import catalog as cat
from kdseg.fetch import layouts
from kdseg.fetch.cli import add_fetch_commands
from kdseg.fetch.download import Progress
from kdseg.fetch.errors import (
    CorruptArchiveError,
    LicenceGated,
    UnsafeArchiveError,
    VerificationError,
)
from kdseg.fetch.fetcher import FetchOptions, fetch, plan
from kdseg.fetch.model import RECORD_NAME, Checksum, Dataset, Gate, RemoteFile

PAYLOAD = {"pkg/data/a.txt": b"alpha\n", "pkg/data/sub/b.bin": random.Random(0).randbytes(20_000)}


# ---------------------------------------------------------------------------- the server
class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        srv = self.server
        data, rng = srv.files.get(self.path), self.headers.get("Range")
        srv.log.append((self.path, rng))
        if data is None:
            self.send_error(404)
            return
        start, m = 0, re.fullmatch(r"bytes=(\d+)-", rng or "")
        if m and self.path not in srv.ignore_range:
            start = int(m.group(1))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body, drops = data[start:], srv.drops.get(self.path)
        self.wfile.write(body[: drops.pop(0)] if drops else body)  # a drop closes early

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.files, httpd.log, httpd.drops, httpd.ignore_range = {}, [], {}, set()
    threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True).start()
    httpd.url = lambda path: f"http://127.0.0.1:{httpd.server_address[1]}{path}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def only_localhost(monkeypatch):
    """Any connection or name lookup beyond 127.0.0.1 fails the test."""
    connect, lookup = socket.socket.connect, socket.getaddrinfo

    def guard(host) -> None:
        if host not in ("127.0.0.1", "localhost"):
            raise AssertionError(f"the test tried to reach {host}")

    def guarded_connect(sock, address):
        guard(address[0] if isinstance(address, tuple) else address)
        return connect(sock, address)

    def guarded_lookup(host, *args, **kwargs):
        guard(host)
        return lookup(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_lookup)


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture(autouse=True)
def fixture_check(monkeypatch):
    def check(root: Path) -> dict:
        for name, data in PAYLOAD.items():
            path = root / Path(name).relative_to("pkg/data")
            if not path.is_file() or path.read_bytes() != data:
                raise DataFormatError(path, "missing or different from the fixture")
        return {"files": len(PAYLOAD)}

    monkeypatch.setitem(layouts.CHECKS, "fixture", check)


# ---------------------------------------------------------------------------- archives
def make_archive(path: Path, kind: str, members: dict[str, bytes] = PAYLOAD, extra=None) -> bytes:
    if kind == "zip":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in members.items():
                zf.writestr(name, data)
            if extra:
                extra(zf)
    else:
        with tarfile.open(path, "w:gz") as tf:
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            if extra:
                extra(tf)
    return path.read_bytes()


def dataset(name, url, file_name, sha256, *, gated=False, exact=None) -> Dataset:
    checksum = Checksum("sha256", sha256, "fixture") if sha256 else None
    gate = Gate("fixture licence", "https://example.invalid/register", "https://example.invalid")
    return Dataset(
        name=name,
        title=f"fixture {name}",
        licence="fixture",
        target=f"{name}-data",
        layout=(f"{name}-data/a.txt",),
        check="fixture",
        files=(
            RemoteFile(
                file_name,
                url,
                0,
                checksum,
                dest=f"{name}-data",
                anchor="data",
                gated=gated,
                where="fixture page",
                exact_bytes=exact,
            ),
        ),
        gate=gate if gated else None,
    )


def opts(**kw) -> FetchOptions:
    return FetchOptions(
        retries=3, backoff_s=0.0, timeout_s=5, out=io.StringIO(), progress=io.StringIO(), **kw
    )


def serve(server, tmp_path, kind, name="ds", **kw):
    """Build the archive in ``tmp_path/src`` and serve it; returns (bytes, file name)."""
    file_name = f"{name}.{'zip' if kind == 'zip' else 'tar.gz'}"
    (tmp_path / "src").mkdir(exist_ok=True)
    data = make_archive(tmp_path / "src" / file_name, kind, **kw)
    server.files[f"/{file_name}"] = data
    return data, file_name


def nothing_done(root: Path, name: str = "ds") -> None:
    """No done record, no placed data, no partial download or extraction folder."""
    assert not (root / name / RECORD_NAME).exists()
    assert not (root / f"{name}-data").exists()
    assert not list(root.rglob("*.part")) and not list(root.rglob(".kdseg-extract-*"))


# ---------------------------------------------------------------------------- the cases
@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_good_archive_completes_verifies_and_records(server, tmp_path, kind):
    data, file_name = serve(server, tmp_path, kind)
    ds = dataset("ds", server.url(f"/{file_name}"), file_name, hashlib.sha256(data).hexdigest())
    root = tmp_path / "root"
    record = fetch(ds, root, opts())
    assert (root / "ds-data" / "a.txt").read_bytes() == b"alpha\n"
    assert (root / "ds-data" / "sub" / "b.bin").read_bytes() == PAYLOAD["pkg/data/sub/b.bin"]
    saved = (root / "ds" / RECORD_NAME).read_text()
    assert json.loads(saved) == record
    assert '"source": "fetched"' in saved and hashlib.sha256(data).hexdigest() in saved
    assert record["files"][0]["verified"].startswith("sha256 ") and "matches" in saved
    assert (root / "downloads" / file_name).read_bytes() == data  # kept, verified
    assert not list(root.rglob("*.part")) and not list(root.rglob(".kdseg-extract-*"))
    requests = len(server.log)
    again = fetch(ds, root, opts())
    assert again["files"] == record["files"] and len(server.log) == requests  # nothing fetched


@pytest.mark.parametrize("mode", ["checksum", "size", "archive-crc"])
def test_truncated_download_is_refused(server, tmp_path, mode):
    data, file_name = serve(server, tmp_path, "zip")
    server.files[f"/{file_name}"] = data[: len(data) // 2]  # a complete response, half the file
    sha = hashlib.sha256(data).hexdigest() if mode == "checksum" else None
    exact = len(data) if mode == "size" else None
    ds = dataset("ds", server.url(f"/{file_name}"), file_name, sha, exact=exact)
    error = CorruptArchiveError if mode == "archive-crc" else VerificationError
    with pytest.raises(error, match="download removed"):
        fetch(ds, tmp_path / "root", opts())
    nothing_done(tmp_path / "root")
    assert not (tmp_path / "root" / "downloads" / file_name).exists()


def test_gzip_trailer_is_checked_without_a_checksum(server, tmp_path):
    data, file_name = serve(server, tmp_path, "tar.gz")
    server.files[f"/{file_name}"] = data[:-4]  # every tar member intact, the gzip length gone
    ds = dataset("ds", server.url(f"/{file_name}"), file_name, None)
    with pytest.raises(CorruptArchiveError, match="end-of-stream marker"):
        fetch(ds, tmp_path / "root", opts())
    nothing_done(tmp_path / "root")


def test_wrong_checksum_is_refused_and_a_placed_archive_kept(server, tmp_path):
    data, file_name = serve(server, tmp_path, "tar.gz")
    ds = dataset("ds", server.url(f"/{file_name}"), file_name, "0" * 64)
    with pytest.raises(VerificationError, match=f"differs from the expected {'0' * 64}"):
        fetch(ds, tmp_path / "root", opts())
    nothing_done(tmp_path / "root")
    placed = tmp_path / "root" / "downloads" / file_name
    placed.write_bytes(data)  # the same archive put there by hand: refused, but not deleted
    with pytest.raises(VerificationError, match="file left in place"):
        fetch(ds, tmp_path / "root", opts())
    assert placed.read_bytes() == data


def _tar_member(name, type_=tarfile.REGTYPE, linkname="", data=b"evil"):
    def add(tf):
        info = tarfile.TarInfo(name)
        info.type, info.linkname = type_, linkname
        info.size = len(data) if type_ == tarfile.REGTYPE else 0
        tf.addfile(info, io.BytesIO(data) if type_ == tarfile.REGTYPE else None)

    return add


def _zip_member(name, mode=0o100644, data=b"evil"):
    def add(zf):
        info = zipfile.ZipInfo(name)
        info.create_system, info.external_attr = 3, mode << 16
        zf.writestr(info, data)

    return add


SYM, HARD = tarfile.SYMTYPE, tarfile.LNKTYPE
TRAVERSALS = {
    "tar-dotdot": ("tar.gz", lambda out: _tar_member("pkg/data/../../../outside.txt")),
    "tar-absolute": ("tar.gz", lambda out: _tar_member(str(out / "abs.txt"))),
    "tar-symlink-out": ("tar.gz", lambda out: _tar_member("pkg/data/ln", SYM, "../../../..")),
    "tar-hardlink-out": ("tar.gz", lambda out: _tar_member("pkg/data/hl", HARD, str(out / "v"))),
    "tar-device": ("tar.gz", lambda out: _tar_member("pkg/data/dev", tarfile.CHRTYPE)),
    "zip-dotdot": ("zip", lambda out: _zip_member("pkg/../../../outside.txt")),
    "zip-absolute": ("zip", lambda out: _zip_member(str(out / "abs.txt"))),
    "zip-symlink-out": ("zip", lambda out: _zip_member("pkg/data/ln", 0o120777, b"../../../..")),
    "zip-device": ("zip", lambda out: _zip_member("pkg/data/dev", 0o020644, b"")),
}


@pytest.mark.parametrize("case", sorted(TRAVERSALS))
def test_path_traversal_member_is_refused_and_nothing_lands_outside(server, tmp_path, case):
    kind, member = TRAVERSALS[case]
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "v").write_text("keep")
    data, file_name = serve(server, tmp_path, kind, extra=member(outside))
    ds = dataset("ds", server.url(f"/{file_name}"), file_name, hashlib.sha256(data).hexdigest())
    root = tmp_path / "root"
    with pytest.raises(UnsafeArchiveError, match="refused") as err:
        fetch(ds, root, opts())
    assert "\n" not in str(err.value)
    nothing_done(root)
    assert sorted(p.name for p in outside.iterdir()) == ["v"]
    assert (outside / "v").read_text() == "keep"
    assert (
        not (tmp_path / "outside.txt").exists() and not (tmp_path.parent / "outside.txt").exists()
    )


def test_interrupted_download_resumes_with_range(server, tmp_path):
    data, file_name = serve(server, tmp_path, "zip")
    path = f"/{file_name}"
    server.drops[path] = [1000, 2000]  # the first two responses stop early
    ds = dataset("ds", server.url(path), file_name, hashlib.sha256(data).hexdigest())
    fetch(ds, tmp_path / "root", opts())
    assert server.log == [(path, None), (path, "bytes=1000-"), (path, "bytes=3000-")]
    assert (tmp_path / "root" / "ds-data" / "a.txt").read_bytes() == b"alpha\n"


def test_partial_file_of_an_earlier_run_is_resumed_or_restarted(server, tmp_path):
    data, file_name = serve(server, tmp_path, "tar.gz")
    path, sha = f"/{file_name}", hashlib.sha256(data).hexdigest()
    downloads = tmp_path / "root" / "downloads"
    downloads.mkdir(parents=True)
    (downloads / f"{file_name}.part").write_bytes(data[:777])  # a killed process left this
    fetch(dataset("ds", server.url(path), file_name, sha), tmp_path / "root", opts())
    assert server.log == [(path, "bytes=777-")]
    server.ignore_range.add(path)  # a server without Range support: start from byte 0
    server.log.clear()
    (tmp_path / "r2" / "downloads").mkdir(parents=True)
    (tmp_path / "r2" / "downloads" / f"{file_name}.part").write_bytes(b"x" * 500)
    fetch(dataset("ds", server.url(path), file_name, sha), tmp_path / "r2", opts())
    assert server.log == [(path, "bytes=500-")] and (tmp_path / "r2" / "ds-data" / "a.txt").exists()


def test_interrupted_extraction_is_redone(server, tmp_path):
    data, file_name = serve(server, tmp_path, "zip")
    ds = dataset("ds", server.url(f"/{file_name}"), file_name, hashlib.sha256(data).hexdigest())
    root = tmp_path / "root"
    (root / "downloads").mkdir(parents=True)
    (root / "downloads" / file_name).write_bytes(data)
    (root / "ds-data").mkdir()  # a merge that was killed half-way
    (root / "ds" / ".kdseg-archives").mkdir(parents=True)
    (root / "ds" / ".kdseg-archives" / f"{file_name}.started").write_text("")
    assert [p.state for p in plan(ds, root, root / "downloads")] == ["archive"]
    fetch(ds, root, opts())
    assert (root / "ds-data" / "sub" / "b.bin").exists() and server.log == []


def test_gated_dataset_prints_steps_without_network(tmp_path, no_network, capsys):
    for name in ("nuscenes-mini", "semantickitti", "scannet"):
        assert run_cli(["fetch", name, "--root", str(tmp_path)]) == 3
        out, err = capsys.readouterr()
        assert err.count("\n") == 1 and "licence-gated" in err and "Traceback" not in err
        ds = cat.CATALOG[name]
        assert ds.gate.register in out and f"kdseg fetch {name} --root" in out
        for f in ds.files:  # the gated files, and only they, are listed to download by hand
            assert (f"       {f.name}  (" in out) == f.gated
        if ds.files:
            assert f"{tmp_path / 'downloads'}/" in out
        assert all(f"{tmp_path}/{line}" in out for line in ds.layout)
    assert not any(p.name == RECORD_NAME for p in tmp_path.rglob("*"))


def test_gated_dataset_takes_placed_archive_or_existing_layout(server, tmp_path, no_network):
    data = make_archive(tmp_path / "g.zip", "zip")
    ds = dataset(
        "g", "https://example.invalid/g.zip", "g.zip", hashlib.sha256(data).hexdigest(), gated=True
    )
    root = tmp_path / "root"
    with pytest.raises(LicenceGated, match=r"cannot download g\.zip") as err:
        fetch(ds, root, opts())
    assert "g-data: g folder does not exist" in err.value.steps
    (root / "downloads").mkdir(parents=True)
    (root / "downloads" / "g.zip").write_bytes(data)
    assert fetch(ds, root, opts())["files"][0]["status"] == "taken from the downloads folder"
    other = tmp_path / "other"  # an unpacked copy, no archive: checked and recorded
    (other / "g-data").parent.mkdir()
    (root / "g-data").rename(other / "g-data")
    assert fetch(ds, other, opts())["source"] == "existing layout"


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kdseg")
    add_fetch_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.mark.parametrize("case", ["truncated", "checksum", "traversal", "unknown", "syntax"])
def test_cli_prints_one_line_per_refusal(server, tmp_path, monkeypatch, capsys, case):
    extra = _zip_member("pkg/../x") if case == "traversal" else None
    data, file_name = serve(server, tmp_path, "zip", extra=extra)
    sha = hashlib.sha256(data).hexdigest()
    if case == "truncated":
        server.files[f"/{file_name}"] = data[:-10]
    expected = "1" * 64 if case == "checksum" else sha
    monkeypatch.setitem(
        cat.CATALOG, "ds", dataset("ds", server.url(f"/{file_name}"), file_name, expected)
    )
    argv = ["fetch", "nope" if case == "unknown" else "ds", "--root", str(tmp_path / "root")]
    if case == "syntax":
        argv += ["--checksum", "ds.zip=sha257:00"]
    assert run_cli(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("kdseg fetch: ") and "Traceback" not in err
    nothing_done(tmp_path / "root")


def test_cli_checksum_override_and_prepare(server, tmp_path, monkeypatch, capsys):
    data, file_name = serve(server, tmp_path, "zip")
    monkeypatch.setitem(
        cat.CATALOG, "ds", dataset("ds", server.url(f"/{file_name}"), file_name, None)
    )
    sha = hashlib.sha256(data).hexdigest()
    root = str(tmp_path / "root")
    assert run_cli(["fetch", "ds", "--root", root, "--checksum", f"{file_name}=sha256:{sha}"]) == 0
    assert (
        f"sha256 {sha} matches (--checksum"
        in (tmp_path / "root/ds/.kdseg-fetched.json").read_text()
    )
    assert run_cli(["prepare", "ds", "--root", root, "--out", str(tmp_path / "p.json")]) == 0
    assert "layout OK" in capsys.readouterr().out and (tmp_path / "p.json").is_file()
    (tmp_path / "root" / "ds-data" / "a.txt").unlink()
    assert run_cli(["prepare", "ds", "--root", root]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "a.txt: missing" in err


def test_kdseg_main_has_the_commands(tmp_path, no_network, capsys):
    from kdseg.cli import main

    assert main(["fetch", "scannet", "--root", str(tmp_path)]) == 3
    assert "scannet@googlegroups.com" in capsys.readouterr().out


def test_catalog_is_consistent():
    cat.validate_catalog()
    for ds in cat.CATALOG.values():
        assert ds.check in layouts.CHECKS and ds.layout
        for f in ds.files:
            assert f.url.startswith(("http://", "https://"))
            assert f.checksum is not None or f.compressed  # else nothing could verify it
    assert {
        "semantickitti",
        "scribblekitti",
        "nuscenes-mini",
        "scannet",
        "voc",
        "sbd",
        "ade20k",
        "sam-vit-h",
    } <= set(cat.CATALOG)
    plain = RemoteFile("x.pth", "http://127.0.0.1/x", 0, None, dest="x/x.pth")
    bad = Dataset("x", "x", "x", "x", ("x",), "fixture", (plain,))
    with pytest.raises(ValueError, match="cannot be verified"):
        cat.validate_catalog({"x": bad})


def test_progress_plain_lines_without_tty_and_tqdm_with_one():
    plain = io.StringIO()
    bar = Progress("f.zip", 1000, 0, plain)
    for _ in range(10):
        bar.update(100)
    bar.close()
    lines = plain.getvalue().splitlines()
    assert [line.split(": ")[1].split("%")[0] for line in lines] == [
        str(10 * i) for i in range(1, 11)
    ]

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    bar = Progress("f.zip", 1000, 0, tty)
    bar.update(1000)
    bar.close()
    assert "f.zip" in tty.getvalue() and "100%" in tty.getvalue() and "\r" in tty.getvalue()
