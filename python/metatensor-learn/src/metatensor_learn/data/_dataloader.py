"""A :py:class:`torch.utils.data.DataLoader` collating with
:py:func:`group_and_join` by default."""

import torch

from ._collate import group_and_join


class DataLoader(torch.utils.data.DataLoader):
    """A :py:class:`torch.utils.data.DataLoader` for :py:class:`Dataset` and
    :py:class:`IndexedDataset`, with :py:func:`group_and_join` as the default
    collate function: the TensorMaps of each batch are joined along the
    samples, the torch tensors are stacked, and other values are grouped in
    tuples.

    >>> import torch
    >>> from metatensor.learn import DataLoader, Dataset
    >>> dataset = Dataset(x=[torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0])])
    >>> batch = next(iter(DataLoader(dataset, batch_size=2)))
    >>> batch.x
    tensor([[1., 2.],
            [3., 4.]])

    Everything else (batch size, shuffling, samplers such as
    :py:class:`torch.utils.data.DistributedSampler`, worker processes, ...)
    works as for the torch class. Samples and batches can be pickled, so
    ``num_workers > 0`` works.

    :param dataset: the dataset to load the samples from
    :param collate_fn: the function making a batch from a list of samples; use
        ``functools.partial(group_and_join, fields_to_join=...,
        join_kwargs=...)`` to choose how to join
    :param kwargs: the other arguments of
        :py:class:`torch.utils.data.DataLoader`
    """

    def __init__(self, dataset, collate_fn=group_and_join, **kwargs):
        super().__init__(dataset, collate_fn=collate_fn, **kwargs)
