"""Datasets for training: IDX files, finding or downloading them, splits, order, augmentation."""

from cnnc.data.catalog import DATASETS, DatasetInfo, dataset_info
from cnnc.data.dataset import Dataset, Split, load_dataset, to_inputs
from cnnc.data.idx import read_idx, write_idx

__all__ = [
    "DATASETS", "Dataset", "DatasetInfo", "Split", "dataset_info", "load_dataset", "read_idx",
    "to_inputs", "write_idx",
]
