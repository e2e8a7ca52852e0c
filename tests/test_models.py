"""Model folders: the hub download path against a fake hub on 127.0.0.1 (huggingface_hub
honours HF_ENDPOINT), and the fingerprint that keys every inpainting."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from maskleak import model_folders, models
from maskleak import tiny_models as builders
from maskleak.code_version import library_files
from maskleak.errors import InputError
from maskleak.model_folders import RECORD_FILE, model_fingerprint
from maskleak.models import MODEL_PARTS, check_model_folder, describe, load_pipeline

REPO = Path(__file__).resolve().parents[1]
COMMIT = "0123456789abcdef0123456789abcdef01234567"
REPO_ID = "someone/tiny-inpaint"


def serve_repo(folder: Path) -> ThreadingHTTPServer:
    """A read-only hub serving ``folder`` as REPO_ID at revision 'main' (= COMMIT)."""
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())

    class Hub(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest output clean
            pass

        def _file(self) -> Path | None:
            prefix = f"/{REPO_ID}/resolve/"
            if not self.path.startswith(prefix):
                return None
            rel = self.path[len(prefix) :].split("/", 1)[1].split("?")[0]
            return folder / rel if rel in files else None

        def _send_file_headers(self, path: Path) -> None:
            data = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
            self.end_headers()

        def do_HEAD(self):  # noqa: N802
            path = self._file()
            if path is None:
                self.send_error(404)
                return
            self._send_file_headers(path)

        def _json(self, obj: object) -> None:
            body = json.dumps(obj).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):  # noqa: N802
            if self.path.startswith(f"/api/models/{REPO_ID}/tree/"):
                tree = [
                    {
                        "type": "file",
                        "path": f,
                        "size": (folder / f).stat().st_size,
                        "oid": hashlib.sha1((folder / f).read_bytes()).hexdigest(),
                    }
                    for f in files
                ]
                self._json(tree)
                return
            if self.path.startswith(f"/api/models/{REPO_ID}"):
                self._json(
                    {"id": REPO_ID, "sha": COMMIT, "siblings": [{"rfilename": f} for f in files]}
                )
                return
            path = self._file()
            if path is None:
                self.send_error(404)
                return
            self._send_file_headers(path)
            self.wfile.write(path.read_bytes())

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def download(endpoint: str, dest: Path, repo_id: str = REPO_ID):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_ENDPOINT=endpoint, HF_HOME=str(dest.parent.parent / "hf-home"))
    code = (
        "import sys; from maskleak.model_folders import download_model; "
        f"download_model(sys.argv[1], {repo_id!r}, 'main')"
    )
    return subprocess.run(
        [sys.executable, "-c", code, str(dest)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture()
def hub_repo(tiny_models, tmp_path):
    """The tiny 4-channel model as a hub repo, plus files an inpainting run must not fetch."""
    repo = tmp_path / "repo"
    shutil.copytree(tiny_models[4], repo)
    (repo / RECORD_FILE).unlink()
    fingerprint = model_fingerprint(repo)
    (repo / "safety_checker").mkdir()
    (repo / "safety_checker/model.safetensors").write_bytes(b"x" * 1000)
    (repo / "unet/diffusion_pytorch_model.bin").write_bytes(b"pickle, never loaded")
    (repo / "unet/diffusion_pytorch_model.fp16.safetensors").write_bytes(b"variant weights")
    server = serve_repo(repo)
    yield f"http://127.0.0.1:{server.server_address[1]}", fingerprint
    server.shutdown()


def test_hub_download_fetches_only_what_inpainting_loads(hub_repo, tmp_path):
    endpoint, fingerprint = hub_repo
    dest = tmp_path / "models" / "sd"
    run = download(endpoint, dest)
    assert run.returncode == 0, run.stderr[-3000:]
    got = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert "safety_checker/model.safetensors" not in got
    assert "unet/diffusion_pytorch_model.bin" not in got
    assert "unet/diffusion_pytorch_model.fp16.safetensors" not in got
    assert not (dest / ".cache").exists()
    # Same weights and configs as the repo: same fingerprint, so inpaintings made from a
    # local copy of the same checkpoint are reused.
    assert model_fingerprint(dest) == fingerprint
    record = json.loads((dest / RECORD_FILE).read_text())
    assert record["repo_id"] == REPO_ID and record["fingerprint"] == fingerprint
    assert describe(load_pipeline(dest))["unet_in_channels"] == 4
    # Nothing half-made is left next to the folder.
    assert sorted(p.name for p in dest.parent.iterdir()) == ["sd"]


def test_hub_download_failure_leaves_nothing(hub_repo, tmp_path):
    endpoint, _ = hub_repo
    dest = tmp_path / "models" / "sd"
    run = download(endpoint, dest, repo_id="someone/does-not-exist")
    assert run.returncode != 0
    assert "does-not-exist" in run.stderr
    assert not dest.exists() and list(dest.parent.iterdir()) == []


def test_fingerprint_follows_content_not_location(tiny_models, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_models[9], copy)
    assert model_fingerprint(copy) == model_fingerprint(tiny_models[9])
    (copy / "scheduler/scheduler_config.json").write_text(
        (copy / "scheduler/scheduler_config.json")
        .read_text()
        .replace('"steps_offset": 1', '"steps_offset": 0')
    )
    assert model_fingerprint(copy) != model_fingerprint(tiny_models[9])
    assert model_fingerprint(tiny_models[4]) != model_fingerprint(tiny_models[9])


def test_model_folder_is_not_private(tiny_models):
    umask = os.umask(0o022)
    os.umask(umask)
    assert tiny_models[9].stat().st_mode & 0o777 == 0o777 & ~umask


def test_tiny_tokenizer_uses_its_clip_vocabulary(tiny_models):
    """After save and from_pretrained, text maps to the tiny CLIP vocabulary (not to a
    fallback of unknown tokens): bos, 'the' merged into one word token, eos."""
    tokenizer = load_pipeline(tiny_models[9]).tokenizer
    vocab = tokenizer.get_vocab()
    ids = tokenizer(["the cat"])["input_ids"][0]
    assert ids[0] == vocab["<|startoftext|>"] and ids[-1] == vocab["<|endoftext|>"]
    assert ids[1] == vocab["the</w>"]
    assert len(vocab) == 518 and tokenizer.model_max_length == 77


NEEDS = (
    "(a diffusers folder needs model_index.json, unet/, vae/, text_encoder/, tokenizer/, "
    "scheduler/)"
)


def broken_copy(tiny_models, tmp_path, *remove: str) -> Path:
    folder = tmp_path / "models" / "broken"
    shutil.copytree(tiny_models[9], folder)
    for rel in remove:
        path = folder / rel
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    return folder


def test_model_folder_without_unet_says_so_in_one_line(tiny_models, tmp_path):
    folder = broken_copy(tiny_models, tmp_path, "unet")
    with pytest.raises(InputError) as caught:
        load_pipeline(folder)
    assert str(caught.value) == f"model folder {folder}: missing unet/ {NEEDS}"
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("remove", "missing"),
    [
        (("model_index.json",), "model_index.json"),
        (("vae",), "vae/"),
        (("unet/config.json",), "unet/config.json"),
        (("text_encoder/model.safetensors",), "text_encoder/ weights (*.safetensors or *.bin)"),
        (("scheduler/scheduler_config.json",), "scheduler/scheduler_config.json"),
        # Without these two, diffusers loads a tokenizer anyway: of 2 tokens (measured),
        # or with no length limit.
        (("tokenizer",), "tokenizer/"),
        (
            ("tokenizer/tokenizer.json",),
            "tokenizer/tokenizer.json or tokenizer/vocab.json and tokenizer/merges.txt",
        ),
        (("tokenizer/tokenizer_config.json",), "tokenizer/tokenizer_config.json"),
    ],
)
def test_each_missing_part_is_named(tiny_models, tmp_path, remove, missing):
    folder = broken_copy(tiny_models, tmp_path, *remove)
    with pytest.raises(InputError) as caught:
        check_model_folder(folder)
    assert str(caught.value) == f"model folder {folder}: missing {missing} {NEEDS}"


def test_model_index_must_list_every_part(tiny_models, tmp_path):
    folder = broken_copy(tiny_models, tmp_path)
    index = json.loads((folder / "model_index.json").read_text())
    (folder / "model_index.json").write_text(json.dumps({**index, "unet": [None, None]}))
    with pytest.raises(InputError, match=r"model_index\.json lists no unet"):
        check_model_folder(folder)
    with pytest.raises(InputError, match="not found"):
        check_model_folder(tmp_path / "absent")


def test_parts_are_what_the_pipeline_requires():
    from diffusers import StableDiffusionInpaintPipeline as Pipeline

    expected, _ = Pipeline._get_signature_keys(Pipeline)
    assert set(MODEL_PARTS) == set(expected) - set(Pipeline._optional_components)


def test_optional_parts_listed_but_absent_load(tiny_models, tmp_path):
    """A hub checkpoint's model_index.json lists a safety checker and a feature extractor
    (as SD 1.5's does), which download_model does not fetch: the folder still loads."""
    folder = broken_copy(tiny_models, tmp_path)
    index = json.loads((folder / "model_index.json").read_text())
    index["safety_checker"] = ["stable_diffusion", "StableDiffusionSafetyChecker"]
    index["feature_extractor"] = ["transformers", "CLIPImageProcessor"]
    (folder / "model_index.json").write_text(json.dumps(index))
    pipe = load_pipeline(folder)
    assert pipe.feature_extractor is None and pipe.safety_checker is None


def test_moved_names_still_import_from_models():
    """Building (tiny_models) and model folders (model_folders) live in their own modules;
    callers that import these names from maskleak.models get the same objects."""
    moved = {
        builders: (
            "InpaintPipeline",
            "build_sd15_like_pipeline",
            "build_tiny_pipeline",
            "sd15_scheduler",
            "set_block_mean_vae",
        ),
        model_folders: (
            "HUB_ALLOW_PATTERNS",
            "HUB_WEIGHT_DIRS",
            "RECORD_FILE",
            "download_model",
            "get_model",
            "model_fingerprint",
            "save_tiny_model",
        ),
    }
    for module, names in moved.items():
        for name in names:
            assert getattr(models, name) is getattr(module, name), name
            assert name in models.__all__, name
    assert all(hasattr(models, name) for name in models.__all__)


def test_get_model_rule_runs_no_loading_code():
    """The get_model script imports model_folders, so an edit to the loading code in
    maskleak.models does not rebuild the tiny models (their code hash excludes it)."""
    names = {p.name for p in library_files(REPO / "workflow/scripts/get_model.py")}
    assert {"model_folders.py", "tiny_models.py"} <= names
    assert "models.py" not in names
