"""`seqattn serve`: the JSON API against `seqattn translate` and its word links against seqattn.alignment,
its errors and busy answers, the page in a real headless Chromium, and a bounded load test; all on 127.0.0.1."""
from __future__ import annotations

import base64
import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
import uvicorn
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from cli import app as cli
from helpers import write_small_corpus
from seqattn.alignment import word_links
from seqattn.data.subwords import words_of_pieces
from seqattn.serve import Served, create_app, load_served
from seqattn.serve.words import word_groups

ROOT = Path(__file__).resolve().parent.parent
CPU = torch.device("cpu")
BEAM = 3
LOW = 0.1  # a threshold the tiny model's near-uniform word weights still pass
runner = CliRunner()


def invoke(*args: object):
    result = runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def corpus(multi30k: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_small_corpus(tmp_path_factory.mktemp("corpus"), multi30k)


@pytest.fixture(scope="module")
def trained(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny RNNsearch after 4 updates (subword pieces on both sides)."""
    out = tmp_path_factory.mktemp("serve") / "run"
    invoke("train", ROOT / "recipes/bahdanau2015/rnnsearch.yaml", f"out_dir={out}", f"data.root={corpus}",
           "data.corpus=.", "subword.vocab_size=250", "model.emb_dim=16", "model.hidden_dim=16",
           "model.attention_dim=16", "model.readout_dim=16", "train.max_steps=4", "train.valid_every=4",
           "train.batch_tokens=2000", "train.progress=false", "train.max_minutes=0", "search.max_len_b=3",
           "search.max_len_a=0.5")
    return out / "best.pt"


@pytest.fixture(scope="module")
def sentences(corpus: Path) -> list[str]:
    return (corpus / "test_2016_flickr.en").read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="module")
def cli_output(trained: Path, corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """`seqattn translate` of the test sentences with --beam-size 3: best lines, 3-best lines, first attention JSON."""
    src, att = corpus / "test_2016_flickr.en", tmp_path_factory.mktemp("attention")
    best = invoke("translate", "-c", trained, "-i", src, "--beam-size", BEAM, "--attention-dir", att, "--attention-max", 1)
    nbest = invoke("translate", "-c", trained, "-i", src, "--beam-size", BEAM, "--nbest", BEAM)
    return {"best": best.stdout.splitlines(), "nbest": nbest.stdout.splitlines(),
            "attention": json.loads((att / "00000.json").read_text(encoding="utf-8"))}


@pytest.fixture(scope="module")
def served(trained: Path) -> dict[str, Served]:
    return load_served([trained, trained.with_name("last.pt")], CPU, queue=2)


@pytest.fixture(scope="module")
def client(served: dict[str, Served]) -> TestClient:
    return TestClient(create_app(served, max_chars=300))


def translate(client, text: str, **options) -> httpx.Response:
    return client.post("/api/translate", json={"model": "run/best.pt", "text": text, "beam_size": BEAM} | options)


def test_words_merge_pieces_sum_sources_and_average_targets() -> None:
    assert word_groups(["▁a", "b", "▁", ",", "▁c", "</s>"]) == [("ab", [0, 1]), (",", [2, 3]), ("c", [4]), ("</s>", [5])]
    assert word_groups(["a", "b", "</s>"], subwords=False) == [("a", [0]), ("b", [1]), ("</s>", [2])]


def test_translation_and_attention_equal_the_command_line(client, sentences: list[str], cli_output: dict) -> None:
    for i in range(5):
        assert translate(client, sentences[i]).json()["hypotheses"][0]["text"] == cli_output["best"][i]
    hyps = translate(client, sentences[0], nbest=BEAM).json()["hypotheses"]
    assert [f"0 ||| {h['text']} ||| {h['score']:.4f}" for h in hyps] == cli_output["nbest"][:BEAM]
    best, written = hyps[0], cli_output["attention"]
    assert (best["source"], best["target"]) == (written["source"], written["target"])
    # decoded alone, not batched with 19 others: equal on a CPU, to fp16's precision under a GPU's autocast
    assert np.allclose(best["alpha"], written["alpha"], atol=2e-3 if torch.cuda.is_available() else 1e-6)


def test_word_level_attention_rows_sum_to_one(client, sentences: list[str]) -> None:
    for hyp in translate(client, sentences[1], nbest=BEAM).json()["hypotheses"]:
        words = hyp["words"]
        alpha = np.asarray(words["alpha"])
        assert alpha.shape == (len(words["target"]), len(words["source"]))
        assert np.allclose(alpha.sum(axis=1), 1.0, atol=1e-5)
        assert "".join(words["source"]) == "".join(hyp["source"]).replace("▁", "")
        assert len(words["source"]) < len(hyp["source"]) and words["source"][-1] == "</s>"


def align_links(hyp: dict, extract: str, threshold: float) -> set[tuple[int, int]]:
    """The links `seqattn align --pieces sum` extracts from a returned hypothesis's piece attention:
    words of the pieces as `hypothesis_pieces` groups them, the EOS row and column dropped."""
    src = words_of_pieces(hyp["source"][:-1])
    tgt = words_of_pieces(hyp["target"][: len(hyp["target"]) - hyp["finished"]])
    alpha = torch.tensor(hyp["alpha"])[: len(tgt), : len(src)]  # [T, S] without EOS
    return word_links(alpha, src, tgt, "sum", extract, threshold)


@pytest.mark.parametrize("extract,threshold", [("argmax", 0.5), ("threshold", LOW)])
def test_word_links_are_those_seqattn_align_extracts(client, sentences: list[str], extract: str, threshold: float) -> None:
    for i in (1, 2):
        for hyp in translate(client, sentences[i], nbest=BEAM, extract=extract, threshold=threshold).json()["hypotheses"]:
            words, expected = hyp["words"], align_links(hyp, extract, threshold)
            assert expected and sorted(map(tuple, words["links"])) == sorted(expected)
            alpha = np.asarray(words["alpha"])[:, :-1]  # the heatmap's rows, the EOS column aside
            if extract == "argmax":  # one link per target word (EOS aside), in its row's darkest cell
                assert sorted(j for _, j in words["links"]) == list(range(len(words["target"]) - hyp["finished"]))
                assert all(np.isclose(alpha[j, i], alpha[j].max(), atol=1e-6) for i, j in words["links"])
            else:
                assert all(alpha[j, i] > threshold - 1e-6 for i, j in words["links"])


@pytest.mark.parametrize("body,status,message", [
    ({"text": "   "}, 400, "empty input"),
    ({"text": "x" * 301}, 413, "input of 301 characters is over the limit of 300"),
    ({"text": "a", "model": "nope"}, 404, "no model 'nope'"),
    ({"text": "a", "nbest": 4}, 400, "n-best 4 is larger than the beam size 3"),
    ({"text": "a", "beam_size": 0}, 422, "beam_size"),
    ({"text": "a", "extract": "max"}, 400, "extract max: choose one of argmax, threshold"),
    ({"text": "a", "extract": "threshold", "threshold": 1.5}, 422, "threshold"),
    ({}, 422, "text"),
])
def test_bad_requests_are_json_errors(client, body: dict, status: int, message: str) -> None:
    response = client.post("/api/translate", json={"model": "run/best.pt", "beam_size": BEAM} | body)
    assert response.status_code == status and message in response.json()["error"]
    assert translate(client, "A dog runs.").status_code == 200  # and the server goes on


def test_other_tasks_are_refused_and_the_page_is_served(client) -> None:
    response = client.post("/api/caption", json={"model": "run/best.pt", "image": "AAAA"})
    assert response.status_code == 400 and "is a translation model, not captioning" in response.json()["error"]
    assert [m["name"] for m in client.get("/api/models").json()["models"]] == ["run/best.pt", "run/last.pt"]
    assert "attention explorer" in client.get("/").text and "function heatmap" in client.get("/static/app.js").text


def test_full_queue_answers_busy(served: dict[str, Served]) -> None:
    m = served["run/best.pt"]
    lonely = Served("one", m.model, m.cfg, m.task, CPU, queue=0)
    queued = Served("two", m.model, m.cfg, m.task, CPU, queue=1)
    client = TestClient(create_app({"one": lonely, "two": queued}))
    with lonely.turn():  # a decoding in progress and no room to wait
        response = client.post("/api/translate", json={"model": "one", "text": "A dog."})
    assert response.status_code == 503 and "model one is busy" in response.json()["error"]
    with ThreadPoolExecutor(1) as pool:
        with queued.turn():
            waiting = pool.submit(client.post, "/api/translate", json={"model": "two", "text": "A dog."})
            deadline = time.monotonic() + 10
            while queued.admitted._value > 0 and time.monotonic() < deadline:  # until it waits in the queue
                time.sleep(0.01)
            assert client.post("/api/translate", json={"model": "two", "text": "A cat."}).status_code == 503
        assert waiting.result(timeout=30).status_code == 200


def test_serve_reports_a_missing_checkpoint_in_one_line(tmp_path: Path) -> None:
    result = runner.invoke(cli, ["serve", "-c", str(tmp_path / "missing.pt")])
    assert result.exit_code == 2 and "checkpoint not found" in result.stderr and len(result.stderr.splitlines()) == 1


def test_caption_attention_over_the_image_grid(tiny_flickr: Path, tmp_path: Path) -> None:
    from test_captioning import caption_config

    from seqattn.training import Trainer

    Trainer(caption_config(tiny_flickr, tmp_path, "train.max_steps=2"), log=lambda *_: None).train()
    client = TestClient(create_app(load_served([tmp_path / "best.pt"], CPU, queue=1)))
    image = next((tiny_flickr / "images").iterdir()).read_bytes()
    body = {"model": f"{tmp_path.name}/best.pt", "image": base64.b64encode(image).decode(), "beam_size": 2, "nbest": 2}
    answer = client.post("/api/caption", json=body).json()
    assert answer["grid"] == 2 and answer["image"].startswith("data:image/png;base64,")
    for hyp in answer["hypotheses"]:
        alpha = np.asarray(hyp["words"]["alpha"])
        assert alpha.shape == (len(hyp["words"]["target"]), 4) and np.allclose(alpha.sum(axis=1), 1.0, atol=1e-5)
    for image, status, message in (("", 400, "empty input"), ("bm90IGFuIGltYWdl", 400, "not a readable image"),
                                   ("%%%", 400, "not base64")):
        response = client.post("/api/caption", json=body | {"image": image})
        assert response.status_code == status and message in response.json()["error"]


def test_answer_shows_every_hop_over_the_story(babi: Path, tmp_path: Path) -> None:
    invoke("train", ROOT / "recipes/sukhbaatar2015/memn2n.yaml", f"out_dir={tmp_path}", "model.emb_dim=20",
           "model.linear_start=false", "train.max_steps=5", "train.valid_every=5", "babi.valid_fraction=0.02")
    client = TestClient(create_app(load_served([tmp_path / "best.pt"], CPU, queue=1)))
    story = "1 Mary went to the kitchen.\n2 John moved to the garden.\n3 Where is Mary?\n4 Mary went to the office.\n5 Where is John?"
    answer = client.post("/api/answer", json={"model": f"{tmp_path.name}/best.pt", "story": story, "beam_size": 1}).json()
    assert answer["question"] == "where is john?" and len(answer["story"]) == 3
    assert answer["hypotheses"][0]["text"] and all(len(hop) == 3 for hop in answer["hops"])
    response = client.post("/api/answer", json={"model": f"{tmp_path.name}/best.pt", "story": "1 Mary went home."})
    assert response.status_code == 400 and "no question" in response.json()["error"]


@contextmanager
def running(app) -> Iterator[str]:
    """`app` under uvicorn in a thread on a free port of 127.0.0.1 -> its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def test_load_every_request_answered_or_busy(served: dict[str, Served], sentences: list[str], cli_output: dict) -> None:
    """200 requests from 8 concurrent clients: each gets the command line's translation or a 503 busy."""
    def ask(k: int) -> str:
        i = k % len(sentences)
        with httpx.Client(base_url=base, timeout=60) as http:
            response = http.post("/api/translate", json={"model": "run/best.pt", "text": sentences[i], "beam_size": BEAM})
        if response.status_code == 503 and "busy" in response.json()["error"]:
            return "busy"
        assert response.status_code == 200, response.text
        assert response.json()["hypotheses"][0]["text"] == cli_output["best"][i]
        return "ok"

    start = time.monotonic()
    with running(create_app(served)) as base, ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(ask, range(200), timeout=240))
    assert len(outcomes) == 200 and outcomes.count("ok") >= 20
    print(f"200 requests in {time.monotonic() - start:.1f} s: {outcomes.count('ok')} answered, {outcomes.count('busy')} busy")


CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("no browser test: Debian's chromium and chromium-driver are not installed "
                    "(apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="no browser test: selenium is not installed")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def test_page_in_chromium_translates_and_draws_attention(browser, served, sentences, cli_output, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 60)
    with running(create_app(served, max_chars=300)) as base:
        browser.get(base + "/")
        wait.until(lambda b: len(Select(b.find_element(By.ID, "compare")).options) == 2)
        browser.find_element(By.ID, "run").click()  # nothing typed: the server's message in the page
        wait.until(lambda b: b.find_element(By.ID, "error").is_displayed())
        assert "empty input" in browser.find_element(By.ID, "error").text

        Select(browser.find_element(By.ID, "compare")).select_by_value("run/last.pt")
        beam = browser.find_element(By.ID, "beam")
        beam.clear()
        beam.send_keys(str(BEAM))
        browser.find_element(By.ID, "text").send_keys(sentences[0])
        browser.find_element(By.ID, "run").click()
        wait.until(lambda b: b.find_elements(By.ID, "output-1"))
        assert not browser.find_element(By.ID, "error").is_displayed()
        assert browser.find_element(By.ID, "output-0").text == cli_output["best"][0]
        words = best_words(served, sentences[0])
        columns = browser.find_elements(By.CSS_SELECTOR, "section.column")
        assert len(columns) == 2
        cells = columns[0].find_elements(By.CSS_SELECTOR, "svg.heatmap rect.cell")
        assert len(cells) == len(words["source"]) * len(words["target"])
        assert drawn_links(browser, columns[0]) == sorted(map(tuple, words["links"])) != []
        browser.find_element(By.ID, "pieces").click()  # subword pieces on demand: more cells
        assert len(columns[0].find_elements(By.CSS_SELECTOR, "svg.heatmap rect.cell")) > len(cells)
        browser.find_element(By.ID, "pieces").click()
        browser.find_element(By.ID, "links").click()  # the links hidden and shown again
        assert drawn_links(browser, columns[0]) == []
        browser.find_element(By.ID, "links").click()
        assert len(drawn_links(browser, columns[0])) == len(words["links"])
        shot = tmp_path / "serve.png"
        browser.save_screenshot(str(shot))

        low = [best_words(served, sentences[0], model=name, extract="threshold", threshold=LOW)["links"]
               for name in ("run/best.pt", "run/last.pt")]
        assert sorted(low[0]) != sorted(words["links"])
        browser.execute_script(f"document.getElementById('threshold').value = '{LOW}'")
        Select(browser.find_element(By.ID, "extract")).select_by_value("threshold")  # asks the server again
        wait.until(expected_conditions.staleness_of(columns[0]))
        columns = browser.find_elements(By.CSS_SELECTOR, "section.column")
        assert [drawn_links(browser, c) for c in columns] == [sorted(map(tuple, links)) for links in low]
    print(f"screenshot: {shot}")
    assert shot.stat().st_size > 10_000


def best_words(served: dict[str, Served], text: str, **options) -> dict:
    """The best translation's word-level attention and links, straight from the API."""
    return translate(TestClient(create_app(served)), text, **options).json()["hypotheses"][0]["words"]


def drawn_links(browser, column) -> list[tuple[int, int]]:
    """(source word, target word) of each link outlined in the column's heatmap, read off the cell it lies
    in: cell columns are source words, cell rows target words."""
    cells, links = browser.execute_script(
        "const at = (r) => [r.x.baseVal.value, r.y.baseVal.value, r.width.baseVal.value];"
        "return ['rect.cell', 'rect.link'].map((s) => [...arguments[0].querySelectorAll('svg.heatmap ' + s)].map(at));",
        column)
    xs, ys = sorted({x for x, _, _ in cells}), sorted({y for _, y, _ in cells})

    def cell(v: float, starts: list[float]) -> int:  # the cell whose span holds v
        return next(k for k, a in enumerate(starts) if a < v < a + cells[0][2])

    return sorted((cell(x, xs), cell(y, ys)) for x, y, _ in links)
