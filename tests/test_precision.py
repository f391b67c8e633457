import pytest
import torch

from seqattn.errors import SeqattnError
from seqattn.precision import autocast, autocast_dtype

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def test_precision_options_map_to_autocast_dtypes() -> None:
    assert autocast_dtype("fp32", CPU) is None and autocast_dtype("auto", CPU) is None
    assert autocast_dtype("bf16", CPU) is torch.bfloat16
    assert autocast_dtype("auto", CUDA) is torch.float16 and autocast_dtype("fp16", CUDA) is torch.float16


def test_bad_precision_names_the_option() -> None:
    with pytest.raises(SeqattnError, match="--precision=fp16 needs a CUDA device"):
        autocast_dtype("fp16", CPU, "--precision")
    with pytest.raises(SeqattnError, match="train.precision: 'half' is not auto, fp32, fp16 or bf16"):
        autocast_dtype("half", CPU)


def test_autocast_runs_matmuls_in_the_dtype_and_none_in_fp32() -> None:
    a = torch.randn(4, 4)
    with autocast(CPU, torch.bfloat16):
        assert (a @ a).dtype == torch.bfloat16
        with autocast(CPU, None):  # None switches autocast off, even inside an enabled region
            assert (a @ a).dtype == torch.float32
