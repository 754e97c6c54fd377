"""Models: browse the zoo, upload a checkpoint, train one in the background and watch it."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from core import jobs
from core.attacks import PRECISIONS
from core.cache import default_cache_dir
from core.catalog import CatalogEntry, safe_stem, store_upload
from core.checkpoints import (INPUT_NORMALIZATIONS, MB, CheckpointError, InputNormalization, NormalizationUnknown,
                              sha256_bytes, too_large)
from core.data import DATASETS, available_datasets
from core.device import describe_device
from core.errors import NormScopeError, ParameterError
from core.speed import speed_note
from core.models import ModelSpec, list_models, model_entry
from core.train import PRESETS, TrainConfig, preset, read_history
from ui import catalog, compute, figures, render, serving, state, widgets

FROM_FILE = "as recorded in the file"
CUSTOM = "custom"
NORMALIZATION_CHOICES = {f"CIFAR-10: {INPUT_NORMALIZATIONS['cifar10']}": "cifar10",
                         f"CIFAR-10 as kuangliu/pytorch-cifar and MadryLab robustness train it: "
                         f"{INPUT_NORMALIZATIONS['cifar10-kuangliu']}": "cifar10-kuangliu",
                         f"ImageNet mean/std (akamaster's trainer): {INPUT_NORMALIZATIONS['imagenet']}": "imagenet",
                         "none: the model takes [0, 1] pixels as they are (mean 0, std 1)": "none",
                         CUSTOM: CUSTOM}

st.title("Models")
zoo_tab, upload_tab, train_tab = st.tabs(["Zoo", "Upload", "Train"])


def probed(history: list[dict], metric: str) -> list[float]:
    """A metric over the probed epochs only: runs probed every k epochs have gaps, which a sparkline cannot draw."""
    return [h[metric] for h in history if h.get(metric) is not None]


def zoo_frame(entries: list[CatalogEntry]) -> pd.DataFrame:
    """One row per checkpoint; the curves sit next to the final numbers so they show without scrolling."""
    return pd.DataFrame([{"model": e.label, "dataset": e.dataset, "norm": e.norm,
                          "clean acc": e.final_metrics.get("test_accuracy"),
                          "robust acc": e.final_metrics.get("robust_accuracy"), "LIGS": e.final_metrics.get("ligs"),
                          "clean acc by epoch": probed(e.history, "test_accuracy"),
                          "robust acc by epoch": probed(e.history, "robust_accuracy"),
                          "arch": e.arch, "width": e.width, "preset": e.preset, "epochs": len(e.history),
                          "source": e.source} for e in entries])


with zoo_tab:
    entries = catalog.entries()
    st.markdown(f"{len(entries)} checkpoints: the reference zoo, uploads and trained models, every dataset. "
                "Metrics are the last epoch's probes (robust acc: l2-PGD eps 0.25, 10 steps; LIGS: Gaussian 0.01).")
    if entries:
        spark = dict(y_min=0.0, y_max=1.0)
        render.table(zoo_frame(entries), "model-zoo", "zoo", column_config={
            "clean acc by epoch": st.column_config.LineChartColumn(**spark),
            "robust acc by epoch": st.column_config.LineChartColumn(**spark),
            **{c: st.column_config.NumberColumn(format="%.3f") for c in ("clean acc", "robust acc", "LIGS")}})


def spec_input() -> ModelSpec:
    """Architecture by hand: IN, LN and GN cannot be told apart from weights alone (nor two published PreAct
    ResNet-18s). The input normalization is not part of it: the file records it, or the page asks."""
    c1, c2, c3, c4 = st.columns(4)
    arch = c1.selectbox("Architecture", list_models(), index=list_models().index("vgg11"), key="upload_arch")
    norm = c2.selectbox("Normalization", model_entry(arch).norms, key="upload_norm")
    width = c3.number_input("Width multiplier", 0.01, 8.0, 1.0, format="%.3f", key="upload_width")
    classes = c4.number_input("Classes", 2, 1000, 10, key="upload_classes")
    return ModelSpec(arch, norm, int(classes), float(width))


def three_numbers(text: str, what: str) -> tuple[float, ...]:
    values = tuple(widgets.parse_numbers(text))
    if len(values) != 3:
        raise ParameterError(f"{what} needs 3 numbers (R, G, B), got {text!r}")
    return values


def normalization_question(filename: str, key: str, unknown: NormalizationUnknown) -> InputNormalization | None:
    """Ask for the mean/std a file does not record (never assumed); None until answered."""
    hint = f" Its keys read as {unknown.layout.source}: {unknown.layout.hint}." if unknown.layout.hint else ""
    st.warning(f"**{filename}** does not record the input normalization (mean/std) its model was trained behind. "
               "A wrong one silently changes every accuracy and robustness number, so NormScope does not guess: "
               f"which one did its training script use?{hint}")
    label = st.radio("Input normalization", list(NORMALIZATION_CHOICES), index=None, key=key)
    if label is None:
        return None
    if NORMALIZATION_CHOICES[label] != CUSTOM:
        return INPUT_NORMALIZATIONS[NORMALIZATION_CHOICES[label]]
    c1, c2 = st.columns(2)
    mean = c1.text_input("mean (R, G, B)", key=f"{key}_mean", placeholder="0.5, 0.5, 0.5")
    std = c2.text_input("std (R, G, B)", key=f"{key}_std", placeholder="0.5, 0.5, 0.5")
    if not (mean and std):
        return None
    return InputNormalization(three_numbers(mean, "mean"), three_numbers(std, "std"))


def store(data: bytes, filename: str, spec: ModelSpec | None, dataset: str | None) -> CatalogEntry | None:
    """Validate and store an upload (on a public server: in this session's own folder), asking for its input
    normalization where the file does not say."""
    root = serving.upload_root()
    try:
        return store_upload(data, filename, spec, dataset, root=root)
    except NormalizationUnknown as unknown:
        normalization = normalization_question(filename, f"upload_input_norm_{sha256_bytes(data)[:12]}", unknown)
        return None if normalization is None else store_upload(data, filename, spec, dataset, root=root,
                                                                normalization=normalization)


def store_logged(file: UploadedFile, limit: int, spec: ModelSpec | None, dataset: str | None) -> CatalogEntry | None:
    """:func:`store` an upload of at most ``limit`` bytes within the server's upload pool, logging what came of it:
    stored, or refused and why (a refused file is as often an attack as a mistake; the log shows the operator
    either)."""
    try:
        if file.size > limit:  # the very byte the browser refuses above; a client sending more is told the same
            raise CheckpointError(f"{file.name}: {too_large(file.size, limit)}")
        with serving.upload_slot():
            entry = store(file.getvalue(), file.name, spec, dataset)
    except NormScopeError as e:
        serving.log_access("upload refused", file=safe_stem(file.name), bytes=file.size, reason=str(e))
        raise
    if entry is not None:
        serving.log_access("upload", file=safe_stem(file.name), sha256=entry.sha256, bytes=file.size)
    return entry


def upload_tab_body() -> None:
    st.markdown("Upload a NormScope `.safetensors` checkpoint (metadata included) or a `torch.save` state dict under "
                "any name (`.pt`, `.pth`, `.th`, `.pth.tar`, `.ckpt`, `.bin`; the format is read from the file), "
                "also as saved by kuangliu/pytorch-cifar, chenyaofo/pytorch-cifar-models, "
                "akamaster/pytorch_resnet_cifar10, RobustBench, PyTorch Lightning or torchvision "
                "(see the README's table of layouts). Files are loaded weights-only (no code runs), checked for shape "
                "and NaN/inf, and " + ("kept for this browser session only: no other visitor sees them, and they "
                                       "are deleted when the session ends." if serving.public() else
                                       f"stored under `{default_cache_dir() / 'uploads'}` so every page and session "
                                       "can use them.") +
                " Choose what the model was trained on before uploading: the first upload of a file is its record.")
    choice = st.selectbox("Trained on", [FROM_FILE, *DATASETS], key="upload_dataset",
                          help=f"'{FROM_FILE}': the file's metadata, or 'unknown' where it records none. cifar10 is "
                               "the genuine CIFAR-10 (published weights); its numbers read on cifar10-jpeg are marked.")
    manual = st.checkbox("Set the architecture by hand (needed for IN/LN/GN state dicts without metadata)",
                         key="upload_manual")
    spec = spec_input() if manual else None
    limit = serving.upload_limit_mb()
    file = st.file_uploader(f"Checkpoint (at most {limit} MB)", key="upload_file",
                            max_upload_size=limit)
    st.caption(f"A file larger than {limit} MB ({limit / 1000:g} GB) is refused by the browser before it is sent: it "
               "is marked in red, and pointing at the mark says so.")
    if file is None:
        return
    with render.user_errors(f"Cannot use {file.name}"):
        entry = store_logged(file, limit * MB, spec, None if choice == FROM_FILE else choice)
        if entry is not None:
            catalog.refresh()
            st.success(f"Stored **{entry.name}**: {entry.arch} (norm={entry.norm}, width={entry.width:g}), "
                       f"trained on **{entry.dataset}**, sha256 {entry.sha256[:12]}… It is now in every model "
                       "list" + (" of this session." if serving.public() else "."))


with upload_tab:
    if serving.policy().uploads_allowed:
        upload_tab_body()
    else:
        st.info(serving.OFF_HERE.format(what="uploading checkpoints"))


def train_form() -> TrainConfig | None:
    """The training config from the form, or None until the button is pressed."""
    c1, c2, c3 = st.columns(3)
    name = c1.selectbox("Preset", list(PRESETS), index=list(PRESETS).index("tiny"), key="train_preset")
    base = preset(name)
    archs = list_models(family="cifar")  # not torchvision's (ImageNet-sized) nor the published fixed layouts
    arch = c2.selectbox("Architecture", archs, index=archs.index("vgg11"), key="train_arch")
    entry = model_entry(arch)
    norm = c3.selectbox("Normalization", entry.norms, index=entry.norms.index(entry.default_norm), key="train_norm")
    options = available_datasets()
    default = base.dataset if base.dataset in options else state.dataset()
    dataset = c1.selectbox("Dataset", options, index=options.index(default), key=f"train_dataset_{name}")
    width = c2.number_input("Width", 0.01, 4.0, base.width, format="%.3f", key=f"train_width_{name}")
    epochs = int(c3.number_input("Epochs", 1, 400, base.epochs, key=f"train_epochs_{name}"))
    landscape = int(c1.number_input("Landscape every k steps", 0, 100_000, 0, key="train_landscape_every",
                                    help="Record the optimization landscape (App. I) every k training steps (0: off); "
                                         "each measurement costs about 5 training steps. See the Loss landscape page."))
    precision = c2.selectbox("Precision", PRECISIONS, index=PRECISIONS.index(base.precision),
                             key=f"train_precision_{name}",
                             help="bf16: autocast, recorded with the model. Faster only where the hardware has "
                                  "native bf16 (recent GPUs, some CPUs): choosing it measures this machine once")
    if precision != "fp32":
        c2.caption(speed_note(precision))
    compiled = c3.checkbox("Compile (torch.compile)", base.compile, key=f"train_compile_{name}",
                           help="Meant for GPUs (CUDA graphs; not measured there yet); on the project's CPU it "
                                "compiled for a minute and then ran slower than without")
    if not st.button("Start training", key="train_start", type="primary", icon=":material/play_arrow:"):
        return None
    return preset(name, arch=arch, norm=norm, dataset=dataset, width=float(width), epochs=epochs,
                  landscape_every=landscape, precision=precision, compile=compiled)


@st.fragment(run_every=2)
def job_panel() -> None:
    """Progress, live metric curves and cancel for one training job; reruns alone every 2 s."""
    train_jobs = [j for j in jobs.list_jobs() if j.spec.get("kind") == "train"]
    if not train_jobs:
        st.caption("No training jobs yet.")
        return
    job = st.selectbox("Job", train_jobs, key="job_pick",
                       format_func=lambda j: f"{j.spec.get('title') or j.id} · {j.id}")  # its state: the bar below
    status = compute.job_status(job, "job_cancel")
    if status["state"] == "done":
        st.success(f"Done: the checkpoint is in every model list ({status['result']['checkpoint']}).")
    history = read_history(Path(job.spec["params"]["out"]))
    if history:
        df = pd.DataFrame(history).melt(id_vars=["epoch"], value_vars=[c for c in ("test_accuracy", "robust_accuracy",
                                                                                  "ligs", "train_loss")
                                                                       if c in history[0]], var_name="metric")
        fig = render.built(figures.lines, df, "epoch", "value", "metric",
                           f"{job.spec.get('title')} on {job.spec['params']['config']['dataset']}")
        render.chart(fig, df, f"job-{job.id}", "job_curves")
    with st.expander("Log"):
        st.code(job.log(30) or "(empty)")


def train_tab_body() -> None:
    st.markdown("Training runs as a background job (it survives page reloads; several can run). Presets keep the "
                "paper's settings selectable (`paper`: Table A1), scale them down for CPUs (`cpu`, `tiny`) or run "
                f"full width in 40 epochs on a GPU (`gpu`: bf16, compiled). Training runs on {describe_device()}. "
                "Per-epoch probes appear below as the job finishes each epoch.")
    with render.user_errors("Cannot start training"):
        config = train_form()
        if config:
            job = jobs.submit_training(config)
            serving.log_access("train", job=job.id, preset=config.preset)
            st.success(f"Started job {job.id}.")
    job_panel()


with train_tab:
    if serving.public():  # training jobs, and the list of everyone's jobs, are the operator's
        st.info(serving.OFF_HERE.format(what="training"))
    else:
        train_tab_body()
