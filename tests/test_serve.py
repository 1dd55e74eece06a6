"""`cgraph serve` tells the truth about its files: a file it cannot read is refused before it
listens; every file the graph reads is watched (a {file: x.npy} input, a --set @file.npy), a file
that disappears shows as an error and comes back; and under many clients reloading while the
files are saved again and again, every answer is a whole page or a whole update. Each test runs
the real server on 127.0.0.1 (a free port) for a few seconds at most."""

from __future__ import annotations

import base64
import http.client
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest

from test_html import GRAPHS, embedded, get, plain, start_server, stop

GRAPH = "inputs:\n  x: {file: x.npy}\n  w: 3\nnodes:\n  y: {op: mul, inputs: [x, w]}\n  s: {op: sum, inputs: [y]}\n"


def serve_once(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cgraph", "serve", *args, "--port", "0"], cwd=cwd,
                          capture_output=True, text=True, timeout=30)


def test_a_missing_file_or_a_folder_is_refused_before_listening(tmp_path: Path) -> None:
    (tmp_path / "folder.yaml").mkdir()
    for name, reason in (("missing.yaml", "no such file"), ("folder.yaml", "a folder, not a graph file")):
        result = serve_once(name, cwd=tmp_path)
        # No URL on stdout: it never listened.
        assert (result.returncode, result.stdout, result.stderr) == (1, "", f"cgraph: error: {name}: {reason}\n")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file, whatever its permissions")
def test_an_unreadable_file_is_refused_before_listening(tmp_path: Path) -> None:
    graph = tmp_path / "g.yaml"
    graph.write_text(GRAPH)
    graph.chmod(0)
    result = serve_once("g.yaml", cwd=tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (1, "", "cgraph: error: g.yaml: permission denied\n")


def update(url: str, have: str = "") -> dict:
    status, body = get(f"{url}update?have={have}")
    assert status == 200
    return json.loads(body)


def wait_for(url: str, predicate, seconds: float = 2.0) -> dict:
    """The first update within ``seconds`` whose data satisfies ``predicate``."""
    deadline = time.monotonic() + seconds
    while True:
        data = update(url)["data"]
        if predicate(data):
            return data
        assert time.monotonic() < deadline, data
        time.sleep(0.05)


def total(data: dict) -> float | None:
    return data["backward"]["nodes"]["s"]["value"] if "backward" in data else None


def test_every_file_read_is_watched_and_a_missing_one_shows_until_it_comes_back(tmp_path: Path) -> None:
    graph = tmp_path / "g.yaml"
    graph.write_text(GRAPH)
    np.save(tmp_path / "x.npy", np.full(4, 2.0))
    np.save(tmp_path / "w.npy", np.array(3.0))
    process, url = start_server(graph, "--set", f"w=@{tmp_path / 'w.npy'}")
    try:
        assert total(update(url)["data"]) == 24.0  # 4 * 2 * 3
        np.save(tmp_path / "x.npy", np.full(4, 5.0))  # saved anew: same size, same inode
        assert total(wait_for(url, lambda data: total(data) != 24.0)) == 60.0  # 4 * 5 * 3
        np.save(tmp_path / "w.npy", np.array(0.5))  # a --set file
        assert total(wait_for(url, lambda data: total(data) != 60.0)) == 10.0  # 4 * 5 * 0.5

        (tmp_path / "x.npy").unlink()
        missing = wait_for(url, lambda data: "error" in data)
        assert missing["error"] == f"{graph}:2:13: error: file not found: x.npy"
        np.save(tmp_path / "x.npy", np.full(4, 1.0))
        assert total(wait_for(url, lambda data: "error" not in data)) == 2.0  # 4 * 1 * 0.5

        graph.write_text(GRAPH.replace("x.npy", "z.npy"))  # a file that is missing from its first read on
        assert wait_for(url, lambda data: "error" in data)["error"] == f"{graph}:2:13: error: file not found: z.npy"
        np.save(tmp_path / "z.npy", np.full(4, 7.0))
        assert total(wait_for(url, lambda data: "error" not in data)) == 14.0  # 4 * 7 * 0.5
        graph.unlink()
        assert wait_for(url, lambda data: "error" in data)["error"] == f"cgraph: error: cannot read {graph}: No such file or directory"
        graph.write_text(GRAPH)
        assert total(wait_for(url, lambda data: "error" not in data)) == 2.0
        assert process.poll() is None
    finally:
        code, stderr = stop(process)
    assert code == 130 and "Traceback" not in stderr


def _whole_page(body: bytes) -> dict:
    text = body.decode()
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    return embedded(text, "cgraph-data")


def _consistent(data: dict, seen: dict[str, int]) -> None:
    """The data of one build: x is all one value k that the saver wrote, s = sum(x) * w of that build."""
    if "error" in data:  # a file read while it was being written: a whole page that says so
        assert isinstance(data["error"], str) and "\n" not in data["error"]
        seen["errors"] += 1
        return
    nodes = data["backward"]["nodes"]
    x, w = np.asarray(plain(nodes["x"]["value"])), nodes["w"]["value"]
    assert x.shape == (50,) and np.all(x == x[0])
    assert nodes["s"]["value"] == pytest.approx(50 * x[0] * w)
    seen["values"] += 1


def test_many_clients_reloading_while_the_files_are_saved_get_whole_answers(tmp_path: Path) -> None:
    graph = tmp_path / "g.yaml"
    graph.write_text(GRAPH)
    np.save(tmp_path / "x.npy", np.full(50, 0.0))
    process, url = start_server(graph)
    address = urlsplit(url)
    stop_at = time.monotonic() + 3.0
    failures: list[str] = []
    seen = {"pages": 0, "updates": 0, "values": 0, "errors": 0}
    lock = threading.Lock()

    def client(number: int) -> None:
        version = ""
        while time.monotonic() < stop_at:
            path = "/" if number % 2 else f"/update?have={version}"  # half reload the page, half poll
            connection = http.client.HTTPConnection(address.hostname, address.port, timeout=20)
            try:
                connection.request("GET", path)
                response = connection.getresponse()
                body = response.read()
                assert response.status == 200, (response.status, body[:200])
                assert int(response.getheader("Content-Length")) == len(body)
                if path == "/":
                    data = _whole_page(body)
                    kind = "pages"
                else:
                    answer = json.loads(body)
                    version = answer["version"]
                    data = answer.get("data")
                    kind = "updates"
                with lock:
                    seen[kind] += 1
                    if data is not None:
                        _consistent(data, seen)
            except Exception as error:  # noqa: BLE001 (every failure is reported, with its path)
                with lock:
                    failures.append(f"{path}: {type(error).__name__}: {error}")
            finally:
                connection.close()

    def saver() -> None:
        step = 0
        while time.monotonic() < stop_at:
            step += 1
            np.save(tmp_path / "x.npy", np.full(50, float(step)))  # written in place: truncated, then filled
            if step % 5 == 0:
                graph.write_text(GRAPH.replace("w: 3", f"w: {step % 7 + 1}"))
            time.sleep(0.01)
        np.save(tmp_path / "x.npy", np.full(50, 1000.0))

    threads = [threading.Thread(target=client, args=(number,)) for number in range(20)] + [threading.Thread(target=saver)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=40)
        assert not failures, failures[:5]
        assert seen["pages"] >= 20 and seen["updates"] >= 20 and seen["values"] >= 10, seen
        # When the saving stops, the page tells the last save.
        final = wait_for(url, lambda data: "backward" in data and plain(data["backward"]["nodes"]["x"]["value"])[0] == 1000.0)
        assert total(final) == pytest.approx(50 * 1000.0 * final["backward"]["nodes"]["w"]["value"])
        assert process.poll() is None
    finally:
        code, stderr = stop(process)
    assert code == 130
    assert "Traceback" not in stderr and "error" not in stderr, stderr


def backward_full(graph: Path) -> dict:
    """``cgraph backward GRAPH --format json``'s nodes, run as its own process."""
    result = subprocess.run([sys.executable, "-m", "cgraph", "backward", str(graph), "--format", "json"],
                            capture_output=True, text=True, timeout=60, check=True)
    return json.loads(result.stdout)["nodes"]


def whole_array(url: str, name: str, which: str, have: str) -> tuple[int, object]:
    status, body = get(f"{url}array?name={name}&which={which}&have={have}")
    return status, json.loads(body)  # every answer of /array is JSON, 404 and 409 too


def test_a_sampled_array_is_served_whole_from_the_build_the_page_shows(tmp_path: Path) -> None:
    graph = tmp_path / "convnet.yaml"
    graph.write_text((GRAPHS / "simple_convnet.yaml").read_text())
    process, url = start_server(graph)
    try:
        first = update(url)
        version = first["version"]
        assert "step" in first["data"]["backward"]["nodes"]["conv1"]["value"]  # the page has only a sample
        expected = backward_full(graph)
        for name, which in (("conv1", "value"), ("conv1", "grad"), ("W2", "grad"), ("x", "value")):
            status, whole = whole_array(url, name, which, version)
            assert status == 200 and "step" not in whole, (name, which)
            numbers = np.frombuffer(base64.b64decode(whole["data"]), dtype="<f4" if whole["bytes"] == 4 else "<f8")
            assert whole["shape"] == list(np.shape(expected[name][which]))
            assert np.array_equal(numbers.reshape(whole["shape"]), np.array(expected[name][which])), (name, which)
        assert whole_array(url, "loss", "value", version) == (200, pytest.approx(expected["loss"]["value"]))
        for name, which in (("nowhere", "value"), ("conv1", "values"), ("", "grad")):
            status, answer = whole_array(url, name, which, version)
            assert status == 404 and set(answer) == {"error"}, (name, which)
        assert whole_array(url, "conv1", "value", "0123456789abcdef") == (409, {"version": version})

        # Saved anew: the old page's version is refused with the new one, never answered with new values.
        graph.write_text(graph.read_text().replace("shape: [30, 1, 5, 5], seed: 1", "shape: [30, 1, 5, 5], seed: 7"))
        os.utime(graph, ns=(time.time_ns() + 10**9,) * 2)
        newer = update(url, version)["version"]
        assert newer != version
        assert whole_array(url, "conv1", "value", version) == (409, {"version": newer})
        status, whole = whole_array(url, "conv1", "value", newer)
        numbers = np.frombuffer(base64.b64decode(whole["data"]), dtype="<f8").reshape(whole["shape"])
        changed = backward_full(graph)["conv1"]["value"]
        assert status == 200 and np.array_equal(numbers, np.array(changed))
        assert not np.array_equal(numbers, np.array(expected["conv1"]["value"]))
    finally:
        code, stderr = stop(process)
    assert code == 130 and "Traceback" not in stderr
