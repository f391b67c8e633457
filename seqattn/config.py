"""Experiment configuration: dataclasses loaded from YAML recipes, overridable with dotted keys.

Unknown keys and values of the wrong type are errors that name the file (or override) and the key;
`validate` then checks the values (architecture, options with a fixed set of values, search and
training counts) before any work starts.
"""
from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from seqattn.errors import SeqattnError

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA_ROOT = REPO.parent / "shared" / "data"
DATASETS = REPO / "data"  # dataset definitions: data/NAME.yaml holds a `data:` section


def data_root(root: str | None) -> Path:
    """The data root: `root` if set, else $SEQATTN_DATA_ROOT, else ../shared/data beside the repo."""
    return Path(root or os.environ.get("SEQATTN_DATA_ROOT") or DEFAULT_DATA_ROOT)


@dataclass
class DataConfig:
    """Where the parallel text comes from and how it is filtered."""

    root: str | None = None  # data root; default: $SEQATTN_DATA_ROOT, else ../shared/data beside the repo
    corpus: str = "multi30k"  # folder under root (or an absolute folder) holding {split}.{lang} files
    hub: str | None = None  # HF datasets id or local `save_to_disk` folder, used when the corpus folder is absent
    hub_splits: dict[str, str] = field(default_factory=dict)  # our split name -> hub split name
    src: str = "en"
    tgt: str = "de"
    train: str = "train"
    valid: str = "val"
    test: str = "test_2016_flickr"
    max_len: int = 100  # drop training pairs longer than this many subwords on either side
    max_ratio: float = 3.0  # drop training pairs whose length ratio exceeds this

    def resolved_root(self) -> Path:
        return data_root(self.root)


@dataclass
class SubwordConfig:
    """sentencepiece model(s) trained on the training split."""

    model_type: str = "unigram"  # unigram | bpe
    vocab_size: int = 8000
    joint: bool = True  # one vocabulary for both languages, else one per side
    character_coverage: float = 1.0
    input_sentence_size: int = 1_000_000


@dataclass
class ModelConfig:
    """Architecture and sizes; `arch` picks the builder in seqattn.models."""

    arch: str = "rnnsearch"  # rnnencdec | rnnsearch | luong | transformer | show-attend-tell | classifier
    emb_dim: int = 256
    hidden_dim: int = 512  # RNN state size (per direction in the encoder); Transformer d_model
    attention_dim: int = 512  # size of the additive attention MLP
    readout_dim: int = 512  # deep-output size before maxout (halved by maxout pieces of 2)
    encoder_layers: int = 1
    decoder_layers: int = 1
    dropout: float = 0.2
    # Luong et al. 2015
    score: str = "general"  # dot | general | concat
    alignment: str = "global"  # global | local-m | local-p
    window: int = 10  # D: local attention looks at [p_t - D, p_t + D]
    input_feeding: bool = True
    reverse_source: bool = False  # the encoder reads each source backwards (Table 1, "reverse")
    # Vaswani et al. 2017
    heads: int = 8
    ffn_dim: int = 2048
    norm: str = "post"  # post | pre (layer norm after or before each sublayer)
    tie_embeddings: bool = False  # share source, target and output embeddings (joint vocabulary)
    attention_dropout: float = 0.1
    attention_layer: int = -1  # decoder layer whose cross-attention search returns and guided alignment trains (-1: last)
    attention_head: int = -1  # head whose weights search returns and guided alignment trains (-1: average over heads)
    # Xu et al. 2015 (arch: show-attend-tell)
    attend: str = "soft"  # soft (deterministic) | hard (stochastic, REINFORCE)
    gate: bool = True  # gating scalar beta = sigmoid(f_beta(h_{t-1})) on the context
    doubly_stochastic: float = 1.0  # lambda of sum_i (1 - sum_t alpha_ti)^2
    entropy_bonus: float = 0.01  # lambda_e: hard attention's entropy term
    baseline_decay: float = 0.9  # moving-average baseline of the REINFORCE reward
    expected_context: float = 0.5  # hard attention: probability of training a sentence with the expected context
    # Sukhbaatar et al. 2015 (arch: memn2n) and Miller et al. 2016 (arch: kvmemnn); d = emb_dim
    hops: int = 3  # K memory hops
    tying: str = "adjacent"  # memn2n: adjacent (A^{k+1} = C^k, B = A^1, W^T = C^K) | layerwise (u^{k+1} = H u^k + o^k)
    position_encoding: bool = True  # weigh each word of a sentence by l_j (sec. 4.1); False: plain bag of words
    temporal_encoding: bool = True  # add T(i), i the memory's age (0: most recent) (sec. 4.1)
    memory_slots: int = 64  # rows of the temporal table: the most memories (noise included) a story has; older ones share the last
    memory_capacity: int = 0  # S: a story of n < S sentences leaves S - n empty slots (score 0) in every hop's softmax, as the authors' fixed 50-slot memory does; 0: none
    linear_start: bool = True  # memn2n, kvmemnn: no softmax in the memory layers until the validation loss stops decreasing (sec. 4.2)
    linear_start_epochs: int = 0  # memn2n, kvmemnn: > 0 ends linear start at the first validation after that many epochs instead (the authors' code: 20)
    random_noise: float = 0.1  # memn2n: fraction of empty memories added to each training story (sec. 4.1); 0: off
    values: str = "sentence"  # kvmemnn: sentence (key = value = the sentence) | last-word (value = its last word)
    key_hashing: bool = False  # kvmemnn: address only slots sharing a non-stopword with the question (sec. 3.1)


@dataclass
class TrainConfig:
    """Optimisation, validation, checkpointing and stopping."""

    seed: int = 1234
    batch_tokens: int = 4096  # target tokens per batch (padding included)
    accumulate: int = 1  # batches per optimiser update (per process under torchrun)
    optimizer: str = "adam"  # adam | sgd
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.98)  # adam
    momentum: float = 0.9  # sgd
    nesterov: bool = False  # sgd: Nesterov momentum
    weight_decay: float = 0.0
    clip_norm: float = 1.0  # 0 turns clipping off
    label_smoothing: float = 0.1
    guided_alignment: str | None = None  # Pharaoh file (0-based i-j, source word first), a line per training pair: guided alignment
    alignment_weight: float = 0.05  # lambda of L = L_nll + lambda L_align (Garg et al. 2019)
    schedule: str = "plateau"  # constant | plateau | inverse_sqrt | cosine (to 0 over max_epochs' updates)
    warmup_steps: int = 4000  # inverse_sqrt only
    plateau_factor: float = 0.5
    plateau_patience: int = 2  # validations without improvement before the LR drops
    min_lr: float = 1e-5
    max_steps: int = 0  # 0: no limit
    max_epochs: int = 0  # 0: no limit
    max_minutes: float = 0.0  # wall-clock budget for training; 0: no limit
    valid_every: int = 1000  # steps between validations; 0: at the end of every epoch
    valid_max_sentences: int = 0  # validate BLEU on the first N valid sentences; 0: all
    patience: int = 0  # early stopping after this many validations without a better metric (the task's); 0: off
    log_every: int = 100
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "auto"  # auto (fp16 AMP on CUDA, fp32 on CPU) | fp32 | fp16 | bf16
    threads: int = 0  # torch CPU threads; 0: torch's default
    progress: bool = True  # progress bar on stderr
    collective_timeout: float = 300.0  # under torchrun: seconds a training collective waits for the other processes


@dataclass
class SearchConfig:
    """Decoding options shared by validation, `translate` and the benchmarks."""

    beam_size: int = 5
    nbest: int = 1
    length_penalty: str = "gnmt"  # none | gnmt
    alpha: float = 0.6  # GNMT length-penalty exponent
    min_len: int = 0
    max_len_a: float = 1.5  # max output length = a * source length + b
    max_len_b: int = 10
    batch_size: int = 64  # sentences per search batch
    coverage_penalty: float = 0.0  # GNMT coverage penalty weight beta; 0: off
    no_repeat_ngram: int = 0  # forbid repeating any n-gram of this size; 0: off
    sampling: bool = False  # sample instead of searching (temperature, top_k, top_p)
    temperature: float = 1.0
    top_k: int = 0  # 0: no top-k truncation
    top_p: float = 1.0  # nucleus sampling mass; 1: off


@dataclass
class CaptionDataConfig:
    """Image-caption data (captioning models): where the images and captions are, and the vocabulary."""

    root: str | None = None  # data root; default: $SEQATTN_DATA_ROOT, else ../shared/data beside the repo
    dataset: str = "flickr8k-1k"  # folder under root (or an absolute folder)
    format: str = "flickr8k"  # flickr8k (Flickr8k.token.txt + split lists) | karpathy | coco
    annotations: str = "Flickr8k.token.txt"  # file in the dataset folder (karpathy/coco: the JSON)
    images: str = "images"  # image folder in the dataset folder
    splits: dict[str, str] = field(default_factory=lambda: {
        "train": "Flickr_8k.trainImages.txt", "valid": "Flickr_8k.devImages.txt", "test": "Flickr_8k.testImages.txt"})
    skip_bad_images: bool = False  # skip missing or unreadable images (and report how many) instead of stopping
    vocab: str = "word"  # word (lower-cased words with a minimum count) | sentencepiece
    min_count: int = 5  # word vocabulary: words seen fewer times become <unk>
    vocab_size: int = 4000  # sentencepiece vocabulary size
    max_len: int = 40  # drop training captions longer than this many tokens
    valid_metric: str = "bleu"  # bleu (sacreBLEU) | cider (pycocoevalcap): validation keeps best.pt, steps the LR and stops early by it

    def resolved_root(self) -> Path:
        return data_root(self.root)


@dataclass
class BackboneConfig:
    """The CNN image encoder giving an L x D grid of annotation vectors (captioning, CIFAR-10 check)."""

    name: str = "efficientnet-lite0"  # resnet18..152 | vgg16 | efficientnet-lite0 | se-resnet18..50 |
    # attention56 | attention92 | attention-cifar
    pretrained: str = "none"  # none | imagenet (torchvision weights API / the EfficientNet-Lite0 package) | FILE.pth
    freeze: bool = True  # keep the CNN fixed (its features are then cached on disk)
    image_size: int = 224  # images are resized and center-cropped (random crop when training) to this
    grid: int = 14  # annotation grid side: L = grid * grid (adaptive average pooling); 0 keeps the CNN's own
    cifar_stem: bool = False  # ResNets: 3x3 stride-1 first convolution, no max pooling (32 x 32 images)
    se: bool = False  # add Squeeze-and-Excitation blocks to a (pretrained) torchvision ResNet
    se_reduction: int = 16  # r
    se_variant: str = "standard"  # standard | pre | post | identity (Hu et al. 2018, Fig. 5)
    attention_residual: bool = True  # (1 + M(x)) T(x); False: the naive M(x) T(x)
    mask_activation: str = "mixed"  # mixed | channel | spatial (Wang et al. 2017, sec. 3.3)
    cache_dir: str | None = None  # feature cache of a frozen CNN; default: OUT_DIR/features


@dataclass
class ClassifyConfig:
    """The backbone check's data (model.arch classifier): CIFAR-10 from the shared JPEGs."""

    archive: str = "cifar10/cifar10-jpg.tar.gz"  # under the data root (or absolute)
    cache_dir: str | None = None  # where the archive is unpacked once; default: ~/.cache/seqattn/cifar10
    train_images: int = 0  # first N training images per the shuffled order; 0: all 50,000
    test_images: int = 0  # 0: all 10,000
    batch_size: int = 128  # images per batch
    augment: bool = True  # random crop with 4-pixel padding and horizontal flips


@dataclass
class BabiConfig:
    """bAbI question answering (Weston et al. 2015): the tasks read and how the training files are split."""

    root: str | None = None  # data root; default: $SEQATTN_DATA_ROOT, else ../shared/data beside the repo
    dataset: str = "babi-en-10k"  # folder under root (or an absolute folder) holding qaN_<name>_{train,test}.txt
    tasks: list[int] = field(default_factory=lambda: list(range(1, 21)))  # one task: per-task; several: joint
    memory_size: int = 50  # keep the story's last this many statements before each question
    valid_fraction: float = 0.1  # the last this fraction of each training file's questions validates

    def resolved_root(self) -> Path:
        return data_root(self.root)


@dataclass
class Config:
    out_dir: str = "runs/default"
    data: DataConfig = field(default_factory=DataConfig)
    subword: SubwordConfig = field(default_factory=SubwordConfig)
    captions: CaptionDataConfig = field(default_factory=CaptionDataConfig)
    babi: BabiConfig = field(default_factory=BabiConfig)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    classify: ClassifyConfig = field(default_factory=ClassifyConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    search: SearchConfig = field(default_factory=SearchConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _convert(value: Any, annotation: Any, where: str) -> Any:
    """Check `value` against a field annotation (a string under postponed evaluation)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(value, inner[0], where)
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation in (int, float, str, bool):
        if isinstance(value, annotation) and not (annotation is int and isinstance(value, bool)):
            return value
        raise SeqattnError(f"{where}: expected {annotation.__name__}, got {value!r}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise SeqattnError(f"{where}: expected a list of {len(args)} values, got {value!r}")
        return tuple(_convert(v, a, where) for v, a in zip(value, args))
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise SeqattnError(f"{where}: expected a list, got {value!r}")
        return [_convert(v, args[0], where) for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise SeqattnError(f"{where}: expected a mapping, got {value!r}")
        return {str(k): _convert(v, args[1], f"{where}.{k}") for k, v in value.items()}
    raise SeqattnError(f"{where}: unsupported type {annotation}")


def _build(cls: type, values: Any, source: str, prefix: str = "") -> Any:
    """Make dataclass `cls` from a mapping; errors read `SOURCE: section.key: problem`."""
    if not isinstance(values, dict):
        raise SeqattnError(f"{source}: {prefix or 'config'}: expected a mapping of options, got {values!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        keys = ", ".join(prefix + k for k in unknown)
        raise SeqattnError(f"{source}: unknown option(s) {keys}; known here: {', '.join(sorted(names))}")
    kwargs = {}
    for name, value in values.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _build(hint, value, source, f"{prefix}{name}.")
        else:
            kwargs[name] = _convert(value, hint, f"{source}: {prefix}{name}")
    return cls(**kwargs)


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `section.key=value` overrides (values parsed as YAML) to a raw config mapping."""
    for item in overrides:
        if "=" not in item:
            raise SeqattnError(f"override {item!r}: write it as section.key=value, e.g. train.lr=0.0005")
        key, text = item.split("=", 1)
        *parents, leaf = key.strip().split(".")
        node = raw
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise SeqattnError(f"override {item!r}: {part} is not a section")
        node[leaf] = yaml.safe_load(text)
    return raw


# Keys earlier versions wrote into the configs they saved with every checkpoint, since retired:
# section -> keys. Reading a saved config drops them, so older checkpoints still load and resume.
RETIRED = {"classify": ("epochs", "lr", "weight_decay")}  # now train.max_epochs, train.lr, train.weight_decay


def config_from_dict(raw: dict[str, Any], source: str = "config") -> Config:
    """The config saved in a checkpoint (`Config.to_dict()`), without the RETIRED keys older ones hold."""
    raw = {section: ({k: v for k, v in values.items() if k not in RETIRED.get(section, ())}
                     if isinstance(values, dict) else values) for section, values in raw.items()}
    return _build(Config, raw, source)


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> Config:
    """Load a YAML recipe (or the defaults when `path` is None) and apply dotted overrides."""
    raw: dict[str, Any] = {}
    where = "defaults"
    if path is not None:
        path = Path(path)
        where = str(path)
        if not path.is_file():
            raise SeqattnError(f"{path}: config file not found")
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            line = f" line {mark.line + 1}" if mark else ""
            raise SeqattnError(f"{path}{line}: not valid YAML ({getattr(err, 'problem', err)})") from None
    if isinstance(raw, dict) and isinstance(raw.get("data"), str):
        raw["data"] = load_dataset_definition(raw["data"], where)
    cfg = _build(Config, apply_overrides(raw, overrides or []), where)
    try:
        return validate(cfg)
    except SeqattnError as err:
        raise SeqattnError(f"{where}: {err}") from None


def one_of(key: str, value: str, choices: tuple[str, ...] | list[str]) -> None:
    if value not in choices:
        raise SeqattnError(f"{key}: unknown {value!r}; choose one of {', '.join(choices)}")


def validate(cfg: Config) -> Config:
    """`cfg` if every value that needs no data is valid, else an error naming the key: the architecture
    (by the registry), the options with a fixed set of values (each checked against the list of the
    module that uses it), the search options (seqattn.search.check_options) and the training loop's
    counts. Run on loading (load_config) and by the trainer, so a typo stops `seqattn train` before
    sentencepiece, the data or the feature cache start. Checks that need the data or a device stay
    where those are (vocabulary sizes, CUDA, a task's own combinations)."""
    from seqattn import registry
    from seqattn.data.subwords import MODEL_TYPES
    from seqattn.data.vocab import CAPTION_VOCABS
    from seqattn.models import kvmemnn, luong, memn2n, show_attend_tell, transformer
    from seqattn.modules.backbones import NAMES
    from seqattn.modules.backbones.residual_attention import ACTIVATIONS
    from seqattn.modules.backbones.se import VARIANTS
    from seqattn.precision import PRECISIONS
    from seqattn.search import check_options
    from seqattn.tasks.base import CAPTION_METRICS
    from seqattn.training.optim import OPTIMIZERS, SCHEDULES

    registry.arch(cfg.model.arch)
    m, t, b, c = cfg.model, cfg.train, cfg.backbone, cfg.captions
    for key, value, choices in (
        ("model.score", m.score, luong.SCORES), ("model.alignment", m.alignment, luong.ALIGNMENTS),
        ("model.norm", m.norm, transformer.NORMS), ("model.attend", m.attend, show_attend_tell.ATTEND),
        ("model.tying", m.tying, memn2n.TYING), ("model.values", m.values, kvmemnn.VALUES),
        ("train.optimizer", t.optimizer, OPTIMIZERS), ("train.schedule", t.schedule, SCHEDULES),
        ("train.precision", t.precision, PRECISIONS), ("subword.model_type", cfg.subword.model_type, MODEL_TYPES),
        ("captions.vocab", c.vocab, CAPTION_VOCABS), ("captions.valid_metric", c.valid_metric, tuple(CAPTION_METRICS)),
        ("backbone.name", b.name, NAMES), ("backbone.se_variant", b.se_variant, VARIANTS),
        ("backbone.mask_activation", b.mask_activation, ACTIVATIONS),
    ):
        one_of(key, value, choices)
    check_options(cfg.search)
    if t.accumulate < 1:
        raise SeqattnError(f"train.accumulate: {t.accumulate} is not a number of batches (1 or more)")
    if t.valid_every < 0:
        raise SeqattnError(f"train.valid_every: {t.valid_every} is negative; 0 validates at every epoch's end")
    if not t.collective_timeout > 0:
        raise SeqattnError(f"train.collective_timeout: {t.collective_timeout} is not a number of seconds (above 0)")
    if t.guided_alignment is not None:
        check_guided_alignment(cfg)
    return cfg


GUIDED_ARCHS = ("rnnsearch", "luong", "transformer")  # translation models with an attention to guide


def check_guided_alignment(cfg: Config) -> None:
    """train.guided_alignment needs a translation model with attention, a file that exists and a weight >= 0."""
    t = cfg.train
    if cfg.model.arch not in GUIDED_ARCHS:
        raise SeqattnError(f"train.guided_alignment: model.arch {cfg.model.arch} has no attention over a source "
                           f"sentence to guide; use one of {', '.join(GUIDED_ARCHS)}")
    if not Path(t.guided_alignment).is_file():
        raise SeqattnError(f"train.guided_alignment: {t.guided_alignment} not found; give the Pharaoh file of the "
                           "training pairs' word alignments")
    if t.alignment_weight < 0:
        raise SeqattnError(f"train.alignment_weight: {t.alignment_weight} is negative; give lambda >= 0")


def load_dataset_definition(name: str, source: str) -> dict[str, Any]:
    """`data: NAME` in a recipe stands for the data section in data/NAME.yaml (or a YAML path)."""
    path = Path(name) if name.endswith((".yaml", ".yml")) else DATASETS / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in DATASETS.glob("*.yaml")))
        raise SeqattnError(f"{source}: data: no dataset definition {path}; known: {known}")
    return yaml.safe_load(path.read_text(encoding="utf-8"))
