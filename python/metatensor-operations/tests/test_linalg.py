import numpy as np
import pytest

import metatensor as mts
from metatensor import Labels, TensorBlock, TensorMap
from metatensor.operations import NotEqualError

from ._gradcheck import check_finite_differences, positions_tensor, strain_tensor
from ._tensors import DATA_DIR, reorder_keys, tensor


def _weights(A: TensorMap, n: int = 4, seed: int = 0) -> TensorMap:
    """A TensorMap of weights usable as second argument of ``dot(A, W)``."""
    rng = np.random.default_rng(seed)
    blocks = []
    for block in A.blocks():
        blocks.append(
            TensorBlock(
                rng.normal(size=(n, len(block.properties))),
                Labels(["w"], np.arange(10, 10 + n, dtype=np.int32).reshape(-1, 1)),
                [],
                block.properties,
            )
        )
    return TensorMap(A.keys, blocks)


# ======================================================================== #
# dot                                                                      #
# ======================================================================== #


@pytest.mark.parametrize("components", [False, True])
def test_dot(components):
    A = tensor(0, components)
    W = _weights(A)
    result = mts.dot(A, W)
    assert result.keys == A.keys
    for block, a, w in zip(result.blocks(), A.blocks(), W.blocks()):
        assert block.samples == a.samples
        assert block.components == a.components
        assert block.properties == w.samples
        np.testing.assert_allclose(block.values, a.values @ w.values.T)
        assert block.gradients_list() == a.gradients_list()
        for parameter, gradient in block.gradients():
            ga = a.gradient(parameter)
            assert gradient.samples == ga.samples
            assert gradient.components == ga.components
            assert gradient.properties == w.samples
            np.testing.assert_allclose(gradient.values, ga.values @ w.values.T)


def test_dot_keys_any_order():
    A = tensor(0)
    W = _weights(A)
    assert mts.equal(mts.dot(A, reorder_keys(W, [1, 2, 0])), mts.dot(A, W))


def test_dot_operator():
    A = tensor(0)
    W = _weights(A)
    assert mts.equal(A @ W, mts.dot(A, W))


def test_dot_errors():
    A = tensor(0)
    W = _weights(A)

    B = TensorMap(Labels(A.keys.names, A.keys.values[:2]), W.blocks()[:2])
    with pytest.raises(NotEqualError, match="inputs to 'dot' should have the same"):
        mts.dot(A, B)

    # different properties
    blocks = [
        TensorBlock(b.values, b.samples, [], Labels(["other"], b.properties.values))
        for b in W.blocks()
    ]
    message = "TensorBlocks in `dot` should have the same properties"
    with pytest.raises(ValueError, match=message):
        mts.dot(A, TensorMap(W.keys, blocks))

    # components in the second tensor
    C = tensor(1, components=True)
    C2 = tensor(2, components=True)
    message = "the second TensorMap in `dot` should not have components"
    with pytest.raises(ValueError, match=message):
        mts.dot(C, C2)

    # gradients in the second tensor
    message = "the second TensorMap in `dot` should not have gradients"
    with pytest.raises(ValueError, match=message):
        mts.dot(A, tensor(3))

    with pytest.raises(TypeError, match="`tensor_2` must be a metatensor TensorMap"):
        mts.dot(A, W.block(0))


@pytest.mark.parametrize("components", [False, True])
def test_dot_finite_differences(components):
    positions = np.random.default_rng(3).normal(size=(4, 3))
    W = _weights(positions_tensor(positions, components=components), seed=4)
    check_finite_differences(
        lambda x: mts.dot(positions_tensor(x, components=components), W),
        positions,
        "positions",
    )

    strain = np.eye(3) + 0.1 * np.random.default_rng(2).normal(size=(3, 3))
    W = _weights(strain_tensor(strain), seed=5)
    check_finite_differences(lambda x: mts.dot(strain_tensor(x), W), strain, "strain")


def test_dot_real_data():
    ps = mts.load(DATA_DIR / "qm7-power-spectrum.mts")
    W = _weights(ps, n=16)
    result = mts.dot(ps, W)
    for block, a, w in zip(result.blocks(), ps.blocks(), W.blocks()):
        np.testing.assert_allclose(block.values, a.values @ w.values.T)
        np.testing.assert_allclose(
            block.gradient("strain").values,
            a.gradient("strain").values @ w.values.T,
        )


def test_dot_torch(torch):
    A = tensor(0, components=True)
    W = _weights(A)
    result = mts.dot(A.to(arrays="torch"), W.to(arrays="torch"))
    assert isinstance(result.block(0).values, torch.Tensor)
    assert mts.allclose(result.to(arrays="numpy"), mts.dot(A, W), rtol=1e-12)

    with pytest.raises(TypeError):
        mts.dot(A.to(arrays="torch"), W)

    # Labels on the meta device can not be compared, use the same tensor twice
    meta = mts.remove_gradients(tensor(0)).to(arrays="torch", device="meta")
    result = mts.dot(meta, meta)
    assert result.block(0).values.device.type == "meta"
    assert result.block(0).values.shape == (4, 4)
    assert result.block(0).properties.values.device.type == "meta"


# ======================================================================== #
# lstsq                                                                    #
# ======================================================================== #


def _system(seed: int, components: bool, n_targets: int = 2):
    """X and Y TensorMaps with matching samples/components/gradients, Y = X w."""
    X = tensor(seed, components)
    rng = np.random.default_rng(seed + 100)
    weights = []
    blocks = []
    for block in X.blocks():
        w = rng.normal(size=(len(block.properties), n_targets))
        weights.append(w)
        properties = Labels(["target"], np.arange(n_targets, dtype=np.int32)[:, None])
        new = TensorBlock(block.values @ w, block.samples, block.components, properties)
        for parameter, gradient in block.gradients():
            new.add_gradient(
                parameter,
                TensorBlock(
                    gradient.values @ w,
                    gradient.samples,
                    gradient.components,
                    properties,
                ),
            )
        blocks.append(new)
    return X, TensorMap(X.keys, blocks), weights


@pytest.mark.parametrize("components", [False, True])
def test_lstsq_exact_solution(components):
    X, Y, weights = _system(0, components)
    result = mts.lstsq(X, Y, rcond=1e-13)
    assert result.keys == X.keys
    for block, x, y, w in zip(result.blocks(), X.blocks(), Y.blocks(), weights):
        assert block.samples == y.properties
        assert block.components == []
        assert block.properties == x.properties
        assert block.gradients_list() == []
        np.testing.assert_allclose(block.values, w.T, atol=1e-10)


def test_lstsq_gradients_are_extra_equations():
    X, Y, _ = _system(1, components=True)
    # break the exact relation, the solution then depends on the gradients
    Y = mts.add(Y, mts.random_uniform_like(Y))
    result = mts.lstsq(X, Y, rcond=-1)
    for block, x, y in zip(result.blocks(), X.blocks(), Y.blocks()):
        rows_x = [x.values.reshape(-1, x.values.shape[-1])]
        rows_y = [y.values.reshape(-1, y.values.shape[-1])]
        for parameter in x.gradients_list():
            gx = x.gradient(parameter).values
            gy = y.gradient(parameter).values
            rows_x.append(gx.reshape(-1, gx.shape[-1]))
            rows_y.append(gy.reshape(-1, gy.shape[-1]))
        expected = np.linalg.lstsq(
            np.concatenate(rows_x), np.concatenate(rows_y), rcond=-1
        )[0]
        np.testing.assert_allclose(block.values, expected.T)

        values_only = np.linalg.lstsq(rows_x[0], rows_y[0], rcond=-1)[0]
        assert not np.allclose(block.values, values_only.T)


def test_lstsq_rcond_warning():
    X, Y, _ = _system(0, False)
    with pytest.warns(UserWarning, match="WARNING rcond is set to None"):
        mts.lstsq(X, Y, rcond=None)


def test_lstsq_errors():
    X, Y, _ = _system(0, False)

    blocks = []
    for block in Y.blocks():
        values = block.samples.values.copy()
        values[:, 1] += 5
        new = TensorBlock(
            block.values, Labels(block.samples.names, values), [], block.properties
        )
        for parameter, gradient in block.gradients():
            new.add_gradient(parameter, gradient)
        blocks.append(new)
    message = "inputs to 'lstsq' should have the same samples"
    with pytest.raises(NotEqualError, match=message):
        mts.lstsq(X, TensorMap(Y.keys, blocks), rcond=-1)

    message = "inputs to 'lstsq' should have the same gradients"
    with pytest.raises(NotEqualError, match=message):
        mts.lstsq(X, mts.remove_gradients(Y), rcond=-1)

    Y2 = TensorMap(Labels(Y.keys.names, Y.keys.values[:1]), [Y.block(0).copy()])
    with pytest.raises(NotEqualError, match="inputs to 'lstsq' should have the same"):
        mts.lstsq(X, Y2, rcond=-1)


def test_lstsq_real_data():
    ps = mts.load(DATA_DIR / "qm7-power-spectrum.mts")
    ps = mts.remove_gradients(ps, ["positions"])
    W = _weights(ps, n=3, seed=9)
    Y = mts.dot(ps, W)
    result = mts.lstsq(ps, Y, rcond=-1)
    # the exact relation holds, so the fitted weights reproduce Y
    assert mts.allclose(mts.dot(ps, result), Y, rtol=1e-6, atol=1e-8)


def test_lstsq_torch(torch):
    X, Y, weights = _system(0, components=True)
    Xt = X.to(arrays="torch")
    Yt = Y.to(arrays="torch")
    for driver in [None, "gelsd"]:
        result = mts.lstsq(Xt, Yt, rcond=1e-13, driver=driver)
        assert isinstance(result.block(0).values, torch.Tensor)
        for block, w in zip(result.blocks(), weights):
            np.testing.assert_allclose(block.values.numpy(), w.T, atol=1e-8)

    # autograd through the solution
    values = Yt.block(0).values.clone().requires_grad_(True)
    block = TensorBlock(
        values, Yt.block(0).samples, Yt.block(0).components, Yt.block(0).properties
    )
    for parameter, gradient in Yt.block(0).gradients():
        block.add_gradient(parameter, gradient)
    Y0 = TensorMap(Labels(Yt.keys.names, Yt.keys.values[:1]), [block])
    X0 = TensorMap(Labels(Xt.keys.names, Xt.keys.values[:1]), [Xt.block(0)])
    mts.lstsq(X0, Y0, rcond=1e-13).block(0).values.sum().backward()
    assert values.grad is not None
    assert values.grad.shape == values.shape


# ======================================================================== #
# solve                                                                    #
# ======================================================================== #


def _square_system(seed: int, gradients: bool):
    rng = np.random.default_rng(seed)
    n = 4
    keys = Labels.range("key", 2)
    X_blocks = []
    Y_blocks = []
    solutions = []
    for _ in range(len(keys)):
        x = rng.normal(size=(n, n)) + 3 * np.eye(n)
        w = rng.normal(size=(n, 2))
        samples = Labels.range("s", n)
        x_block = TensorBlock(x, samples, [], Labels.range("p", n))
        y_block = TensorBlock(x @ w, samples, [], Labels.range("t", 2))
        if gradients:
            grad_samples = Labels(["sample", "atom"], np.array([[0, 0], [2, 1]]))
            x_block.add_gradient(
                "positions",
                TensorBlock(
                    rng.normal(size=(2, 3, n)),
                    grad_samples,
                    [Labels.range("xyz", 3)],
                    x_block.properties,
                ),
            )
            y_block.add_gradient(
                "positions",
                TensorBlock(
                    rng.normal(size=(2, 3, 2)),
                    grad_samples,
                    [Labels.range("xyz", 3)],
                    y_block.properties,
                ),
            )
        X_blocks.append(x_block)
        Y_blocks.append(y_block)
        solutions.append(w)
    return TensorMap(keys, X_blocks), TensorMap(keys, Y_blocks), solutions


@pytest.mark.parametrize("gradients", [False, True])
def test_solve(gradients):
    # with gradients, this also checks the correct behaviour for the reference bug
    # S6 (gradients properties of X and Y compared, so any gradient failed)
    X, Y, solutions = _square_system(0, gradients)
    result = mts.solve(X, Y)
    assert result.keys == X.keys
    for block, x, y, w in zip(result.blocks(), X.blocks(), Y.blocks(), solutions):
        assert block.samples == y.properties
        assert block.components == []
        assert block.properties == x.properties
        assert block.gradients_list() == []
        np.testing.assert_allclose(block.values, w.T)


def test_solve_errors():
    X, Y, _ = _square_system(0, False)
    A = tensor(0)
    message = "the values in each block of X should be a square 2D array"
    with pytest.raises(ValueError, match=message):
        mts.solve(A, A)

    blocks = [
        TensorBlock(b.values, Labels.range("other", 4), [], b.properties)
        for b in Y.blocks()
    ]
    message = "inputs to 'solve' should have the same samples"
    with pytest.raises(ValueError, match=message):
        mts.solve(X, TensorMap(Y.keys, blocks))

    Xg, Yg, _ = _square_system(0, True)
    message = "inputs to 'solve' should have the same gradients"
    with pytest.raises(ValueError, match=message):
        mts.solve(Xg, Y)

    with pytest.raises(NotEqualError, match="inputs to 'solve' should have the same"):
        mts.solve(X, TensorMap(Labels.range("other", 2), Y.blocks()))


def test_solve_torch(torch):
    X, Y, solutions = _square_system(1, True)
    result = mts.solve(X.to(arrays="torch"), Y.to(arrays="torch"))
    assert isinstance(result.block(0).values, torch.Tensor)
    for block, w in zip(result.blocks(), solutions):
        np.testing.assert_allclose(block.values.numpy(), w.T)
