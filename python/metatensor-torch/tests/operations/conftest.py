import pytest
import torch


@pytest.fixture
def no_jit_optimization():
    """Disable the optimizations of the TorchScript graph executor (which
    re-optimizes each function during its first calls): much faster for tests
    calling each operation only a few times."""
    previous = torch._C._get_graph_executor_optimize()
    torch._C._set_graph_executor_optimize(False)
    yield
    torch._C._set_graph_executor_optimize(previous)
