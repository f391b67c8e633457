"""Parallel text: aligned plain files, a corpus folder under the data root, or HF `datasets`.

Every problem with the input stops with one line naming the file (and line) and what to do.
"""
from __future__ import annotations

from pathlib import Path

from seqattn.config import DataConfig
from seqattn.errors import SeqattnError


def read_lines(path: Path) -> list[str]:
    """UTF-8 lines of `path` without their line ends (corpora, input files given on the command line)."""
    path = Path(path)
    if not path.is_file():
        raise SeqattnError(f"{path}: file not found")
    lines = []
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                lines.append(raw.decode("utf-8").rstrip("\r\n"))
            except UnicodeDecodeError as err:
                raise SeqattnError(
                    f"{path}:{number}: not valid UTF-8 (byte {err.start}); re-encode the file as UTF-8"
                ) from None
    return lines


def read_parallel(src_path: Path, tgt_path: Path) -> tuple[list[str], list[str]]:
    """Two line-aligned files of a corpus -> (sources, targets); they must be non-empty and equally long."""
    for path in (src_path, tgt_path):
        if not Path(path).is_file():
            raise SeqattnError(f"{path}: file not found; check data.root / data.corpus or the path you gave")
    src, tgt = read_lines(src_path), read_lines(tgt_path)
    if len(src) != len(tgt):
        raise SeqattnError(
            f"{src_path} has {len(src)} lines but {tgt_path} has {len(tgt)}: "
            "parallel files must be aligned line by line"
        )
    if not any(s.strip() for s in src):
        raise SeqattnError(f"{src_path}: the corpus is empty; give a file with one sentence per line")
    return src, tgt


def corpus_dir(cfg: DataConfig) -> Path:
    corpus = Path(cfg.corpus).expanduser()
    return corpus if corpus.is_absolute() else cfg.resolved_root() / corpus


def load_split(cfg: DataConfig, split: str) -> tuple[list[str], list[str]]:
    """Sentences of one split (`train`, `valid`, `test` or any prefix) for cfg.src -> cfg.tgt.

    From `{corpus_dir}/{split}.{lang}` when that folder exists, else from `cfg.hub`.
    """
    folder = corpus_dir(cfg)
    if folder.is_dir() or not cfg.hub:
        prefix = Path(split) if Path(split).is_absolute() else folder / split
        return read_parallel(Path(f"{prefix}.{cfg.src}"), Path(f"{prefix}.{cfg.tgt}"))
    return load_hub_split(cfg, split)


def load_hub_split(cfg: DataConfig, split: str) -> tuple[list[str], list[str]]:
    """A split from HF `datasets`: a hub id (needs the network or the HF cache) or a local copy.

    A local copy is a folder written by `Dataset(Dict).save_to_disk`; rows carry one column
    per language (`{"en": ..., "de": ...}`) or a `translation` dict of them.
    """
    import datasets

    hub_split = cfg.hub_splits.get(split, split)
    local = Path(cfg.hub).expanduser()
    try:
        if local.is_dir():
            data = datasets.load_from_disk(str(local))
            data = data[hub_split] if isinstance(data, datasets.DatasetDict) else data
        else:
            data = datasets.load_dataset(cfg.hub, split=hub_split)
    except KeyError:
        raise SeqattnError(f"data.hub {cfg.hub}: no split {hub_split!r}; map it with data.hub_splits") from None
    except (ConnectionError, OSError, ValueError, FileNotFoundError) as err:
        raise SeqattnError(
            f"data.hub {cfg.hub}: could not load split {hub_split!r} ({type(err).__name__}); offline, "
            f"put the corpus under {corpus_dir(cfg)} or point data.hub at a local save_to_disk copy"
        ) from None
    rows = data["translation"] if "translation" in data.column_names else None
    for lang in (cfg.src, cfg.tgt):
        if rows is None and lang not in data.column_names:
            raise SeqattnError(f"data.hub {cfg.hub}: split {hub_split!r} has no column {lang!r}")
    src = [r[cfg.src] for r in rows] if rows is not None else list(data[cfg.src])
    tgt = [r[cfg.tgt] for r in rows] if rows is not None else list(data[cfg.tgt])
    if not src:
        raise SeqattnError(f"data.hub {cfg.hub}: split {hub_split!r} is empty")
    return src, tgt
