from __future__ import annotations

import warnings

import pytest
import torch

from similarity_reference import SmallCNN, SmallMLP, centre


@pytest.fixture(autouse=True)
def _double_precision():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    with warnings.catch_warnings():
        # torch's own forward-mode decompositions still call torch.jit.script on first use.
        warnings.filterwarnings("ignore", message=".*torch.jit.script.*deprecated", category=DeprecationWarning)
        yield
    torch.set_default_dtype(old)


@pytest.fixture
def mlp():
    torch.manual_seed(0)
    return SmallMLP(3, 8, 1).double().eval()


@pytest.fixture
def mlp2():
    torch.manual_seed(1)
    return SmallMLP(3, 8, 2).double().eval()


@pytest.fixture
def cnn():
    torch.manual_seed(2)
    return SmallCNN().double().eval()


@pytest.fixture
def xs():
    torch.manual_seed(3)
    return torch.randn(13, 3, dtype=torch.float64)


@pytest.fixture
def images():
    torch.manual_seed(4)
    return torch.randn(9, 2, 6, 6, dtype=torch.float64)


# (model fixture, input fixture, output) for every model the correctness tests run on.
CASES = [("mlp", "xs", None), ("mlp2", "xs", None), ("cnn", "images", centre)]


@pytest.fixture(params=CASES, ids=[c[0] for c in CASES])
def case(request):
    model_name, data_name, output = request.param
    return request.getfixturevalue(model_name), request.getfixturevalue(data_name), output
